"""Two Gloo processes on CPU (torchrun) train the same model as one process with the same global
batch (BN-free, dropout-free model): equal weights and metrics within float tolerance.

The train part (48 = 64 - 16 held out) is a multiple of the global batch, so no rank pads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikeflow.train import load_config, run

PLUGIN = str(Path(__file__).with_name("tiny_plugin.py"))
SETS = ["data.name=tiny_seq", "data.options={n: 64}", "data.val_method=random", "data.val_size=16",
        "model.name=tiny_mlp", "model.options={bn: false}", "optim.lr=0.02",
        "train.epochs=2", "train.batch_size=16", "train.quiet=true", "train.seed=1",
        "train.threads=1", "train.device=cpu", f"run.imports=[{PLUGIN}]"]


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    cfg = load_config(None, SETS, base={})
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(cfg.to_yaml())
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spikeflow", "train", str(cfg_file), "--out", str(ddp)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run folder") == 2  # header + summary, from rank 0 only
    assert "x2 processes" in done.stdout
    single = tmp_path / "single"
    run(cfg, out=single, echo=lambda _: None)
    a = torch.load(single / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(ddp / "checkpoint_last.pt", weights_only=True)["model"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-5), k
    ra, rb = rows(single), rows(ddp)
    assert len(ra) == len(rb) == 2
    for x, y in zip(ra, rb):
        for key in ("train_loss", "val_loss", "test_loss", "lr"):
            assert x[key] == pytest.approx(y[key], rel=1e-5), key
        for key in ("train_acc", "val_acc", "test_acc"):
            assert x[key] == y[key], key
    assert json.loads((ddp / "split.json").read_text()) == json.loads((single / "split.json").read_text())
    assert json.loads((ddp / "metrics_test.json").read_text())["samples"] == 32

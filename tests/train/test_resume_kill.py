"""A run SIGKILLed mid-epoch and resumed ends with exactly the metrics and weights of an
uninterrupted run with the same seed (the killed run is a subprocess; tiny model)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spikeflow.train import load_config, run

PLUGIN = str(Path(__file__).with_name("tiny_plugin.py"))
SETS = ["data.name=tiny_seq", "data.options={n: 48}", "model.name=tiny_mlp",
        "model.options={dropout: 0.2}", "optim.name=adamw", "optim.lr=0.02",
        "optim.weight_decay=0.01", "schedule.name=cosine", "train.epochs=3",
        "train.batch_size=16", "train.quiet=true", "train.seed=3", "train.threads=1",
        f"run.imports=[{PLUGIN}]", "run.tensorboard=false"]


def rows(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        out.append({k: v for k, v in row.items() if "seconds" not in k and "per_s" not in k})
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "spikeflow", "train", *args]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path):
    full, killed, mark = tmp_path / "full", tmp_path / "killed", tmp_path / "stalled"
    run(load_config(None, SETS, base={}), out=full, echo=lambda _: None)
    # epoch 1 reads 48 train + 24 test items; the 11th item of epoch 2 stalls until killed
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TINY_STALL_AFTER": str(48 + 24 + 10),
           "TINY_STALL_MARK": str(mark)}
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(load_config(None, SETS, base={}).to_yaml())
    proc = subprocess.Popen(cli(str(cfg_file), "--out", str(killed)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not mark.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the run never reached epoch 2"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(killed / "checkpoint_last.pt", weights_only=True)["epoch"] == 1
    assert len(rows(killed)) == 1
    done = subprocess.run(cli("--out", str(killed), "--resume", "--trust-imports"),
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout and "after epoch 1/3" in done.stdout
    a = torch.load(full / "checkpoint_last.pt", weights_only=True)
    b = torch.load(killed / "checkpoint_last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["optimizer"]["state"][i]["exp_avg"], b["optimizer"]["state"][i]["exp_avg"])
               for i in a["optimizer"]["state"])
    assert rows(full) == rows(killed)

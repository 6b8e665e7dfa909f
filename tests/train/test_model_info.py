"""The model summary of a run: the start line of `spikeflow train`, model_summary.json, and
`spikeflow summary CONFIG|RUN`."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from spikeflow.cli import main
from spikeflow.metrics import ModelSummary, summary
from spikeflow.train import load_config, run
from spikeflow.train.model_info import SUMMARY_JSON, SUMMARY_MD, sample_input, summarize_model
from spikeflow.train.setup import build_model, import_plugins

PLUGIN = str(Path(__file__).with_name("tiny_plugin.py"))
BASE = {"data": {"name": "tiny_seq", "options": {"n": 16}},
        "model": {"name": "tiny_mlp"},
        "train": {"epochs": 1, "batch_size": 8, "quiet": True, "seed": 3},
        "run": {"imports": [PLUGIN], "tensorboard": False}}


def test_train_prints_one_line_and_writes_the_summary(tmp_path, capsys):
    cfg = load_config(None, [], base=BASE)
    lines: list[str] = []
    run(cfg, out=tmp_path / "r", echo=lines.append)
    line = next(x for x in lines if x.startswith("model tiny_mlp: "))
    data = json.loads((tmp_path / "r" / SUMMARY_JSON).read_text())
    s = ModelSummary.from_dict(data)
    assert s.line() == line and "params" in line and "\n" not in line
    model = build_model(cfg)
    assert s.params == sum(p.numel() for p in model.parameters())
    assert s.input_shape[1] == 1 and s.rows[-1].shape[:2] == (s.T, 1)
    assert (tmp_path / "r" / SUMMARY_MD).read_text() == s.to_markdown()

    # the CLI on the run folder: the stored config and trained weights, one test sample
    assert main(["summary", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("tiny_mlp: input [") and "total" in out
    assert main(["summary", str(tmp_path / "r"), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| layer | type | output shape |")


def test_sample_input_is_the_first_item_time_first():
    cfg = load_config(None, [], base=BASE)
    import_plugins(cfg.run.imports)
    from spikeflow.data import create_dataset

    ds = create_dataset("tiny_seq", split="test", n=4)
    x = sample_input(cfg, ds, torch.device("cpu"))
    assert torch.equal(x[:, 0], torch.as_tensor(ds[0][0]))
    model = build_model(cfg)
    assert summarize_model(cfg, model, ds).to_dict() == summary(model, x, name="tiny_mlp").to_dict()


def test_cli_summary_of_a_config_without_data_uses_the_model_card(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: dvs_gesture, root: %s, T: 4}\nmodel: {name: he2020_gru_mlp}\n"
                   % (tmp_path / "missing"))
    assert main(["summary", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("he2020_gru_mlp: input [4, 1, 2, 32, 32]")
    assert "model card" in out and "dataset dvs_gesture unavailable" in out


def test_cli_summary_of_a_run_folder_does_not_import_its_plugins(tmp_path, capsys):
    """A run folder's config.yaml may name plugin code (`run.imports`); `spikeflow summary RUN`
    imports only what --import names (issue 17 item 9), as `spikeflow test` does."""
    marker = tmp_path / "imported"
    plugin = tmp_path / "evil_plugin.py"
    plugin.write_text(f"open({str(marker)!r}, 'w').close()\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(
        "data: {name: digits, T: 2}\nmodel: {name: not_registered_model}\n"
        f"run: {{imports: [{str(plugin)!r}]}}\n")
    assert main(["summary", str(run_dir), "--noise"]) != 0
    assert not marker.exists()
    assert "not_registered_model" in capsys.readouterr().err

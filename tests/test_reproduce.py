"""`spikeflow reproduce` on a tiny fake paper: a real (1-epoch) training row, a "data not found" row,
a row skipped at mini scale; Markdown/CSV output, reuse of finished runs, the CLI entry point."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from spikeflow.report.reproduce import (PaperConfigError, deep_merge, find_experiments, load_experiment,
                                        reproduce)

TINY = {
    "paper": {"table": "fake table 1", "row": "tiny", "metric": "acc_A", "value": 50.0, "dataset": "digits"},
    "data": {"name": "digits", "T": 2, "encoding": "repeat"},
    "model": {"name": "he2020_snn_mlp", "options": {"in_features": 64, "hidden": [16], "num_classes": 10}},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 50, "batch_size": 256, "loss": "mse_rate", "device": "cpu"},
    "run": {"tensorboard": False},
    "mini": {"train": {"epochs": 1}},
}
MISSING = {
    "paper": {"metric": "acc_B", "value": 99.0, "dataset": "nmnist", "data_dir": "NMNIST"},
    "data": {"name": "nmnist", "T": 4},
    "model": {"name": "plif_nmnist"},
    "mini": {"data": {"T": 2}, "train": {"epochs": 1}},
}
FULL_ONLY = {"paper": {"metric": "acc_A", "value": None, "dataset": "cifar10"},
             "data": {"name": "cifar10"}, "model": {"name": "plif_cifar10"}, "mini": False}


def _write_paper(root: Path) -> Path:
    folder = root / "fake"
    folder.mkdir(parents=True)
    for name, cfg in (("a_tiny", TINY), ("b_missing", MISSING), ("c_full_only", FULL_ONLY)):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (folder / "not_a_paper_config.yaml").write_text(yaml.safe_dump({"data": {"name": "digits"}}))
    return root


def _runner(calls: list):
    from spikeflow.commands.reproduce import _runner as cli_runner

    real = cli_runner([], quiet=True)

    def runner(config: dict, run_dir: Path) -> None:
        calls.append(run_dir.name)
        real(config, run_dir)

    return runner


def test_reproduce_table_with_data_not_found_row(tmp_path: Path) -> None:
    root = _write_paper(tmp_path / "configs")
    assert [p.stem for p in find_experiments("fake", root)] == ["a_tiny", "b_missing", "c_full_only"]
    out, calls = tmp_path / "out", []
    data_root = tmp_path / "datasets"
    result = reproduce("fake", _runner(calls), scale="mini", out=out, data_root=data_root, root=root,
                       echo=lambda _m: None)
    tiny, missing, skipped = result.rows
    assert calls == ["a_tiny", "b_missing"]
    assert tiny["status"] == "ok" and tiny["metric"] == "acc_A"
    assert 0 <= tiny["run"] <= 100 and tiny["delta"] == pytest.approx(tiny["run"] - 50.0)
    assert tiny["params"] == 65 * 16 + 17 * 10 and 0 <= tiny["nasfr"] <= 1 and tiny["seconds"] > 0
    assert missing["status"] == f"data not found at {data_root / 'NMNIST'}"
    assert missing["run"] is None and missing["paper"] == 99.0
    assert skipped["status"].startswith("skipped: not run at mini scale")
    assert not result.failed

    md = result.markdown.read_text()
    assert "| a_tiny | acc_A | 50.00 |" in md and "data not found at" in md and "mini" in md
    rows = list(csv.DictReader(result.csv.open()))
    assert [r["experiment"] for r in rows] == ["a_tiny", "b_missing", "c_full_only"]
    assert float(rows[0]["run"]) == pytest.approx(tiny["run"]) and rows[1]["run"] == ""

    again = reproduce("fake", _runner(calls), scale="mini", out=out, data_root=data_root, root=root,
                      only=["a_tiny"], echo=lambda _m: None)
    assert calls == ["a_tiny", "b_missing"]  # the finished run is reused, not trained again
    assert again.rows[0]["status"] == "ok (reused finished run)"
    assert again.rows[0]["run"] == pytest.approx(tiny["run"])


def test_cli_reproduce_lists_and_reports_unknown_names(tmp_path: Path, capsys) -> None:
    from spikeflow.cli import main

    root = _write_paper(tmp_path / "configs")
    assert main(["reproduce", "--list", "--configs", str(root)]) == 0
    listing = capsys.readouterr().out
    assert "fake" in listing and "a_tiny" in listing and "(full scale only)" in listing
    assert main(["reproduce", "nope", "--configs", str(root)]) == 2
    assert "known papers: fake" in capsys.readouterr().err
    assert main(["reproduce", "fake", "--only", "zzz", "--configs", str(root)]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_load_experiment_scales_and_data_root(tmp_path: Path) -> None:
    root = _write_paper(tmp_path / "configs")
    path = root / "fake" / "b_missing.yaml"
    full = load_experiment(path, "full", data_root="/data")
    assert full.config["data"] == {"name": "nmnist", "T": 4, "root": "/data/NMNIST"}
    assert "paper" not in full.config and "mini" not in full.config
    mini = load_experiment(path, "mini")
    assert mini.config["data"] == {"name": "nmnist", "T": 2} and mini.config["train"] == {"epochs": 1}
    # a mini stand-in dataset (n_digits) is not the paper's dataset: no root is set
    stand_in = root / "fake" / "stand_in.yaml"
    stand_in.write_text(yaml.safe_dump({**MISSING, "mini": {"data": {"name": "n_digits"}}}))
    assert "root" not in load_experiment(stand_in, "mini", data_root="/data").config["data"]
    assert load_experiment(stand_in, "full", data_root="/data").config["data"]["root"] == "/data/NMNIST"
    with pytest.raises(ValueError, match="scale"):
        load_experiment(path, "huge")


def test_bad_paper_blocks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for block, match in (({"metric": "f1", "value": 1}, "paper.metric"), ({"metric": "acc_A"}, "paper.value"),
                         ({"metric": "acc_A", "value": "high"}, "number or null"),
                         ({"metric": "acc_A", "value": 1, "colour": 2}, "paper.colour")):
        bad.write_text(yaml.safe_dump({"paper": block, "data": {"name": "digits"}}))
        with pytest.raises(PaperConfigError, match=match):
            load_experiment(bad)
    bad.write_text(yaml.safe_dump({"paper": {"metric": "acc_A", "value": 1}, "mini": 3}))
    with pytest.raises(PaperConfigError, match="mini"):
        load_experiment(bad, "mini")


def test_deep_merge() -> None:
    base = {"data": {"name": "a", "options": {"x": 1, "y": 2}}, "train": {"epochs": 9}}
    merged = deep_merge(base, {"data": {"options": {"y": 3}, "T": 4}, "train": {"epochs": 1}})
    assert merged == {"data": {"name": "a", "options": {"x": 1, "y": 3}, "T": 4}, "train": {"epochs": 1}}
    assert base["data"]["options"]["y"] == 2

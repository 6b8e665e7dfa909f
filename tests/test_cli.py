"""The spikeflow CLI: discovered sub-commands, --help with examples, train/test/data/bench."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

import spikeflow.commands
from spikeflow.cli import build_parser, discover_commands, main

PLUGIN = str(Path(__file__).parent / "train" / "tiny_plugin.py")


def tiny_yaml(tmp_path: Path, **train) -> Path:
    cfg = {"data": {"name": "tiny_seq", "options": {"n": 32}},
           "model": {"name": "tiny_mlp"},
           "train": {"epochs": 2, "batch_size": 8, **train},
           "run": {"imports": [PLUGIN], "tensorboard": False}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_top_level_help_lists_commands(capsys):
    assert {"train", "test", "data", "bench"} <= set(discover_commands())
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("train", "test", "data", "bench"):
        assert name in out


@pytest.mark.parametrize("argv", [["train"], ["test"], ["data"], ["bench"], ["data", "list"],
                                  ["data", "check"], ["data", "emulate"]])
def test_every_subcommand_has_help_with_examples(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_new_command_modules_are_discovered(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(
        "def register(sub):\n"
        "    p = sub.add_parser('hello', help='say hello')\n"
        "    p.add_argument('name')\n"
        "    p.set_defaults(func=lambda a: print('hello', a.name) or 3)\n")
    monkeypatch.setattr(spikeflow.commands, "__path__", [*spikeflow.commands.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "spikeflow.commands.hello", raising=False)
    assert "hello" in discover_commands()
    assert main(["hello", "world"]) == 3
    assert "hello world" in capsys.readouterr().out
    (tmp_path / "broken.py").write_text("raise ImportError('boom')\n")
    build_parser()  # a broken command module only warns
    assert "sub-command 'broken' is unavailable" in capsys.readouterr().err


def test_train_then_test(tmp_path, capsys):
    cfg = tiny_yaml(tmp_path)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet",
                 "--set", "train.seed=4", "optim.lr=0.01"]) == 0
    out = capsys.readouterr().out
    assert "run folder" in out and "acc-A" in out
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["seed"] == 4 and saved["optim"]["lr"] == 0.01
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert main(["test", str(tmp_path / "run"), "--import", PLUGIN, "--json", "--no-metrics"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["acc"] == max(r["test_acc"] for r in rows if r["epoch"] == res["epoch"])
    assert res["checkpoint"].endswith("checkpoint_best.pt") and res["samples"] == 16
    # re-running into the folder continues from its config (here: already complete)
    assert main(["train", "--out", str(tmp_path / "run"), "--quiet", "--trust-imports"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, capsys):
    cfg = tiny_yaml(tmp_path)
    assert main(["train", str(cfg), "--set", "optim.lr=-1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "optim.lr must be > 0" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # rejected before anything runs
    assert main(["test", str(tmp_path / "nothing")]) == 1
    assert "no such run folder or checkpoint" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_data_list_and_check(tmp_path, capsys):
    assert main(["data", "list", "--names-only"]) == 0
    assert "digits" in capsys.readouterr().out.split()
    assert main(["data", "check", "digits", "--split", "test"]) == 0
    assert "digits/test: ok, 359 samples, 10 classes" in capsys.readouterr().out
    assert main(["data", "check", "nmnist", "--root", str(tmp_path)]) == 1
    assert "nmnist/train: FAILED" in capsys.readouterr().err
    assert main(["data", "check", "no_such_set"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_data_list_generates_and_caches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPIKEFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SPIKEFLOW_NMNIST", raising=False)
    monkeypatch.delenv("SPIKEFLOW_DATA", raising=False)
    assert main(["data", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "found (359 test samples)" in rows["digits"]
    assert "available, not generated yet" in rows["n_digits"]
    assert "not found: MissingDataError: nmnist: missing files or folders: - no root" in rows["nmnist"]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.bin"))


def test_data_emulate_calls_the_emulator(tmp_path, monkeypatch, capsys):
    import spikeflow.data.emulated as emulated

    calls = {}

    def fake(source, out, **kw):
        calls.update(source=source, out=out, **kw)
        return Path(out)

    monkeypatch.setattr(emulated, "emulate_source", fake)
    assert main(["data", "emulate", "digits", "--out", str(tmp_path / "e"), "--size", "16",
                 "--sensor", "20", "--option", "threshold=0.3", "seed=2", "--quiet"]) == 0
    assert calls["source"] == "digits" and calls["size"] == 16 and calls["progress"] is False
    assert calls["config"].sensor_size == (20, 20) and calls["config"].threshold == 0.3
    assert calls["config"].seed == 2
    assert main(["data", "emulate", "digits", "--out", str(tmp_path / "e"), "--option", "x=1"]) == 2
    assert "unknown emulator option(s) x" in capsys.readouterr().err


def test_bench_runs_scripts_and_reports_failures(tmp_path, capsys):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "train_step.py").write_text("import sys\ndef main():\n    print('ratio 2.0x', sys.argv[1:])\n")
    (bench / "neurons.py").write_text("def main():\n    raise RuntimeError('broken bench')\n")
    assert main(["bench", "--dir", str(bench), "--list"]) == 0
    assert capsys.readouterr().out.split()[::2] == ["neurons", "train_step"]
    assert main(["bench", "--dir", str(bench), "train_step"]) == 0
    assert "ratio 2.0x []" in capsys.readouterr().out
    assert main(["bench", "--dir", str(bench)]) == 1
    captured = capsys.readouterr()
    assert "broken bench" in captured.err and "ratio 2.0x" in captured.out
    assert main(["bench", "--dir", str(bench), "nope"]) == 2
    assert main(["bench", "--dir", str(tmp_path / "none")]) == 1
    assert "no benchmarks/ folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- issue 17


def test_config_may_follow_set_items(tmp_path, capsys):
    """Item 12: `spikeflow train --set train.epochs=1 CONFIG` took CONFIG as an override."""
    cfg = tiny_yaml(tmp_path)
    assert main(["train", "--set", "train.epochs=1", str(cfg), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["epochs"] == 1
    capsys.readouterr()
    assert main(["train", str(cfg), "--set", "train.epochs=1", "other.yaml"]) == 2
    err = capsys.readouterr().err
    assert "--set takes KEY=VALUE items, got 'other.yaml'" in err and "Traceback" not in err


def test_quiet_keeps_epoch_lines(tmp_path, capsys):
    """Item 13: --quiet dropped the per-epoch lines; off a terminal there are no bar codes."""
    assert main(["train", str(tiny_yaml(tmp_path)), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert [ln.split(" | ")[0] for ln in out.splitlines() if ln.startswith("epoch ")] == \
        ["epoch 1/2", "epoch 2/2"]
    assert "\r" not in out + err and "\x1b" not in out + err


def test_run_folder_imports_need_trust(tmp_path, capsys):
    """Item 9: a run folder's config.yaml can name plugin code (run.imports); continuing it
    without CONFIG needs --trust-imports, naming the config yourself does not."""
    cfg = tiny_yaml(tmp_path, epochs=1)
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "r"), "--resume",
                 "--set", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "lists run.imports" in err and "--trust-imports" in err
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1  # nothing ran
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--resume", "--quiet",
                 "--set", "train.epochs=2"]) == 0
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2


def test_os_type_and_checkpoint_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """Item 8: --out onto a file, a full or read-only disk, unknown data.options, hand-made
    checkpoints printed tracebacks (OSError/TypeError/KeyError were not user errors)."""
    import errno

    from spikeflow.cli import format_user_error
    from spikeflow.train import checkpoint as ck

    run_mod = sys.modules["spikeflow.train.run"]
    monkeypatch.chdir(tmp_path)  # runs/ of the failed runs
    cfg = tiny_yaml(tmp_path)
    (tmp_path / "file").write_text("x")
    assert main(["train", str(cfg), "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep")
    assert main(["train", str(cfg), "--out", str(tmp_path / "notes")]) == 2
    assert "is not a spikeflow run folder" in capsys.readouterr().err
    assert main(["train", str(cfg), "--set", "data.options={n: 8, colour: red}"]) == 2
    assert "unknown data.options key 'colour' for dataset 'tiny_seq'" in capsys.readouterr().err
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES):
        def failing(path, *a, code=code, **k):
            raise (PermissionError if code == errno.EACCES else OSError)(
                code, os.strerror(code), str(path))
        monkeypatch.setattr(run_mod, "atomic_write_text", failing)
        assert main(["train", str(cfg), "--out", str(tmp_path / f"d{code}")]) == 1
        err = capsys.readouterr().err
        assert f"error: {os.strerror(code)}: {tmp_path / f'd{code}' / 'config.yaml'}" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 2
    monkeypatch.undo()
    (tmp_path / "hand").mkdir()
    ck.atomic_save({"format": ck.FORMAT, "version": ck.VERSION, "config": {}},
                   tmp_path / "hand" / "checkpoint_best.pt")
    assert main(["test", str(tmp_path / "hand")]) == 1
    assert "model (missing)" in capsys.readouterr().err
    assert format_user_error(TypeError("f() got an unexpected keyword argument 'x'")) == \
        "TypeError: f() got an unexpected keyword argument 'x'"
    assert format_user_error(IsADirectoryError(21, "Is a directory", "/tmp")) == \
        "Is a directory: /tmp"


def test_test_prints_spiking_metrics(tmp_path, capsys):
    """Item 14: `spikeflow test` printed loss/accuracy only; the docs promise NASFR, firing
    rates, ACs/MACs and energy (and --json had no NASFR)."""
    cfg = {"data": {"name": "tiny_seq", "options": {"n": 32}},
           "model": {"name": "tiny_mlp", "options": {"spiking": True}},
           "train": {"epochs": 1, "batch_size": 8}, "run": {"imports": [PLUGIN], "tensorboard": False}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["test", str(tmp_path / "r"), "--import", PLUGIN]) == 0
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "r" / "metrics_test.json").read_text())
    assert 0 < saved["nasfr"] < 1
    assert f"NASFR {saved['nasfr']:.4f} | firing rates: lif {saved['firing_rates']['lif']:.4f}" in out
    from spikeflow.utils.numfmt import format_number
    assert (f"ACs {format_number(float(saved['synops']['ac']))}, "
            f"MACs {format_number(float(saved['synops']['mac']))}") in out
    assert "energy " in out and " per sample" in out
    assert main(["test", str(tmp_path / "r"), "--import", PLUGIN, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["nasfr"] == saved["nasfr"] and res["firing_rates"] == saved["firing_rates"]
    assert res["synops"] == {"ac": saved["synops"]["ac"], "mac": saved["synops"]["mac"]}
    assert res["energy_pj"] == saved["energy_pj"] and "metrics" not in res


def test_test_target_may_follow_set_items(tmp_path, capsys):
    assert main(["train", str(tiny_yaml(tmp_path, epochs=1)), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["test", "--set", "train.device=cpu", str(tmp_path / "r"), "--import", PLUGIN,
                 "--no-metrics", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 16
    assert main(["test"]) == 2
    assert "needs RUN_DIR_OR_CHECKPOINT" in capsys.readouterr().err


def test_test_command_numbers_match_reports():
    """`spikeflow test` prints energies and counts as reports do (3 significant figures, trailing
    zeros kept): 999.6 pJ is '1.00 nJ', never '1 nJ' beside a report's '0.936'."""
    from spikeflow.train.testing import _count
    from spikeflow.utils.numfmt import format_energy_pj
    assert [format_energy_pj(v) for v in (999.6, 936.2, 2649.6, 0.5, 2.5e6, None)] == \
        ["1.00 nJ", "936 pJ", "2.65 nJ", "0.500 pJ", "2.50 uJ", "–"]
    assert [_count(79000.0), _count(123.0), _count(None)] == ["79.0k", "123", "-"]

"""Issue 17 hardening of the engine: resume after kills at the epoch-end write points (item 2),
process state restored after ``run`` (10), LR schedule rebuilt when ``--resume`` changes
``train.epochs`` (11), plain epoch lines off a terminal (13), umask-honouring run folders (16),
checkpoint checksums and hand-made checkpoints (8, 9), refusing non-run ``--out`` folders (8)."""
from __future__ import annotations

import importlib
import json
import math
import os
from pathlib import Path

import pytest
import torch

from spikeflow.train import CheckpointError, load_config, run
from spikeflow.train import checkpoint as ck
from spikeflow.train.config import ConfigError

run_mod = importlib.import_module("spikeflow.train.run")

PLUGIN = str(Path(__file__).with_name("tiny_plugin.py"))


def tiny_cfg(*sets: str):
    base = {"data": {"name": "tiny_seq", "options": {"n": 48, "noise": 2.0}},
            "model": {"name": "tiny_mlp", "options": {"dropout": 0.2}},
            "optim": {"name": "adam", "lr": 0.02}, "schedule": {"name": "cosine"},
            "train": {"epochs": 4, "batch_size": 16, "quiet": True, "seed": 5},
            "run": {"imports": [PLUGIN], "tensorboard": False}}
    return load_config(None, list(sets), base=base)


def quiet_run(cfg, out: Path, **kw):
    return run(cfg, out=out, echo=lambda _: None, **kw)


def rows(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        out.append({k: v for k, v in json.loads(line).items()
                    if "seconds" not in k and "per_s" not in k})
    return out


def metrics_json(run_dir: Path) -> dict:
    data = json.loads((run_dir / "metrics_test.json").read_text())
    return {k: v for k, v in data.items() if k not in ("latency",)}  # timings differ


def same_weights(a: Path, b: Path) -> bool:
    x, y = (torch.load(p, weights_only=True) for p in (a, b))
    return x["epoch"] == y["epoch"] and x["model"].keys() == y["model"].keys() and all(
        torch.equal(x["model"][k], y["model"][k]) for k in x["model"])


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the engine catches a BaseException."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    quiet_run(tiny_cfg(), out)
    return out


def _new_best_epochs(run_dir: Path) -> list[int]:
    return [r["epoch"] for r in rows(run_dir) if r["best_epoch"] == r["epoch"]]


@pytest.mark.parametrize("point", ["after_last_checkpoint", "before_metric_files",
                                   "before_metrics_test"])
def test_resume_after_a_kill_at_each_write_point_is_exact(tmp_path, monkeypatch, reference, point):
    """Issue 17 item 2. A kill after ``checkpoint_last.pt`` of a best epoch left
    ``checkpoint_best.pt`` one epoch behind; between the checkpoints and the metric files it left
    ``metrics.jsonl`` one row short; after the last epoch's files, ``--resume`` said "already
    complete" and never wrote ``metrics_test.json``. The resumed folder now equals the reference."""
    best = [e for e in _new_best_epochs(reference) if e > 1]
    assert best, "the reference run should improve after epoch 1"
    kill_at = {"after_last_checkpoint": best[-1], "before_metric_files": best[-1],
               "before_metrics_test": None}[point]
    out = tmp_path / "killed"
    if point == "after_last_checkpoint":
        save = ck.atomic_save

        def killing_save(state, path):
            save(state, path)
            if state["epoch"] == kill_at:
                raise Killed
        monkeypatch.setattr(ck, "atomic_save", killing_save)
    elif point == "before_metric_files":
        write = run_mod.write_metrics

        def killing_write(run_dir, history):
            if len(history) == kill_at:
                raise Killed
            write(run_dir, history)
        monkeypatch.setattr(run_mod, "write_metrics", killing_write)
    else:
        def killing_test_metrics(*args, **kwargs):
            raise Killed
        monkeypatch.setattr(run_mod, "write_test_metrics", killing_test_metrics)
    with pytest.raises(Killed):
        quiet_run(tiny_cfg(), out)
    monkeypatch.undo()
    # the state the kill left: what the uninterrupted run had at that point
    if point == "after_last_checkpoint":
        assert torch.load(out / "checkpoint_best.pt", weights_only=True)["epoch"] < kill_at
    if point == "before_metric_files":
        assert len(rows(out)) == kill_at - 1
    if point == "before_metrics_test":
        assert not (out / "metrics_test.json").exists() and len(rows(out)) == 4
    lines: list[str] = []
    res = run(tiny_cfg(), out=out, resume=True, echo=lines.append)
    if point == "before_metrics_test":
        assert "run already complete (4 epochs)" in lines
    assert rows(out) == rows(reference)
    assert same_weights(out / "checkpoint_last.pt", reference / "checkpoint_last.pt")
    assert same_weights(out / "checkpoint_best.pt", reference / "checkpoint_best.pt")
    assert metrics_json(out) == metrics_json(reference)
    assert res.metrics is not None and res.summary == quiet_run(tiny_cfg(), reference).summary


def test_resume_rewrites_the_last_epochs_tensorboard_scalars(tmp_path, monkeypatch):
    """The kill before the metric files also skipped that epoch's TensorBoard scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "r"
    write = run_mod.write_metrics

    def killing_write(run_dir, history):
        if len(history) == 2:
            raise Killed
        write(run_dir, history)
    monkeypatch.setattr(run_mod, "write_metrics", killing_write)
    with pytest.raises(Killed):
        quiet_run(tiny_cfg("train.epochs=3", "run.tensorboard=true"), out)
    monkeypatch.undo()
    quiet_run(tiny_cfg("train.epochs=3", "run.tensorboard=true"), out, resume=True)
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/test")] == [1, 2, 3]


def test_run_restores_threads_and_determinism(monkeypatch):
    """Issue 17 item 10: run() left 1 thread, deterministic algorithms and the cuBLAS variable."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        before = run_mod._process_state()
        assert before["threads"] == 3 and not before["deterministic"]
        quiet_run(tiny_cfg("train.epochs=1", "train.threads=1", "train.deterministic=true"), None)
        assert run_mod._process_state() == before
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        # also when the run fails
        with pytest.raises(ConfigError):
            quiet_run(tiny_cfg("train.threads=1", "train.deterministic=true",
                               "data.options={bogus: 1}"), None)
        assert run_mod._process_state() == before
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # out=None -> runs/... under tmp_path


def test_resume_with_more_epochs_rebuilds_the_schedule(tmp_path):
    """Issue 17 item 11: ``--resume --set train.epochs=4`` after a 2-epoch cosine run trained
    epochs 3-4 at lr 0 (the schedule still ended at epoch 2). Rule: the schedule is rebuilt for
    the new length, so epoch e > 2 gets the lr of a fresh 4-epoch run at epoch e."""
    quiet_run(tiny_cfg("train.epochs=2"), tmp_path / "short")
    quiet_run(tiny_cfg("train.epochs=4"), tmp_path / "short", resume=True)
    quiet_run(tiny_cfg("train.epochs=4"), tmp_path / "fresh")
    got, fresh = rows(tmp_path / "short"), rows(tmp_path / "fresh")
    lr0 = 0.02
    cosine = [lr0 * (1 + math.cos(math.pi * e / 2)) / 2 for e in range(2)]
    assert [r["lr"] for r in got[:2]] == pytest.approx(cosine, rel=1e-12)  # the 2-epoch schedule
    assert [r["lr"] for r in got[2:]] == [r["lr"] for r in fresh[2:]]      # bit for bit
    assert got[2]["lr"] == pytest.approx(lr0 * (1 + math.cos(math.pi * 2 / 4)) / 2, rel=1e-12)
    assert min(r["lr"] for r in got[2:]) > 0
    # multistep milestones and an explicit T_max do not depend on train.epochs: unchanged
    quiet_run(tiny_cfg("train.epochs=2", "schedule.T_max=3"), tmp_path / "tmax")
    quiet_run(tiny_cfg("train.epochs=3", "schedule.T_max=3"), tmp_path / "tmax", resume=True)
    quiet_run(tiny_cfg("train.epochs=3", "schedule.T_max=3"), tmp_path / "tmax3")
    assert [r["lr"] for r in rows(tmp_path / "tmax")] == [r["lr"] for r in rows(tmp_path / "tmax3")]


def test_epoch_lines_off_a_terminal(tmp_path, capsys):
    """Issue 17 item 13: piped output was tqdm escape codes and --quiet dropped the epoch lines."""
    run(tiny_cfg("train.epochs=2", "train.quiet=false"), out=tmp_path / "a")
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" | ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "\r" not in captured.out + captured.err and "\x1b" not in captured.out + captured.err
    assert "it/s" not in captured.err and "batch" not in captured.err
    run(tiny_cfg("train.epochs=2", "train.quiet=true"), out=tmp_path / "b")
    out = capsys.readouterr().out
    assert [line.split(" | ")[0] for line in out.splitlines() if line.startswith("epoch ")] == \
        ["epoch 1/2", "epoch 2/2"]


def test_progress_bars_only_on_a_terminal():
    import io

    from spikeflow.train.progress import Progress, is_terminal

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert not is_terminal(io.StringIO()) and is_terminal(Tty())
    seen: list[str] = []
    p = Progress(2, 0, 3, bars=False, echo=seen.append)
    p.start_epoch(0)
    p.batch({"loss": 1.0, "samples_per_s": 5.0})
    p.end_epoch("epoch 1/2 | x")
    p.close()
    assert seen == ["epoch 1/2 | x"] and p.epoch_bar is None


def test_run_folder_files_follow_the_umask(tmp_path):
    """Issue 17 item 16: run-folder files must get 0o666 & ~umask like any other file."""
    old = os.umask(0o027)
    try:
        quiet_run(tiny_cfg("train.epochs=1", "run.tensorboard=true", "data.val_split=0.25"),
                  tmp_path / "r")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"config.yaml", "metrics.csv", "checkpoint_last.pt", "split.json",
            "metrics_test.json"} <= names
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o640)}, \
        {p.name: oct(p.stat().st_mode & 0o777) for p in files}


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    quiet_run(tiny_cfg("train.epochs=1"), out)
    return out


def test_byte_flips_are_detected(one_epoch, tmp_path):
    """Issue 17 item 9: 72 of 120 byte flips used to load with altered weights. Every flip now
    either fails to load with CheckpointError or leaves the content identical."""
    import numpy as np

    data = (one_epoch / "checkpoint_last.pt").read_bytes()
    good = ck.load_checkpoint(one_epoch / "checkpoint_last.pt")
    assert good["checksum"] == ck.state_checksum(good)
    rng = np.random.default_rng(0)
    positions = rng.choice(len(data), size=60, replace=False)
    caught = loaded = 0
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(8))
        path = tmp_path / "flip.pt"
        path.write_bytes(bytes(bad))
        try:
            got = ck.load_checkpoint(path)
        except CheckpointError:
            caught += 1
            continue
        loaded += 1
        assert ck.state_checksum(got) == ck.state_checksum(good)
        assert all(torch.equal(got["model"][k], good["model"][k]) for k in good["model"])
    assert caught + loaded == 60 and caught >= 40  # most bytes of a small checkpoint matter


def test_checksum_mismatch_message_and_old_versions(one_epoch, tmp_path):
    state = torch.load(one_epoch / "checkpoint_last.pt", weights_only=True)
    key = next(iter(state["model"]))
    state["model"][key] = state["model"][key] + 1  # torch.save directly: checksum now stale
    torch.save(state, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="checksum mismatch, the file is corrupt"):
        ck.load_checkpoint(tmp_path / "edited.pt")
    del state["checksum"]
    torch.save(state, tmp_path / "nosum.pt")
    with pytest.raises(CheckpointError, match="without a checksum entry"):
        ck.load_checkpoint(tmp_path / "nosum.pt")
    torch.save({**state, "version": 1}, tmp_path / "v1.pt")  # written before checksums: read
    assert ck.load_checkpoint(tmp_path / "v1.pt")["epoch"] == 1


def test_hand_made_checkpoints_get_clear_errors(one_epoch, tmp_path):
    """Issue 17 item 8: hand-made checkpoints with missing keys raised KeyError/TypeError."""
    state = torch.load(one_epoch / "checkpoint_last.pt", weights_only=True)
    ck.atomic_save({"format": ck.FORMAT, "version": ck.VERSION, "config": state["config"]},
                   tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"missing or of the wrong type: model \(missing\)"):
        ck.load_checkpoint(tmp_path / "m.pt")
    # enough for `spikeflow test`, not for a resume
    folder = tmp_path / "hand"
    folder.mkdir()
    slim = {k: state[k] for k in ("format", "version", "config", "model", "epoch")}
    ck.atomic_save(slim, folder / "checkpoint_last.pt")
    with pytest.raises(CheckpointError, match=r"optimizer \(missing\).*history \(missing\)"):
        quiet_run(tiny_cfg("train.epochs=1"), folder)
    ck.atomic_save({**slim, **{k: state[k] for k in ("optimizer", "history", "rng")},
                    "scheduler": {"bogus": 1}, "epoch": 1},
                   folder / "checkpoint_last.pt")
    (folder / "config.yaml").write_text("x")
    (folder / "versions.json").write_text("{}")
    with pytest.raises(CheckpointError, match="optimizer/schedule/RNG states do not fit|"
                                              "entries missing"):
        ck.atomic_save({**slim, **{k: state[k] for k in ("optimizer", "history", "scheduler")},
                        "rng": {"python": 3}}, folder / "checkpoint_last.pt")
        quiet_run(tiny_cfg("train.epochs=2"), folder)


def test_out_must_be_a_run_folder(tmp_path):
    """Issue 17 item 8: ``--out`` onto a file crashed with an OSError traceback; into a folder
    of other files it silently overwrote them."""
    (tmp_path / "file.txt").write_text("keep")
    with pytest.raises(ConfigError, match="this is a file, not a run folder"):
        quiet_run(tiny_cfg("train.epochs=1"), tmp_path / "file.txt")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my notes\n")
    with pytest.raises(ConfigError, match="not empty and is not a spikeflow run folder"):
        quiet_run(tiny_cfg("train.epochs=1"), mine)
    assert (mine / "config.yaml").read_text() == "my notes\n" and len(list(mine.iterdir())) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    quiet_run(tiny_cfg("train.epochs=1"), empty)  # an empty folder is fine, and then a run folder
    quiet_run(tiny_cfg("train.epochs=2"), empty)
    assert len(rows(empty)) == 2


def test_unknown_data_options_are_named():
    with pytest.raises(ConfigError, match="unknown data.options key 'bogus' for dataset "
                                          "'tiny_seq'; allowed: n, T, features"):
        quiet_run(tiny_cfg("data.options={n: 8, bogus: 1}"), None)
    with pytest.raises(ConfigError, match="data.options for dataset 'digits'.*unknown option"):
        quiet_run(tiny_cfg("data.name=digits", "data.options={bogus: 1}", "model.name=mlp"), None)


def test_unknown_data_options_fail_before_the_run_folder_is_made(tmp_path):
    with pytest.raises(ConfigError, match="unknown data.options/data.eval_options key 'clipz'"):
        quiet_run(tiny_cfg("data.eval_options={clipz: 3}"), tmp_path / "never")
    assert not (tmp_path / "never").exists()

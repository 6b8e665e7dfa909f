"""The engine end to end (in process) on the tiny plugin model/dataset: run folder, resume,
NaN stop, incompatible configs, encoders, evaluation of a checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from spikeflow.train import (CheckpointError, NonFiniteLossError, evaluate_checkpoint, load_config,
                             run)
from spikeflow.train.loop import Step, train_one_epoch
from spikeflow.train.setup import summarize

PLUGIN = str(Path(__file__).with_name("tiny_plugin.py"))


def tiny_cfg(*sets: str):
    base = {"data": {"name": "tiny_seq", "options": {"n": 48}},
            "model": {"name": "tiny_mlp", "options": {"dropout": 0.2}},
            "optim": {"name": "adam", "lr": 0.02},
            "train": {"epochs": 3, "batch_size": 16, "quiet": True, "seed": 7},
            "run": {"imports": [PLUGIN], "tensorboard": False}}
    return load_config(None, list(sets), base=base)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def strip_time(rows):
    return [{k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k} for r in rows]


def test_run_folder_contents(tmp_path):
    cfg = tiny_cfg("data.val_split=0.25", "run.tensorboard=true", "schedule.name=cosine")
    res = run(cfg, out=tmp_path / "r", echo=lambda _: None)
    d = tmp_path / "r"
    for name in ("config.yaml", "versions.json", "metrics.csv", "metrics.jsonl", "split.json",
                 "checkpoint_last.pt", "checkpoint_best.pt", "metrics_test.json"):
        assert (d / name).is_file(), name
    assert any((d / "tensorboard").iterdir())
    assert yaml.safe_load((d / "config.yaml").read_text()) == cfg.to_dict()
    assert json.loads((d / "versions.json").read_text())["torch"] == torch.__version__
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert len((d / "metrics.csv").read_text().splitlines()) == 4
    assert {"train_loss", "train_acc", "val_acc", "test_acc", "lr", "acc_A", "acc_B"} <= set(rows[0])
    last = torch.load(d / "checkpoint_last.pt", weights_only=True)
    assert last["epoch"] == 3 and last["config"] == cfg.to_dict() and last["split"]
    assert {"model", "optimizer", "scheduler", "rng", "history"} <= set(last)
    best_val = max(r["val_acc"] for r in rows)
    best = [r for r in rows if r["val_acc"] == best_val][-1]
    assert res.summary["acc_B"] == best["test_acc"]
    assert res.summary["acc_A"] == max(r["test_acc"] for r in rows)
    assert torch.load(d / "checkpoint_best.pt", weights_only=True)["epoch"] == best["epoch"]
    assert "acc-A" in res.line() and str(d) in res.line()
    assert json.loads((d / "metrics_test.json").read_text())["samples"] == 24


def test_resume_in_steps_equals_one_run(tmp_path):
    run(tiny_cfg("train.epochs=4"), out=tmp_path / "full", echo=lambda _: None)
    run(tiny_cfg("train.epochs=2"), out=tmp_path / "part", echo=lambda _: None)
    lines = []
    res = run(tiny_cfg("train.epochs=4"), out=tmp_path / "part", resume=True, echo=lines.append)
    assert any("resuming" in line and "after epoch 2" in line for line in lines)
    assert res.start_epoch == 2
    a, b = weights(tmp_path / "full" / "checkpoint_last.pt"), weights(tmp_path / "part" / "checkpoint_last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    rb = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert strip_time(map(json.loads, ra)) == strip_time(map(json.loads, rb))
    again = []
    run(tiny_cfg("train.epochs=4"), out=tmp_path / "part", echo=again.append)
    assert any("already complete" in line for line in again)


def test_incompatible_config_and_missing_resume(tmp_path):
    run(tiny_cfg("train.epochs=1"), out=tmp_path / "r", echo=lambda _: None)
    with pytest.raises(CheckpointError) as err:
        run(tiny_cfg("train.epochs=2", "model.options.hidden=8"), out=tmp_path / "r",
            echo=lambda _: None)
    assert "model.options" in str(err.value) and "hidden" in str(err.value)
    with pytest.raises(CheckpointError, match="no checkpoint_last.pt"):
        run(tiny_cfg(), out=tmp_path / "empty", resume=True, echo=lambda _: None)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    # 48 samples / 16 = 3 batches per epoch: NaN from the 5th forward = epoch 2, batch 2
    cfg = tiny_cfg("model.options.nan_after=4")
    with pytest.raises(NonFiniteLossError) as err:
        run(cfg, out=tmp_path / "r", echo=lambda _: None)
    msg = str(err.value)
    assert "loss is nan at epoch 2, batch 2" in msg and "checkpoint_last.pt (epoch 1)" in msg
    assert torch.load(tmp_path / "r" / "checkpoint_last.pt", weights_only=True)["epoch"] == 1
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("encoding", ["repeat", "poisson"])
def test_static_data_encoders(tmp_path, encoding):
    cfg = tiny_cfg("data.name=tiny_static", "data.options={n: 32}", f"data.encoding={encoding}",
                   "data.T=5", "model.options={features: 16, classes: 2}", "train.epochs=2",
                   "train.loss=mse_rate")
    res = run(cfg, out=tmp_path / encoding, echo=lambda _: None)
    assert res.history[-1]["train_acc"] > 0.5
    res2 = run(cfg, out=tmp_path / (encoding + "2"), echo=lambda _: None)
    assert strip_time(res.history) == strip_time(res2.history)  # Poisson spikes are seeded


def test_evaluate_checkpoint_matches_logged_test_metrics(tmp_path):
    res = run(tiny_cfg("train.epochs=2"), out=tmp_path / "r", echo=lambda _: None)
    out = evaluate_checkpoint(tmp_path / "r" / "checkpoint_last.pt", imports=[PLUGIN],
                              metrics=False, echo=lambda _: None)
    assert out["acc"] == res.history[-1]["test_acc"]
    assert out["loss"] == pytest.approx(res.history[-1]["test_loss"], rel=1e-6)
    with pytest.raises(ValueError, match="no validation split"):
        evaluate_checkpoint(tmp_path / "r", split="val", imports=[PLUGIN], echo=lambda _: None)


def test_summarize_ties_go_to_later_epoch():
    rows = [{"epoch": 1, "val_acc": 0.5, "test_acc": 0.9}, {"epoch": 2, "val_acc": 0.7, "test_acc": 0.6},
            {"epoch": 3, "val_acc": 0.7, "test_acc": 0.8}, {"epoch": 4, "val_acc": 0.6, "test_acc": 0.7}]
    assert summarize(rows) == {"best_epoch": 3, "acc_A": 0.9, "acc_B": 0.8}
    loss_rows = [{"epoch": 1, "test_loss": 0.3}, {"epoch": 2, "test_loss": 0.2},
                 {"epoch": 3, "test_loss": 0.2}]
    assert summarize(loss_rows)["best_epoch"] == 3 and summarize(loss_rows)["acc_A"] is None


def test_grad_clip_bounds_the_update():
    model = torch.nn.Linear(4, 3)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x = torch.randn(2, 8, 4) * 100
    loader = [(x, torch.zeros(8, dtype=torch.long))]
    step = Step(lambda out, y: (out ** 2).mean(), lambda v: v, torch.device("cpu"), grad_clip=1e-3)
    train_one_epoch(model, loader, opt, step)
    delta = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert delta.norm() == pytest.approx(1e-3, rel=1e-4)


def test_multi_clip_evaluation_follows_the_majority_rule(tmp_path):
    from spikeflow.data import create_dataset
    from spikeflow.train.data import collate_clips
    from spikeflow.train.losses import predict

    cfg = tiny_cfg("train.epochs=1", "data.eval_options={clips: 3}", "data.options.noise=3.0",
                   "model.options.dropout=0.0")
    res = run(cfg, out=tmp_path / "r", echo=lambda _: None)
    model = create_model_from(tmp_path / "r")
    test = create_dataset("tiny_seq", split="test", n=48, noise=3.0, clips=3)
    x, y = collate_clips([test[i] for i in range(len(test))])
    assert x.shape == (4, 24 * 3, 6)
    assert torch.equal(x[:, 3 * 5 + 2], test[5][0][2])  # sample 5, clip 2
    with torch.no_grad():
        preds = predict(model(x)).view(24, 3)
    expect = ((preds == y[:, None]).float().mean(1) > 0.5).float().mean().item()
    assert res.history[-1]["test_acc"] == pytest.approx(expect)
    clip_level = (preds == y[:, None]).float().mean().item()
    assert clip_level != pytest.approx(expect)  # the two rules differ on this data
    metrics = json.loads((tmp_path / "r" / "metrics_test.json").read_text())
    assert metrics["clips"] == 3 and metrics["accuracy"] == pytest.approx(expect)
    assert metrics["clip_accuracy"] == pytest.approx(clip_level)


def create_model_from(run_dir: Path) -> torch.nn.Module:
    from spikeflow.models import create_model

    ckpt = torch.load(run_dir / "checkpoint_last.pt", weights_only=True)
    model = create_model(ckpt["model_name"], **ckpt["config"]["model"]["options"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


def test_compiled_model_checkpoints_plain_state_dict(tmp_path, monkeypatch):
    """train.compile wraps the model (as torch.compile's OptimizedModule does, with an
    ``_orig_mod`` attribute); checkpoints hold the unwrapped state dict. (A real torch.compile run
    takes a minute on CPU, too long for the suite; the wrapper stands in for it.)"""
    compiled = []

    class Wrapper(torch.nn.Module):
        def __init__(self, mod):
            super().__init__()
            self._orig_mod = mod

        def forward(self, x):
            compiled.append(1)
            return self._orig_mod(x)

    monkeypatch.setattr(torch, "compile", Wrapper)
    run(tiny_cfg("train.epochs=1", "train.compile=true"), out=tmp_path / "c", echo=lambda _: None)
    run(tiny_cfg("train.epochs=1"), out=tmp_path / "p", echo=lambda _: None)
    assert compiled
    a, b = weights(tmp_path / "c" / "checkpoint_last.pt"), weights(tmp_path / "p" / "checkpoint_last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pack_saved_changes_nothing_but_memory(tmp_path):
    a = run(tiny_cfg("train.epochs=1"), out=tmp_path / "a", echo=lambda _: None)
    b = run(tiny_cfg("train.epochs=1", "train.pack_saved=true"), out=tmp_path / "b",
            echo=lambda _: None)
    assert strip_time(a.history) == strip_time(b.history)
    wa, wb = weights(tmp_path / "a" / "checkpoint_last.pt"), weights(tmp_path / "b" / "checkpoint_last.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

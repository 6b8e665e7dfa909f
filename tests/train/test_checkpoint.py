"""Checkpoints: atomic writes, weights-only loading, clear mismatch errors; RNG capture."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from spikeflow.train import checkpoint as ck
from spikeflow.train.seed import derive_seed, get_rng_state, seed_everything, set_rng_state


def _ckpt(**extra):
    return {"format": ck.FORMAT, "version": ck.VERSION, "model": {}, "config": {}, **extra}


def test_atomic_save_and_weights_only_load(tmp_path):
    path = tmp_path / "sub" / "c.pt"
    ck.atomic_save(_ckpt(rng=get_rng_state(), history=[{"epoch": 1, "test_acc": 0.5}]), path)
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temp file left
    loaded = ck.load_checkpoint(path)
    assert loaded["history"] == [{"epoch": 1, "test_acc": 0.5}]


class Evil:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_executable_payload_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(_ckpt(payload=Evil()), tmp_path / "evil.pt")
    with pytest.raises(ck.CheckpointError, match="cannot read checkpoint"):
        ck.load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "w.pt")
    with pytest.raises(ck.CheckpointError, match="not a spikeflow checkpoint"):
        ck.load_checkpoint(tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ck.CheckpointError, match="junk.pt"):
        ck.load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ck.CheckpointError, match="not found"):
        ck.load_checkpoint(tmp_path / "nope.pt")
    torch.save(_ckpt(version=99), tmp_path / "v.pt")
    with pytest.raises(ck.CheckpointError, match="version 99"):
        ck.load_checkpoint(tmp_path / "v.pt")


def test_config_mismatch_names_keys():
    saved = {"model": {"name": "a", "options": {"c": 1}}, "train": {"epochs": 3, "seed": 0}}
    same_but_epochs = {"model": {"name": "a", "options": {"c": 1}}, "train": {"epochs": 9, "seed": 0}}
    ck.check_compatible({"config": saved}, same_but_epochs, "x.pt")  # epochs may change
    other = {"model": {"name": "b", "options": {"c": 2}}, "train": {"epochs": 3, "seed": 1}}
    with pytest.raises(ck.CheckpointError) as err:
        ck.check_compatible({"config": saved}, other, "x.pt")
    msg = str(err.value)
    assert "model.name: checkpoint='a', config='b'" in msg
    assert "model.options: checkpoint={'c': 1}, config={'c': 2}" in msg
    assert "train.seed" in msg and "train.epochs" not in msg


def test_model_state_mismatch_messages():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    state = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2), nn.Linear(2, 2)).state_dict()
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_model_state(model, state, "c.pt", "net_a")
    msg = str(err.value)
    assert "not in model: 2.weight, 2.bias" in msg
    assert "0.weight: checkpoint (5, 3) vs model (4, 3)" in msg
    with pytest.raises(ck.CheckpointError, match="holds model 'net_a', not 'net_b'"):
        ck.load_model_state(model, model.state_dict(), "c.pt", "net_a", "net_b")


def test_rng_state_round_trip(tmp_path):
    seed_everything(5)
    state = get_rng_state()
    ck.atomic_save(_ckpt(rng=state), tmp_path / "r.pt")
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(6)
    set_rng_state(ck.load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3) != derive_seed(1, 3, 2)

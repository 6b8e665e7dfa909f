"""spikeflow.data.DataLoader (time-first batches) and the errors for swapped time and batch."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import spikeflow as sf
from spikeflow.data import DataLoader, TimeFirstCollate, check_time_first, collate_time_first
from spikeflow.train import load_config, run
from spikeflow.train.data import BatchEncoder

PLUGIN = str(Path(__file__).parents[1] / "train" / "tiny_plugin.py")


def items(n: int = 6, T: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(T, 2, 3, generator=g), i % 3) for i in range(n)]


def test_batches_are_time_first_and_equal_torch_batches_transposed():
    ds = items()
    ours = list(DataLoader(ds, batch_size=4, T=4))
    plain = list(torch.utils.data.DataLoader(ds, batch_size=4))
    assert [tuple(x.shape) for x, _ in ours] == [(4, 4, 2, 3), (4, 2, 2, 3)]
    for (x, y), (xp, yp) in zip(ours, plain):
        assert torch.equal(x, xp.transpose(0, 1)) and torch.equal(y, yp)
    assert isinstance(DataLoader(ds), torch.utils.data.DataLoader)
    assert sf.train.data.collate_time_first is collate_time_first
    assert pickle.loads(pickle.dumps(TimeFirstCollate(4))).T == 4     # usable in worker processes
    x, y = next(iter(DataLoader(ds, batch_size=3, num_workers=1)))
    assert tuple(x.shape) == (4, 3, 2, 3) and y.tolist() == [0, 1, 2]


def test_item_steps_are_checked():
    with pytest.raises(ValueError, match=r"item 0 of the batch has shape \(4, 2, 3\).*T = 5"):
        next(iter(DataLoader(items(), batch_size=2, T=5)))
    mixed = items(2, T=4) + items(2, T=3)
    with pytest.raises(ValueError, match=r"item 2 .* the first item's T = 4"):
        collate_time_first(mixed)
    time_last = [(x.permute(1, 2, 0), y) for x, y in items(2, T=4)]          # [2, 3, T]
    with pytest.raises(ValueError, match="it has 4 in dim 2"):
        next(iter(DataLoader(time_last, batch_size=2, T=4)))
    with pytest.raises(ValueError, match="either T"):
        DataLoader(items(), T=4, collate_fn=collate_time_first)


def test_check_time_first_names_a_swapped_batch():
    check_time_first(torch.zeros(4, 8, 2), 4)
    with pytest.raises(ValueError, match="time and batch look swapped"):
        check_time_first(torch.zeros(8, 4, 2), 4)
    with pytest.raises(ValueError, match=r"has 8 steps in dim 0 .* T=5$"):
        check_time_first(torch.zeros(8, 4, 2), 5)


def test_batch_encoder_rejects_batches_that_disagree_with_data_T():
    enc = BatchEncoder("none", 4, torch.device("cpu"))
    assert enc(torch.zeros(4, 3, 2)).shape == (4, 3, 2)
    with pytest.raises(ValueError, match="swapped"):
        enc(torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match="the dataset's items have 6 steps; make data.T match"):
        enc(torch.zeros(6, 3, 2))


def test_train_stops_at_start_when_items_disagree_with_data_T(tmp_path):
    base = {"data": {"name": "tiny_seq", "T": 5, "options": {"n": 16, "T": 7}},
            "model": {"name": "tiny_mlp"}, "train": {"epochs": 1, "batch_size": 8, "quiet": True},
            "run": {"imports": [PLUGIN], "tensorboard": False}}
    with pytest.raises(ValueError, match="7 steps in dim 0 .* data.T=5"):
        run(load_config(None, [], base=base), out=tmp_path / "r", echo=lambda _: None)


def test_a_model_built_for_a_fixed_T_names_swapped_dims():
    net = sf.models.create_model("asa_arch_a", T=4, input_size=8, channels=(4, 4, 4))
    with pytest.raises(ValueError, match="time and batch look swapped"):
        net(torch.zeros(3, 4, 2, 8, 8))
    with pytest.raises(ValueError, match="needs exactly 4 steps"):
        net(torch.zeros(5, 2, 2, 8, 8))

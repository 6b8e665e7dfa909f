"""The built-in default job (configs/default.yaml): valid, and trains end to end on n_digits."""
from __future__ import annotations

import json

import pytest
import torch

from spikeflow.train import load_config, run
from spikeflow.train.config import default_config_path
from spikeflow.train.setup import build_model


def test_default_config_is_the_documented_job():
    cfg = load_config(None)
    assert default_config_path().name == "default.yaml"
    assert (cfg.data.name, cfg.model.name, cfg.train.loss) == ("n_digits", "plif_nmnist", "mse_rate")
    model = build_model(cfg)
    out = model(torch.zeros(cfg.data.T, 2, 2, 20, 20))
    assert out.shape == (cfg.data.T, 2, 10)


@pytest.mark.slow
def test_default_job_one_epoch(tmp_path):
    """One epoch of the default job (the full job reaches ~96% in 12 epochs, docs/training.md)."""
    cfg = load_config(None, ["train.epochs=1", "train.quiet=true", "run.tensorboard=false"])
    res = run(cfg, out=tmp_path / "run", echo=lambda _: None)
    assert res.history[0]["test_acc"] > 0.2  # chance is 0.1
    metrics = json.loads((tmp_path / "run" / "metrics_test.json").read_text())
    assert metrics["samples"] == 359 and 0 < metrics["nasfr"] < 1
    assert any(k.startswith("tau/") for k in res.history[0])


def test_channels_last_matches_contiguous_on_the_default_model():
    """train.channels_last: same outputs and gradients (float64, conv algorithms may round
    differently), spikes and conv activations stay channels-last."""
    import copy

    from spikeflow.train.data import BatchEncoder, steps_channels_last

    cfg = load_config(None)
    torch.manual_seed(0)
    model = build_model(cfg).double().train()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = (torch.rand(cfg.data.T, 3, 2, 20, 20, dtype=torch.float64) < 0.3).double()
    xl = BatchEncoder("none", None, torch.device("cpu"), channels_last=True)(x)
    assert torch.equal(xl, x) and xl[0].is_contiguous(memory_format=torch.channels_last)
    assert steps_channels_last(torch.zeros(2, 3, 4)).shape == (2, 3, 4)  # other ranks untouched
    outs = []
    for net, inp in ((model, x), (fast, xl)):
        y = net(inp)
        y.square().sum().backward()
        outs.append((y.detach(), [p.grad for p in net.parameters()]))
    (y0, g0), (y1, g1) = outs
    torch.testing.assert_close(y1, y0, rtol=1e-12, atol=1e-12)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)

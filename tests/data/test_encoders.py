"""Encoders: repeat copies, Poisson rates converge to intensities, seeding reproduces spikes."""
import pytest
import torch

from spikeflow.data.encoders import create_encoder, list_encoders, poisson, repeat


def test_repeat_time_first():
    x = torch.rand(2, 1, 3, 3)
    y = repeat(x, 5)
    assert y.shape == (5, 2, 1, 3, 3) and all(torch.equal(y[t], x) for t in range(5))
    assert torch.equal(create_encoder("repeat", T=5)(x), y)


def test_poisson_rates_converge():
    x = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.9, 1.0, 1.7, -0.2])
    s = poisson(x, 20000, torch.Generator().manual_seed(0))
    assert s.shape == (20000, 8) and set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(0)
    p = x.clamp(0, 1)
    assert torch.all((rate - p).abs() <= 4 * torch.sqrt(p * (1 - p) / 20000) + 1e-9)
    assert rate[0] == 0 and rate[5] == 1 and rate[6] == 1 and rate[7] == 0


def test_poisson_seeded_and_fresh_each_call():
    x = torch.full((4, 4), 0.5)
    enc = create_encoder("poisson", T=10)
    a = enc(x, torch.Generator().manual_seed(7))
    b = enc(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(7)
    first, second = enc(x, g), enc(x, g)
    assert torch.equal(first, a) and not torch.equal(first, second)


def test_registry_and_bad_T():
    assert list_encoders() == ["poisson", "repeat"]
    with pytest.raises(ValueError, match="T must be"):
        repeat(torch.zeros(1), 0)
    with pytest.raises(ValueError, match="unknown encoder"):
        create_encoder("direct", T=4)


def test_batch_encoder_takes_encoders_from_the_registry(monkeypatch):
    from spikeflow.data.encoders import ENCODERS
    from spikeflow.train.data import BatchEncoder

    x = torch.full((2, 3), 0.5)
    rep = BatchEncoder("repeat", 4, torch.device("cpu"))
    assert rep.deterministic and rep.generator is None and torch.equal(rep(x), repeat(x, 4))
    poi = BatchEncoder("poisson", 4, torch.device("cpu"))
    poi.reseed(3)
    assert not poi.deterministic
    assert torch.equal(poi(x), poisson(x, 4, torch.Generator().manual_seed(3)))
    assert BatchEncoder("none", None, torch.device("cpu"))(x) is x

    class Ramp:  # a user encoder, found by name like the built-in ones
        random = False

        def __init__(self, T):
            self.T = T

        def __call__(self, x, generator=None):
            return torch.stack([x * (t + 1) for t in range(self.T)])

    monkeypatch.setitem(ENCODERS._entries, "ramp", Ramp)
    ramp = BatchEncoder("ramp", 3, torch.device("cpu"))
    assert ramp.deterministic and ramp(x)[:, 0, 0].tolist() == [0.5, 1.0, 1.5]
    with pytest.raises(ValueError, match="unknown encoder 'rpeat'"):
        BatchEncoder("rpeat", 3, torch.device("cpu"))

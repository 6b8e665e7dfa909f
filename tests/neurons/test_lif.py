"""LIF, PLIF and IF modules: known answers, options, state, shapes, dtypes, bad arguments."""
import math

import pytest
import torch

import spikeflow as sf
from spikeflow.neurons import IF, LIF, PLIF, LIFState


def const(value, T, dtype=torch.float64):
    return torch.full((T, 1, 1), value, dtype=dtype)


def train(neuron, value, T=6, dtype=torch.float64):
    return neuron(const(value, T, dtype)).flatten().tolist()


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_known_answers_lif(backend):
    # H = 0.75, 1.125 -> spike + hard reset to 0, repeat
    assert train(LIF(tau=2.0, backend=backend), 1.5) == [0, 1, 0, 1, 0, 1]
    # soft reset keeps the excess: V = 0.75, 0.125, 0.8125, 0.15625, ... (exact binary fractions)
    assert train(LIF(tau=2.0, v_reset=None, backend=backend), 1.5) == [0, 1, 0, 1, 0, 1]
    # decay_input=False: H = V/2 + 0.6 -> 0.6, 0.9, 1.05 -> spike every third step
    assert train(LIF(tau=2.0, decay_input=False, backend=backend), 0.6) == [0, 0, 1, 0, 0, 1]
    # H = 1.0 exactly: '>=' fires at once; '>' waits for 1.5
    assert train(LIF(tau=2.0, backend=backend), 2.0, T=4) == [1, 1, 1, 1]
    assert train(LIF(tau=2.0, compare=">", backend=backend), 2.0, T=4) == [0, 1, 0, 1]
    # threshold 0.5, reset to -1, no input decay: H = 0.25, 0.4375, 0.578 -> spike; V = -1; ...
    n = LIF(tau=4.0, v_threshold=0.5, v_reset=-1.0, decay_input=False, backend=backend)
    v, spikes = 0.0, []
    for _ in range(12):
        h = v - (v + 1.0) / 4.0 + 0.5
        spikes.append(float(h >= 0.5))
        v = -1.0 if h >= 0.5 else h
    assert train(n, 0.5, T=12) == spikes and spikes[:3] == [0, 0, 1] and sum(spikes) >= 2


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_known_answers_if_and_plif(backend):
    assert train(IF(backend=backend), 0.4) == [0, 0, 1, 0, 0, 1]
    assert train(IF(v_reset=None, backend=backend), 0.4, T=5) == [0, 0, 1, 0, 1]  # 1.2 -> 0.2, 0.6, 1.0
    plif = PLIF(init_tau=2.0, backend=backend)
    assert train(plif, 1.5) == [0, 1, 0, 1, 0, 1]
    # tau=4: H = 0.375, 0.65625, 0.8671875, 1.025390625 -> spike at the 4th step, then 0.375
    assert train(PLIF(init_tau=4.0, backend=backend), 1.5, T=5) == [0, 0, 0, 1, 0]


def test_plif_parameter_tau_and_gradient():
    plif = PLIF(init_tau=16.0)
    assert plif.w.item() == pytest.approx(-math.log(15.0)) and plif.tau == pytest.approx(16.0)
    assert [name for name, _ in plif.named_parameters()] == ["w"]
    x = torch.rand(8, 4, 10) * 3
    plif(x).sum().backward()
    assert plif.w.grad is not None and plif.w.grad.abs() > 0
    assert "tau=16" in repr(plif)


def test_learnable_surrogate_parameter_is_trained_through_the_neuron():
    n = LIF(surrogate=sf.surrogate.ATan(alpha=2.0, learnable=True))
    n(torch.rand(5, 3, 7) * 2).sum().backward()
    assert n.surrogate.alpha.grad is not None and n.surrogate.alpha.grad.abs() > 0
    assert [name for name, _ in n.named_parameters()] == ["surrogate.alpha"]


@pytest.mark.parametrize("cls", [LIF, PLIF, IF])
@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_state_round_trip_halves_equal_whole(cls, backend):
    n = cls(backend=backend, v_reset=None) if cls is not PLIF else cls(backend=backend)
    x = (torch.rand(10, 3, 5, dtype=torch.float64) * 2).requires_grad_()
    whole, state = n.run(x)
    (gx_whole,) = torch.autograd.grad(whole.sum() + state.v.sum(), x)
    first, mid = n.run(x[:4])
    second, end = n.run(x[4:], mid)
    assert torch.equal(torch.cat([first, second]), whole) and torch.equal(end.v, state.v)
    (gx_halves,) = torch.autograd.grad(first.sum() + second.sum() + end.v.sum(), x)
    torch.testing.assert_close(gx_halves, gx_whole, atol=1e-12, rtol=1e-12)


def test_forward_starts_from_rest_and_persistent_state():
    x = const(0.8, 2)
    assert train(LIF(), 0.8, T=2) == [0, 0] and train(LIF(), 0.8, T=2) == [0, 0]
    n = LIF(persistent=True)  # H = 0.4, 0.6 | 0.7, 0.75 | ... (never crosses 1)
    n(x)
    assert isinstance(n._stored_state, LIFState)
    assert n._stored_state.v.item() == pytest.approx(0.6) and not n._stored_state.v.requires_grad
    n(x)
    assert n._stored_state.v.item() == pytest.approx(0.75)
    n.reset_state()
    n(x)
    assert n._stored_state.v.item() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="reset_state"):
        n(torch.zeros(2, 3, 1, dtype=torch.float64))


@pytest.mark.parametrize("step_shape", [(7,), (2, 7), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(step_shape, dtype):
    x = torch.rand(5, *step_shape, dtype=dtype) * 2
    for n in (LIF(), PLIF(), IF()):
        s, state = n.run(x)
        ref, ref_state = type(n)(backend="reference").run(x)
        assert s.shape == x.shape and s.dtype == dtype and state.v.shape == step_shape
        assert torch.equal(s, ref) and torch.equal(state.v, ref_state.v)
        assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_surrogate_given_by_name_or_dict_and_config():
    n = LIF(surrogate={"name": "atan", "alpha": 3.0})
    assert isinstance(n.surrogate, sf.surrogate.ATan) and n.surrogate.value() == 3.0
    assert isinstance(PLIF(surrogate="rectangle").surrogate, sf.surrogate.Rectangle)
    assert isinstance(IF().surrogate, sf.surrogate.Sigmoid) and IF().surrogate.value() == 4.0
    again = LIF(**LIF(tau=3.0, v_reset=None, compare=">", surrogate="gaussian").config())
    assert again.config() == LIF(tau=3.0, v_reset=None, compare=">", surrogate="gaussian").config()
    assert PLIF(**PLIF(init_tau=3.0).config()).tau == pytest.approx(3.0)


@pytest.mark.parametrize("make, word", [
    (lambda: LIF(tau=0.5), "tau"),
    (lambda: LIF(tau=float("inf")), "tau"),
    (lambda: PLIF(init_tau=1.0), "init_tau"),
    (lambda: PLIF(init_tau=0.3), "init_tau"),
    (lambda: LIF(v_threshold="high"), "v_threshold"),
    (lambda: IF(v_reset=float("nan")), "v_reset"),
    (lambda: LIF(compare="=>"), "compare"),
    (lambda: LIF(backend="cuda"), "backend"),
    (lambda: LIF(surrogate=sf.surrogate.Rectangle(width=-1.0)), "width"),
    (lambda: LIF(surrogate="steep"), "steep"),
    (lambda: LIF()(torch.zeros(5)), r"\[T, B, \.\.\.\]"),
    (lambda: PLIF().run(torch.zeros(5)), r"\[T, B, \.\.\.\]"),
    (lambda: IF()(torch.zeros(2, 3, dtype=torch.int64)), "floating"),
])
def test_bad_arguments_raise_value_error_naming_them(make, word):
    with pytest.raises(ValueError, match=word):
        make()

"""snn-iir neuron: known answers, reset trace, state, shapes, dtypes, bad arguments."""
import math

import pytest
import torch

import spikeflow as sf
from spikeflow.neurons import IIRNeuron, IIRState


def train(neuron, value, T, dtype=torch.float64):
    return neuron(torch.full((T, 1, 1), value, dtype=dtype)).flatten().tolist()


def scalar_oracle(value, T, tau_m=4.0, membrane_filter=False, thr=1.0, reset_v=1.0):
    a = math.exp(-1 / tau_m)
    m = a if membrane_filter else 0.0
    v = r = 0.0
    out = []
    for _ in range(T):
        v = m * v + value - r
        s = float(v > thr)
        r = a * r + reset_v * s
        out.append(s)
    return out


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_known_answers(backend, dtype):
    # v = 1.5 -> spike, r = 1; v = 0.5, 1.5 - e^-0.25 = 0.72, 1.5 - e^-0.5 = 0.89, 1.5 - e^-0.75 = 1.03
    assert train(IIRNeuron(backend=backend), 1.5, 5, dtype) == [1, 0, 0, 0, 1]
    assert train(IIRNeuron(backend=backend), 1.5, 20, dtype) == scalar_oracle(1.5, 20)
    mf = IIRNeuron(membrane_filter=True, tau_m=2.0, backend=backend)
    expected = scalar_oracle(0.6, 20, tau_m=2.0, membrane_filter=True)
    assert train(mf, 0.6, 20, dtype) == expected and 2 <= sum(expected) <= 18
    assert train(IIRNeuron(backend=backend), 1.0, 3, dtype) == [0, 0, 0]  # v = 1 is not > 1
    assert train(IIRNeuron(compare=">=", backend=backend), 1.0, 2, dtype) == [1, 0]


def test_reset_trace_state_values():
    n = IIRNeuron(tau_m=4.0)
    _, state = n.run(torch.full((2, 1), 1.5, dtype=torch.float64))
    a = math.exp(-0.25)
    assert state.v.item() == pytest.approx(0.5) and state.r.item() == pytest.approx(a)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_state_round_trip_and_persistent(backend):
    n = IIRNeuron(membrane_filter=True, backend=backend)
    x = (torch.rand(9, 2, 6, dtype=torch.float64) * 1.5).requires_grad_()
    whole, state = n.run(x)
    (g_whole,) = torch.autograd.grad(whole.sum() + state.v.sum() + state.r.sum(), x)
    a, mid = n.run(x[:4])
    b, end = n.run(x[4:], mid)
    assert torch.equal(torch.cat([a, b]), whole)
    assert torch.equal(end.v, state.v) and torch.equal(end.r, state.r)
    (g_halves,) = torch.autograd.grad(a.sum() + b.sum() + end.v.sum() + end.r.sum(), x)
    torch.testing.assert_close(g_halves, g_whole, atol=1e-12, rtol=1e-12)
    p = IIRNeuron(membrane_filter=True, persistent=True, backend=backend)
    assert torch.equal(torch.cat([p(x[:4].detach()), p(x[4:].detach())]), whole)
    assert isinstance(p._stored_state, IIRState) and not p._stored_state.r.requires_grad


@pytest.mark.parametrize("step_shape", [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(step_shape, dtype):
    x = torch.rand(4, *step_shape, dtype=dtype) * 2
    s, state = IIRNeuron().run(x)
    ref, ref_state = IIRNeuron(backend="reference").run(x)
    assert s.shape == x.shape and s.dtype == dtype and state.r.shape == step_shape
    assert torch.equal(s, ref) and torch.equal(state.v, ref_state.v) and torch.equal(state.r, ref_state.r)


def test_defaults_and_config():
    n = IIRNeuron()
    assert isinstance(n.surrogate, sf.surrogate.Gaussian) and n.surrogate.value() == 0.4
    assert (n.tau_m, n.membrane_filter, n.v_threshold, n.reset_v, n.compare) == (4.0, False, 1.0, 1.0, ">")
    assert IIRNeuron(**n.config()).config() == n.config()


@pytest.mark.parametrize("make, word", [
    (lambda: IIRNeuron(tau_m=0.0), "tau_m"),
    (lambda: IIRNeuron(reset_v=float("inf")), "reset_v"),
    (lambda: IIRNeuron(surrogate=sf.surrogate.Gaussian(sigma=-0.4)), "sigma"),
    (lambda: IIRNeuron(backend="triton"), "backend"),
    (lambda: IIRNeuron()(torch.zeros(3)), "x"),
])
def test_bad_arguments(make, word):
    with pytest.raises(ValueError, match=word):
        make()

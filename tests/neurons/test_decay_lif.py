"""DecayLIF (STBP, He2020 / ASA arch A): known answers, state, shapes, dtypes, bad arguments."""
import pytest
import torch

import spikeflow as sf
from spikeflow.neurons import DecayLIF, DecayLIFState


def train(neuron, value, T=6, dtype=torch.float64):
    return neuron(torch.full((T, 1, 1), value, dtype=dtype)).flatten().tolist()


def scalar_oracle(value, T, decay=0.3, thr=0.3, strict=True):
    u, s, out = 0.0, 0.0, []
    for _ in range(T):
        u = decay * u * (1 - s) + value
        s = float(u > thr if strict else u >= thr)
        out.append(s)
    return out


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_known_answers(backend, dtype):
    n = DecayLIF(backend=backend)
    assert train(n, 0.25, dtype=dtype) == [0, 1, 0, 1, 0, 1]  # u = 0.25, 0.325 -> spike, reset
    assert train(n, 0.22, T=8, dtype=dtype) == scalar_oracle(0.22, 8) == [0, 0, 1, 0, 0, 1, 0, 0]
    assert train(n, 0.3, T=4, dtype=dtype) == [0, 1, 0, 1]  # u = 0.3 is not > 0.3
    assert train(DecayLIF(compare=">=", backend=backend), 0.3, T=4, dtype=dtype) == [1, 1, 1, 1]
    assert train(DecayLIF(decay=0.0, v_threshold=0.5, backend=backend), 0.6, T=3, dtype=dtype) == [1, 1, 1]


def test_reset_path_is_differentiated_unless_detached():
    x = torch.tensor([[0.25], [0.25], [0.1]], dtype=torch.float64, requires_grad=True)
    grads = []
    for detach in (False, True):
        s, state = DecayLIF(detach_reset=detach, surrogate="sigmoid").run(x)
        (g,) = torch.autograd.grad(state.v.sum(), x)
        grads.append(g)
    # v_final = u2 * (1 - s2); u2 = 0.3 * u1 * (1 - s1) + x2: only the reset path links x0 to s1
    assert not torch.allclose(grads[0], grads[1])
    assert grads[1][0].item() == 0.0 and grads[0][0].item() != 0.0  # s1 = 1 blocks the detached path


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_state_round_trip_and_persistent(backend):
    n = DecayLIF(backend=backend)
    x = (torch.rand(9, 2, 6, dtype=torch.float64) * 0.5).requires_grad_()
    whole, state = n.run(x)
    (g_whole,) = torch.autograd.grad(whole.sum() + state.v.sum(), x)
    a, mid = n.run(x[:5])
    b, end = n.run(x[5:], mid)
    assert torch.equal(torch.cat([a, b]), whole) and torch.equal(end.v, state.v)
    (g_halves,) = torch.autograd.grad(a.sum() + b.sum() + end.v.sum(), x)
    torch.testing.assert_close(g_halves, g_whole, atol=1e-12, rtol=1e-12)
    p = DecayLIF(persistent=True, backend=backend)
    out = torch.cat([p(x[:5].detach()), p(x[5:].detach())])
    assert torch.equal(out, whole) and isinstance(p._stored_state, DecayLIFState)
    p.reset_state()
    assert torch.equal(p(x[:5].detach()), a)


@pytest.mark.parametrize("step_shape", [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(step_shape, dtype):
    x = torch.rand(4, *step_shape, dtype=dtype) * 0.6
    s, state = DecayLIF().run(x)
    ref, ref_state = DecayLIF(backend="reference").run(x)
    assert s.shape == x.shape and s.dtype == dtype and state.v.shape == step_shape
    assert torch.equal(s, ref) and torch.equal(state.v, ref_state.v)


def test_defaults_and_config():
    n = DecayLIF()
    assert isinstance(n.surrogate, sf.surrogate.Rectangle) and n.surrogate.value() == 0.5
    assert (n.decay, n.v_threshold, n.compare) == (0.3, 0.3, ">")
    assert DecayLIF(**n.config()).config() == n.config()


@pytest.mark.parametrize("make, word", [
    (lambda: DecayLIF(decay=1.5), "decay"),
    (lambda: DecayLIF(decay=-0.1), "decay"),
    (lambda: DecayLIF(v_threshold=None), "v_threshold"),
    (lambda: DecayLIF(surrogate=sf.surrogate.Rectangle(width=0.0)), "width"),
    (lambda: DecayLIF(compare="gt"), "compare"),
    (lambda: DecayLIF()(torch.zeros(4)), "x"),
])
def test_bad_arguments(make, word):
    with pytest.raises(ValueError, match=word):
        make()

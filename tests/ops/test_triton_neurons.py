"""Triton neuron kernels (ops/_triton/lif.py, decay_lif.py, iir_neuron.py) on the test device
(``_device.py``: the Triton interpreter on CPU tensors by default, the GPU with
``SPIKEFLOW_TEST_DEVICE=cuda``), against the reference loops of ``functional/`` run on CPU.

Forward: spikes and final states must equal, bit for bit, the reference loop run in float32 on the
very values the kernel reads (for bfloat16/float16 storage: the upcast inputs; spikes are 0/1 in any
dtype and compared exactly, and the final state is that float32 state rounded once to the storage
dtype). Backward: the oracle is the reference loop with autograd in float64 on the same values (its
spikes are checked to be the same, so the oracle is valid). Float32 gradient tensors (x, states)
agree within 1e-5 relative elementwise, with an absolute floor of 1e-5 of the tensor's largest
value; the reduced parameter gradients (PLIF dL/dw, learnable surrogate dL/dalpha: sums of T*N
terms of either sign, of order 0.01-1 here) within 1e-5 relative or 1e-5 absolute. Storage in
bfloat16/float16: one rounding of a float32 value, so within one ulp of the dtype on top (2^-7 /
2^-11 relative): the interpreter converts float32 -> bfloat16 by truncation (triton 3.6's
``cast_impl``), the GPU (``cvt.rn``) to nearest; float16 goes through numpy, to nearest.
"""
from _device import DEVICE, require_device  # isort: skip  (first: sets TRITON_INTERPRET on CPU)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

require_device()
pytest.importorskip("triton")

from spikeflow.functional.decay_lif import decay_lif_reference  # noqa: E402
from spikeflow.functional.iir_neuron import iir_neuron_reference  # noqa: E402
from spikeflow.functional.lif import lif_reference  # noqa: E402
from spikeflow.functional.surrogate import SurrogateSpec  # noqa: E402
from spikeflow.ops._triton import decay_lif as tdl  # noqa: E402
from spikeflow.ops._triton import iir_neuron as tiir  # noqa: E402
from spikeflow.ops._triton import lif as tlif  # noqa: E402
from spikeflow.ops.codes import ATAN, GAUSSIAN, RECTANGLE, SIGMOID, TRIANGLE  # noqa: E402


RTOL = 1e-5
ULP = {torch.float32: 0.0, torch.bfloat16: 2.0 ** -7, torch.float16: 2.0 ** -11}  # relative
PARAM = {SIGMOID: 4.0, ATAN: 2.0, RECTANGLE: 0.5, GAUSSIAN: 0.4, TRIANGLE: 0.6}  # surrogate params
BLOCK = 128  # several programs and a partial last block for N = 300


def _dev(*tensors):
    """The tensors on the test device (what the kernels read)."""
    return [t.to(DEVICE) for t in tensors]


def _host(tensors):
    """Kernel outputs back on CPU for the comparison."""
    return [t.cpu() for t in tensors]


def _close(got, want, what, dtype=torch.float32):
    """``got`` (kernel) within RTOL (+ one ulp of ``dtype``) of ``want`` (float64 oracle); the
    absolute floor is RTOL times the largest ``|want|``, or RTOL itself for a reduced scalar."""
    got, want = got.cpu().double(), want.double()
    floor = RTOL * (1.0 if want.dim() == 0 else float(want.abs().max()))
    err = (got - want).abs()
    bound = (RTOL + ULP[dtype]) * want.abs() + floor
    assert bool((err <= bound).all()), (f"{what}: max error {float(err.max()):.3g} "
                                        f"(max |ref| {float(want.abs().max()):.3g})")


def _inputs(T, N, dtype, scale=1.2, shift=0.4, states=1):
    """Drive, initial states and upstream gradients, all stored in ``dtype``."""
    x = (torch.randn(T, N) * scale + shift).to(dtype)
    st = [(torch.randn(N) * 0.5).to(dtype) for _ in range(states)]
    gs = torch.randn(T, N).to(dtype)
    gst = [torch.randn(N).to(dtype) for _ in range(states)]
    return x, st, gs, gst


def _oracle(run, x, states, params, gs, gst):
    """Reference loop: float32 outputs (exact comparison) and float64 gradients of
    ``sum(S * gs) + sum(state_final * gst)`` w.r.t. ``x``, the states and ``params`` (a list of
    float32 0-dim tensors or None; each None is skipped). ``run(x, states, params)`` returns
    ``(S, *final_states)``."""
    with torch.no_grad():
        out32 = run(x.float(), [s.float() for s in states], [p for p in params])
    leaves = [x.double().requires_grad_()] + [s.double().requires_grad_() for s in states]
    pleaves = [None if p is None else p.detach().double().requires_grad_() for p in params]
    out64 = run(leaves[0], leaves[1:], pleaves)
    assert torch.equal(out64[0].float(), out32[0]), "float64 oracle spikes differ: other inputs"
    loss = (out64[0] * gs.double()).sum()
    loss = loss + sum((o * g.double()).sum() for o, g in zip(out64[1:], gst))
    wrt = leaves + [p for p in pleaves if p is not None]
    grads = torch.autograd.grad(loss, wrt)
    return out32, grads


def _check_forward(got, out32, dtype):
    s, *finals = got
    assert s.dtype == dtype
    assert torch.equal(s.float(), out32[0]), "spikes differ from the reference loop"
    for g, w in zip(finals, out32[1:]):
        assert g.dtype == dtype
        if dtype == torch.float32:
            assert torch.equal(g, w), "final state differs from the reference loop"
        else:  # one rounding of the float32 state (see the module docstring)
            assert bool(((g.float() - w).abs() <= ULP[dtype] * w.abs()).all()), "final state"


# ------------------------------------------------------------------------------------------- LIF
# (mode, tau, decay_input, v_reset (None = soft), strict, detach_reset, surrogate, learn alpha,
#  learn k)
LIF_CASES = [
    (0, None, True, 0.0, False, False, SIGMOID, True, False),
    (0, None, True, None, True, True, ATAN, False, False),
    (1, 2.0, True, 0.0, False, False, RECTANGLE, True, False),
    (1, 2.0, False, None, False, True, GAUSSIAN, True, False),
    (1, 3.0, True, None, True, False, TRIANGLE, True, False),  # tau not a power of 2: IEEE division
    (1, 3.0, False, -0.2, False, True, SIGMOID, False, False),
    (2, None, True, -0.2, False, False, ATAN, True, True),
    (2, None, False, 0.0, True, False, GAUSSIAN, False, True),
    (2, None, True, None, False, True, TRIANGLE, False, True),
    (2, None, False, None, False, False, RECTANGLE, True, True),
    (2, None, True, 0.0, False, False, SIGMOID, True, False),  # PLIF, k not learnable
]


def _lif_run(mode, tau, decay, v_reset, strict, detach, code):
    def run(x, states, params):
        w, alpha = params
        tau_or_k = torch.sigmoid(w) if mode == 2 else (tau if mode == 1 else 1.0)
        sur = SurrogateSpec(code, alpha if alpha is not None else PARAM[code])
        s, v = lif_reference(x, states[0], mode=mode, tau_or_k=tau_or_k, v_threshold=1.0,
                             v_reset=v_reset, decay_input=decay, detach_reset=detach,
                             surrogate=sur, strict=strict)
        return s, v
    return run


def _lif_check(case, T, N, dtype):
    mode, tau, decay, v_reset, strict, detach, code, learn_a, learn_k = case
    x, (v0,), gs, (gv,) = _inputs(T, N, dtype)
    w = torch.tensor(0.3)
    k = torch.sigmoid(w)
    alpha = torch.tensor(PARAM[code])
    params = [tau if tau is not None else 2.0, 1.0, 0.0 if v_reset is None else v_reset]
    flags = [mode, decay, v_reset is not None, strict, detach, code]
    dx, dv0, dk, dalpha, dgs, dgv = _dev(x, v0, k, alpha, gs, gv)
    got = tlif.lif_forward(dx, dv0, dk, dalpha, params, flags, True, block=BLOCK)
    run = _lif_run(mode, tau, decay, v_reset, strict, detach, code)
    out32, grads = _oracle(run, x, [v0], [w if mode == 2 else None, alpha if learn_a else None],
                           gs, [gv])
    _check_forward(_host(got[:2]), out32, dtype)
    saved = got[2]
    assert saved.dtype == torch.float32 and saved.shape == (T, N) and saved.device == DEVICE
    gx, gv0, gk, ga = _host(tlif.lif_backward(saved, dgs, dgv, dv0, dk, dalpha, params, flags,
                                              learn_k, learn_a, block=BLOCK))
    assert gx.dtype == dtype and gv0.dtype == dtype and gk.dtype == ga.dtype == torch.float32
    assert gk.shape == ga.shape == ()
    _close(gx, grads[0], "dL/dx", dtype)
    _close(gv0, grads[1], "dL/dv0", dtype)
    rest = list(grads[2:])
    if mode == 2:
        gw_ref = rest.pop(0)
        if learn_k:  # dL/dw = dL/dk * sigmoid'(w)
            _close(gk * (k * (1 - k)), gw_ref, "dL/dw (PLIF)")
        else:
            assert float(gk) == 0.0
    if learn_a:
        _close(ga, rest.pop(0), "dL/dalpha")
    else:
        assert float(ga) == 0.0


@pytest.mark.parametrize("case", LIF_CASES)
def test_lif_matches_reference(case):
    _lif_check(case, 6, 300, torch.float32)


@pytest.mark.parametrize("case,dtype", [(LIF_CASES[6], torch.bfloat16),
                                        (LIF_CASES[4], torch.bfloat16),
                                        (LIF_CASES[2], torch.float16)])
def test_lif_half_storage(case, dtype):
    _lif_check(case, 5, 200, dtype)


def test_lif_keep_false_and_short_sequences():
    """keep=False writes nothing else and gives the same outputs; T = 1 and N < BLOCK work."""
    x, (v0,), gs, (gv,) = _inputs(4, 100, torch.float32)
    k, alpha = torch.sigmoid(torch.tensor(-0.5)), torch.tensor(4.0)
    params, flags = [2.0, 1.0, 0.0], [2, True, True, False, False, SIGMOID]
    dx, dv0, dk, dalpha, dgv = _dev(x, v0, k, alpha, gv)
    s1, v1, h = _host(tlif.lif_forward(dx, dv0, dk, dalpha, params, flags, True))
    s2, v2, h2 = _host(tlif.lif_forward(dx, dv0, dk, dalpha, params, flags, False))
    assert h2.shape == (0, 100) and torch.equal(s1, s2) and torch.equal(v1, v2)
    s3, v3, h3 = tlif.lif_forward(dx[:1].contiguous(), dv0, dk, dalpha, params, flags, True)
    assert torch.equal(s3.cpu(), s1[:1]) and torch.equal(h3.cpu(), h[:1])
    gx, gv0, gk, ga = _host(tlif.lif_backward(h3, gs[:1].contiguous().to(DEVICE), dgv, dv0, dk,
                                              dalpha, params, flags, True, True))
    run = _lif_run(2, None, True, 0.0, False, False, SIGMOID)
    _, grads = _oracle(run, x[:1], [v0], [torch.tensor(-0.5), alpha], gs[:1], [gv])
    _close(gx, grads[0], "dL/dx")
    _close(gv0, grads[1], "dL/dv0")
    _close(gk * k * (1 - k), grads[2], "dL/dw")
    _close(ga, grads[3], "dL/dalpha")


def test_lif_rejects_bad_arguments():
    x, (v0,), _, _ = _inputs(2, 10, torch.float32)
    k, alpha = torch.tensor(0.5), torch.tensor(4.0)
    x, v0, k, alpha = _dev(x, v0, k, alpha)
    params, flags = [2.0, 1.0, 0.0], [1, True, True, False, False, SIGMOID]
    with pytest.raises(ValueError, match="storage dtype"):
        tlif.lif_forward(x.double(), v0.double(), k, alpha, params, flags, True)
    with pytest.raises(ValueError, match="v0"):
        tlif.lif_forward(x, v0[:5], k, alpha, params, flags, True)
    with pytest.raises(ValueError, match="mode"):
        tlif.lif_forward(x, v0, k, alpha, params, [7, True, True, False, False, SIGMOID], True)
    with pytest.raises(ValueError, match="k"):
        tlif.lif_forward(x, v0, None, alpha, params, [2, True, True, False, False, SIGMOID], True)
    with pytest.raises(ValueError, match="surrogate code"):
        tlif.lif_forward(x, v0, k, alpha, params, [1, True, True, False, False, 9], True)


# -------------------------------------------------------------------------------------- DecayLIF
# (decay, v_threshold, strict, detach_reset, surrogate, learn alpha)
DECAY_CASES = [
    (0.3, 0.3, True, False, RECTANGLE, True),
    (0.5, 0.6, False, True, SIGMOID, True),
    (0.3, 0.3, False, False, TRIANGLE, False),
    (0.8, 0.5, True, True, GAUSSIAN, True),
    (0.3, 0.4, True, False, ATAN, True),
]


def _decay_check(case, T, N, dtype):
    decay, thr, strict, detach, code, learn_a = case
    x, (v0,), gs, (gv,) = _inputs(T, N, dtype, scale=0.5, shift=0.15)
    alpha = torch.tensor(PARAM[code])
    params, flags = [decay, thr], [strict, detach, code]

    def run(x, states, ps):
        a = ps[0] if ps[0] is not None else PARAM[code]
        return decay_lif_reference(x, states[0], decay=decay, v_threshold=thr, detach_reset=detach,
                                   surrogate=SurrogateSpec(code, a), strict=strict)

    dx, dv0, dalpha, dgs, dgv = _dev(x, v0, alpha, gs, gv)
    s, v, saved = tdl.decay_lif_forward(dx, dv0, dalpha, params, flags, True, block=BLOCK)
    s, v = _host((s, v))
    out32, grads = _oracle(run, x, [v0], [alpha if learn_a else None], gs, [gv])
    _check_forward((s, v), out32, dtype)
    assert saved.dtype == torch.float32 and saved.shape == (T, N) and saved.device == DEVICE
    gx, gv0, ga = _host(tdl.decay_lif_backward(saved, dgs, dgv, dalpha, params, flags, learn_a,
                                               block=BLOCK))
    assert gx.dtype == gv0.dtype == dtype and ga.dtype == torch.float32 and ga.shape == ()
    _close(gx, grads[0], "dL/dx", dtype)
    _close(gv0, grads[1], "dL/dv0", dtype)
    if learn_a:
        _close(ga, grads[2], "dL/dalpha")
    else:
        assert float(ga) == 0.0
    s2, v2, none = _host(tdl.decay_lif_forward(dx, dv0, dalpha, params, flags, False, block=BLOCK))
    assert none.shape == (0, N) and torch.equal(s2, s) and torch.equal(v2, v)


@pytest.mark.parametrize("case", DECAY_CASES)
def test_decay_lif_matches_reference(case):
    _decay_check(case, 6, 300, torch.float32)


def test_decay_lif_bfloat16():
    _decay_check(DECAY_CASES[0], 5, 200, torch.bfloat16)


# ------------------------------------------------------------------------------------ IIR neuron
# (m, a, v_threshold, reset_v, strict, detach_reset, surrogate, learn alpha)
_A = float(np.exp(-1 / 4.0))
IIR_CASES = [
    (0.0, _A, 1.0, 1.0, True, False, GAUSSIAN, True),
    (_A, _A, 1.0, 0.7, False, True, SIGMOID, True),
    (_A, 0.6, 0.8, 1.0, True, False, RECTANGLE, False),
    (0.0, _A, 1.0, 1.0, False, False, TRIANGLE, True),
    (_A, _A, 1.0, 1.0, True, True, ATAN, True),
]


def _iir_check(case, T, N, dtype):
    m, a, thr, rv, strict, detach, code, learn_a = case
    x, (v0, r0), gs, (gv, gr) = _inputs(T, N, dtype, scale=1.0, shift=0.7, states=2)
    alpha = torch.tensor(PARAM[code])
    params, flags = [m, a, thr, rv], [strict, detach, code]

    def run(x, states, ps):
        p = ps[0] if ps[0] is not None else PARAM[code]
        return iir_neuron_reference(x, states[0], states[1], m=m, a=a, v_threshold=thr, reset_v=rv,
                                    detach_reset=detach, surrogate=SurrogateSpec(code, p),
                                    strict=strict)

    dx, dv0, dr0, dalpha, dgs, dgv, dgr = _dev(x, v0, r0, alpha, gs, gv, gr)
    s, v, r, saved = tiir.iir_neuron_forward(dx, dv0, dr0, dalpha, params, flags, True,
                                             block=BLOCK)
    s, v, r = _host((s, v, r))
    out32, grads = _oracle(run, x, [v0, r0], [alpha if learn_a else None], gs, [gv, gr])
    _check_forward((s, v, r), out32, dtype)
    assert saved.dtype == torch.float32 and saved.shape == (T, N) and saved.device == DEVICE
    gx, gv0, gr0, ga = _host(tiir.iir_neuron_backward(saved, dgs, dgv, dgr, dalpha, params, flags,
                                                      learn_a, block=BLOCK))
    assert gx.dtype == gv0.dtype == gr0.dtype == dtype and ga.dtype == torch.float32
    _close(gx, grads[0], "dL/dx", dtype)
    _close(gv0, grads[1], "dL/dv0", dtype)
    _close(gr0, grads[2], "dL/dr0", dtype)
    if learn_a:
        _close(ga, grads[3], "dL/dalpha")
    else:
        assert float(ga) == 0.0
    s2, v2, r2, none = _host(tiir.iir_neuron_forward(dx, dv0, dr0, dalpha, params, flags, False,
                                                     block=BLOCK))
    assert none.shape == (0, N) and torch.equal(s2, s) and torch.equal(v2, v) and torch.equal(r2, r)


@pytest.mark.parametrize("case", IIR_CASES)
def test_iir_neuron_matches_reference(case):
    _iir_check(case, 6, 300, torch.float32)


def test_iir_neuron_bfloat16():
    _iir_check(IIR_CASES[1], 5, 200, torch.bfloat16)

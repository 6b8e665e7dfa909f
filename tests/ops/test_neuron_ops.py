"""The neuron ops (spikeflow::lif, ::decay_lif, ::iir_neuron): opcheck, the op's reference
implementation against the autograd loops of ``spikeflow.functional``, the CPU kernels and the
Triton adapters (on the test device of ``_device.py``: under the interpreter on CPU tensors by
default, on the GPU with ``SPIKEFLOW_TEST_DEVICE=cuda``) against the op's reference implementation
on CPU; on a GPU also the public neurons with ``backend="fused"`` against ``"reference"`` on CPU."""
from _device import DEVICE, cuda_only, needs_device  # isort: skip  (first: TRITON_INTERPRET on CPU)

import pytest  # noqa: E402
import torch  # noqa: E402

import spikeflow  # noqa: E402
from spikeflow import ops  # noqa: E402
from spikeflow.functional.decay_lif import decay_lif_reference  # noqa: E402
from spikeflow.functional.iir_neuron import iir_neuron_reference  # noqa: E402
from spikeflow.functional.lif import lif_reference  # noqa: E402
from spikeflow.functional.surrogate import SurrogateSpec  # noqa: E402
import importlib  # noqa: E402

D = importlib.import_module("spikeflow.ops.decay_lif")
I = importlib.import_module("spikeflow.ops.iir_neuron")
L = importlib.import_module("spikeflow.ops.lif")
from spikeflow.ops._neuron_op import backward_impl, forward_impl  # noqa: E402

T, N = 5, 70


def _x(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((T, N), generator=g, dtype=dtype) * 1.4 - 0.2


# (family, states, tparams, params, flags) for a spread of variants
def _cases():
    k = torch.tensor(0.4, dtype=torch.float64)
    a = torch.tensor(3.0, dtype=torch.float64)
    w = torch.tensor(0.5, dtype=torch.float64)
    yield "lif-hard", L.FAMILY, 1, [k, a], [3.0, 1.0, 0.0], [1, 1, 1, 0, 0, 0]
    yield "lif-soft-strict", L.FAMILY, 1, [k, a], [2.0, 0.8, 0.0], [1, 0, 0, 1, 0, 1]
    yield "plif", L.FAMILY, 1, [k, a], [2.0, 1.0, -0.1], [2, 1, 1, 0, 0, 3]
    yield "plif-detach", L.FAMILY, 1, [k, w], [2.0, 1.0, 0.0], [2, 0, 1, 0, 1, 2]
    yield "if", L.FAMILY, 1, [k, a], [1.0, 1.0, 0.0], [0, 1, 1, 0, 0, 4]
    yield "decay_lif", D.FAMILY, 1, [w], [0.3, 0.3], [1, 0, 2]
    yield "decay_lif-detach", D.FAMILY, 1, [a], [0.5, 0.6], [0, 1, 0]
    yield "iir", I.FAMILY, 2, [torch.tensor(0.4, dtype=torch.float64)], [0.7, 0.6, 1.0, 1.0], [1, 0, 3]
    yield "iir-detach", I.FAMILY, 2, [a], [0.0, 0.5, 0.9, 0.8], [0, 1, 1]


CASES = list(_cases())
IDS = [c[0] for c in CASES]


def _loop(fam, x, states, tparams, params, flags):
    """The autograd reference loop of spikeflow.functional for one case."""
    if fam is L.FAMILY:
        mode, decay, hard, strict, detach, code = flags
        tau_or_k = tparams[0] if mode == L.PLIF_MODE else params[0]
        s, v = lif_reference(x, states[0], mode=mode, tau_or_k=tau_or_k, v_threshold=params[1],
                             v_reset=params[2] if hard else None, decay_input=bool(decay),
                             detach_reset=bool(detach), surrogate=SurrogateSpec(code, tparams[1]),
                             strict=bool(strict))
        return [s, v]
    if fam is D.FAMILY:
        strict, detach, code = flags
        s, v = decay_lif_reference(x, states[0], decay=params[0], v_threshold=params[1],
                                   detach_reset=bool(detach),
                                   surrogate=SurrogateSpec(code, tparams[0]), strict=bool(strict))
        return [s, v]
    strict, detach, code = flags
    s, v, r = iir_neuron_reference(x, states[0], states[1], m=params[0], a=params[1],
                                   v_threshold=params[2], reset_v=params[3],
                                   detach_reset=bool(detach),
                                   surrogate=SurrogateSpec(code, tparams[0]), strict=bool(strict))
    return [s, v, r]


def _grads(outs, inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.rand(o.shape, generator=g, dtype=o.dtype) for o in outs]
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    return torch.autograd.grad(loss, inputs, allow_unused=True), weights


@pytest.mark.parametrize("name,fam,n_states,tparams,params,flags", CASES, ids=IDS)
def test_op_reference_and_cpu_kernel_equal_the_autograd_loop(name, fam, n_states, tparams, params,
                                                             flags):
    x = _x().requires_grad_()
    states = [(_x(seed=5 + i)[0] * 0.5).requires_grad_() for i in range(n_states)]
    tps = [t.clone().requires_grad_() for t in tparams]
    want = _loop(fam, x, states, tps, params, flags)
    want_g, weights = _grads(want, [x, *states, *tps])
    # the op's reference implementation (forward) + reference backward
    ref = fam.reference_forward(x.detach(), [s.detach() for s in states], tps, params, flags, True)
    for a, b in zip(ref[:-1], want):
        assert torch.equal(a, b.detach())
    needs = [True] * len(tps)
    for kind in ("reference", "cpu"):
        saved = ref[-1].clone()
        gs, gst = weights[0], weights[1:]
        if kind == "reference":
            got = fam.reference_backward(saved, gs, gst, states, tps, params, flags, needs)
        else:
            got = backward_impl(fam, saved, gs, gst, [s.detach() for s in states], tps, params,
                                flags, needs, x.dtype)
        for i, (a, b) in enumerate(zip(got, want_g)):
            if b is None:  # e.g. IF/LIF never read k
                continue
            torch.testing.assert_close(a.to(b.dtype).reshape(b.shape), b, rtol=1e-9, atol=1e-11,
                                       msg=f"{kind} gradient {i}")
    # the public eager path equals the loop too
    fused = forward_impl(fam, x.detach(), [s.detach() for s in states], tps, params, flags, False)
    for a, b in zip(fused[:-1], want):
        assert torch.equal(a, b.detach())


@pytest.mark.parametrize("name,fam,n_states,tparams,params,flags", CASES[::2], ids=IDS[::2])
def test_opcheck(name, fam, n_states, tparams, params, flags):
    x = _x(torch.float32).requires_grad_()
    states = [torch.zeros(N, requires_grad=True) for _ in range(n_states)]
    tps = [t.float().requires_grad_() for t in tparams]
    op = getattr(torch.ops.spikeflow, fam.name).default
    torch.library.opcheck(op, (x, states, tps, params, flags, True))
    torch.library.opcheck(op, (x.detach(), [s.detach() for s in states],
                               [t.detach() for t in tps], params, flags, False))


@needs_device
@pytest.mark.parametrize("name,fam,n_states,tparams,params,flags", CASES, ids=IDS)
def test_triton_adapters_equal_the_reference_implementation(name, fam, n_states, tparams, params,
                                                            flags):
    """The Triton adapters on ``DEVICE`` tensors against the reference implementation on CPU:
    spikes, final states and the saved tensor exactly equal, gradients within 1e-5."""
    _check_adapters(fam, n_states, [t.float() for t in tparams], params, flags)


@needs_device
@pytest.mark.parametrize("name,fam,n_states,tparams,params,flags", CASES[::3], ids=IDS[::3])
def test_triton_adapters_read_float64_scalars(name, fam, n_states, tparams, params, flags):
    """As the ops pass them: a fixed surrogate parameter (and IF/LIF's stand-in k) as a float64
    0-dim tensor, read by the kernels through its pointer (rounded to float32 there)."""
    _check_adapters(fam, n_states, [t.double() for t in tparams], params, flags)


def _check_adapters(fam, n_states, tps, params, flags):
    pytest.importorskip("triton")

    x = _x(torch.float32)
    states = [(_x(torch.float32, seed=5 + i)[0] * 0.5) for i in range(n_states)]
    want = fam.reference_forward(x, states, tps, params, flags, True)
    dev = [t.to(DEVICE) for t in (x, *states, *tps)]
    d_x, d_states, d_tps = dev[0], dev[1:1 + n_states], dev[1 + n_states:]
    got = fam.cuda_forward(d_x, d_states, d_tps, params, flags, True)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.device == DEVICE
        assert torch.equal(a.cpu(), b), f"forward output {i}"
    g = torch.Generator().manual_seed(3)
    gs = torch.rand((T, N), generator=g)
    gst = [torch.rand(N, generator=g) for _ in states]
    needs = [True] * len(tps)
    want_b = fam.reference_backward(want[-1], gs, gst, states, tps, params, flags, needs)
    got_b = fam.cuda_backward(got[-1], gs.to(DEVICE), [t.to(DEVICE) for t in gst], d_states,
                              d_tps, params, flags, needs)
    assert len(got_b) == len(want_b)
    for i, (a, b) in enumerate(zip(got_b, want_b)):
        torch.testing.assert_close(a.cpu().double(), b.double(), rtol=1e-5, atol=1e-5,
                                   msg=f"gradient {i}")


@cuda_only
@pytest.mark.parametrize("neuron", ["PLIF", "LIF"])
def test_public_neurons_fused_on_cuda_equal_the_reference_on_cpu(neuron):
    """End to end through the public API: ``spikeflow.neurons.PLIF()`` / ``LIF()`` on a CUDA input
    with ``backend="fused"`` (the Triton kernels) against ``backend="reference"`` (the autograd
    loop) on CPU: the same spikes, gradients (``x``, PLIF's ``w``) within 1e-5."""
    pytest.importorskip("triton")
    g = torch.Generator().manual_seed(11)
    x = torch.rand((8, 4, 96), generator=g) * 2.4 - 0.2  # [T, B, N], a spread of firing rates
    weights = torch.rand(x.shape, generator=g)
    results = []
    for backend, device in (("reference", torch.device("cpu")), ("fused", DEVICE)):
        cls = getattr(spikeflow.neurons, neuron)
        module = cls(backend=backend).to(device)
        xi = x.to(device).requires_grad_()
        spikes = module(xi)
        assert spikes.device == device and spikes.dtype == torch.float32
        (spikes * weights.to(device)).sum().backward()
        params = [p.grad.cpu() for p in module.parameters()]
        results.append((spikes.detach().cpu(), xi.grad.cpu(), params))
    (s_ref, gx_ref, gp_ref), (s_fused, gx_fused, gp_fused) = results
    assert 0.05 < float(s_ref.mean()) < 0.6, "the input should make a spread of spikes"
    assert torch.equal(s_fused, s_ref), "spikes differ from the reference loop"
    torch.testing.assert_close(gx_fused, gx_ref, rtol=1e-5, atol=1e-5, msg="dL/dx")
    assert len(gp_fused) == len(gp_ref) == (1 if neuron == "PLIF" else 0)
    for a, b in zip(gp_fused, gp_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg="dL/dw")


def test_half_inputs_on_cpu_use_float32_state_and_the_cpu_backward():
    x = _x(torch.float32).bfloat16().requires_grad_()
    k = torch.tensor(0.45, requires_grad=True)
    s, v = ops.lif(x, torch.zeros(N, dtype=torch.bfloat16), mode=ops.PLIF_MODE, k=k, alpha=4.0)
    assert s.dtype == v.dtype == torch.bfloat16
    (s.float().sum() + v.float().sum()).backward()
    xf = x.detach().float().requires_grad_()
    kf = k.detach().clone().requires_grad_()
    sf, vf = ops.lif(xf, torch.zeros(N), mode=ops.PLIF_MODE, k=kf, alpha=4.0)
    (sf.sum() + vf.sum()).backward()
    assert torch.equal(s.float(), sf)  # float32 state arithmetic on the same (bf16) inputs
    torch.testing.assert_close(x.grad.float(), xf.grad, rtol=2 ** -7, atol=1e-6)
    torch.testing.assert_close(k.grad, kf.grad)


@pytest.mark.parametrize("name,fam,n_states,tparams,params,flags", CASES[1::3], ids=IDS[1::3])
def test_opcheck_without_the_cpu_kernels(monkeypatch, name, fam, n_states, tparams, params, flags):
    """Without numba the op runs its reference implementations: the backward op reads `saved`
    without copying it (only the CPU kernel writes over its buffer), and opcheck still finds no
    input mutated and no output aliasing an input."""
    dispatch = importlib.import_module("spikeflow.ops.dispatch")
    monkeypatch.setattr(dispatch, "_available", lambda module: module != "numba")
    x = _x(torch.float32).requires_grad_()
    assert dispatch.fused_problem(x) == "numba is not installed"
    states = [torch.zeros(N, requires_grad=True) for _ in range(n_states)]
    tps = [t.float().requires_grad_() for t in tparams]
    op = getattr(torch.ops.spikeflow, fam.name).default
    torch.library.opcheck(op, (x, states, tps, params, flags, True))
    out = op(x, states, tps, params, flags, True)
    saved = out[-1].detach().clone()
    gs = torch.rand_like(x)
    back = getattr(torch.ops.spikeflow, fam.name + "_backward").default
    got = back(out[-1].detach(), gs, [torch.zeros(N) for _ in range(n_states)],
               [s.detach() for s in states], [t.detach() for t in tps], params, flags,
               [True] * len(tps), x.dtype)
    assert torch.equal(out[-1], saved)  # not written over
    ref = fam.reference_backward(saved, gs, [torch.zeros(N) for _ in range(n_states)],
                                 [s.detach() for s in states], [t.detach() for t in tps], params,
                                 flags, [True] * len(tps))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.to(b.dtype), b, rtol=0, atol=0)


def test_cached_constants_are_shared_plain_tensors():
    """``constant(..., cache=True)`` (what the ops use on CUDA outside tracing): one tensor per
    value and device, created as a normal tensor even inside inference mode (training may then
    save it for backward), bounded in number; uncached calls give fresh tensors."""
    from spikeflow.ops import _neuron_op as no

    no._CONSTANTS.clear()
    cpu = torch.device("cpu")
    with torch.inference_mode():
        a = no.constant(4.0, cpu, cache=True)
    assert not a.is_inference() and a.dtype == torch.float64 and float(a) == 4.0
    assert no.constant(4.0, cpu, cache=True) is a
    assert no.constant(2.0, cpu, cache=True) is not a
    assert no.constant(4.0, cpu) is not a
    x = torch.randn(3, 5, requires_grad=True)
    s, _ = ops.lif(x, torch.zeros(5), mode=ops.LIF_MODE, alpha=a)  # saved for backward
    s.sum().backward()
    for i in range(no._MAX_CONSTANTS + 10):
        no.constant(float(i), cpu, cache=True)
    assert len(no._CONSTANTS) <= no._MAX_CONSTANTS
    no._CONSTANTS.clear()

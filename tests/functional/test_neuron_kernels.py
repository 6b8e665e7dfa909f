"""Fused numba kernels vs the reference loops (the oracles): identical spikes and states, gradients of
inputs, initial states, PLIF's k and learnable surrogate parameters equal within 1e-10 (float64)."""
import itertools

import numpy as np
import pytest
import torch

from spikeflow.functional import surrogate as S
from spikeflow.ops._cpu import _blocks, _runtime
from spikeflow.functional.decay_lif import decay_lif
from spikeflow.functional.iir_neuron import iir_neuron
from spikeflow.functional.lif import IF_MODE, LIF_MODE, PLIF_MODE, _run as lif_run

PARAMS = {S.SIGMOID: 4.0, S.ATAN: 2.0, S.RECTANGLE: 0.5, S.GAUSSIAN: 0.4, S.TRIANGLE: 1.0}
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def _compare(run, tensors, grads_out, dtype):
    """``run(backend, *tensors) -> outputs``; compares both backends' outputs and all gradients."""
    results = []
    for backend in ("reference", "fused"):
        outs = run(backend, *tensors)
        loss = sum((o * g).sum() for o, g in zip(outs, grads_out))
        grads = torch.autograd.grad(loss, tensors)
        results.append((outs, grads))
    (outs_r, grads_r), (outs_f, grads_f) = results
    for a, b in zip(outs_r, outs_f):
        assert torch.equal(a, b)  # bit-identical spikes and states
    tol = TOL[dtype]
    for a, b in zip(grads_r, grads_f):
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)
    return outs_r


def _inputs(T, shape, dtype, code, seed):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, *shape, generator=gen, dtype=dtype) * 0.8 + 0.45).requires_grad_()
    v0 = (torch.randn(*shape, generator=gen, dtype=dtype) * 0.3).requires_grad_()
    alpha = torch.tensor(PARAMS[code], dtype=dtype, requires_grad=True)
    grads = [torch.randn(T, *shape, generator=gen, dtype=dtype),
             torch.randn(*shape, generator=gen, dtype=dtype),
             torch.randn(*shape, generator=gen, dtype=dtype)]
    return x, v0, alpha, grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", [IF_MODE, LIF_MODE, PLIF_MODE])
@pytest.mark.parametrize("v_reset", [0.0, -0.2, None])
@pytest.mark.parametrize("detach", [False, True])
def test_lif_family_fused_equals_reference(dtype, mode, v_reset, detach):
    for decay, strict, code in itertools.product((True, False), (False, True), PARAMS):
        if mode == IF_MODE and not decay:
            continue
        x, v0, alpha, grads = _inputs(7, (3, 41), dtype, code, seed=code)
        w = torch.tensor(0.4, dtype=dtype, requires_grad=True)

        def run(backend, x, v0, alpha, w):
            tk = {IF_MODE: 1.0, LIF_MODE: 2.5, PLIF_MODE: torch.sigmoid(w)}[mode]  # tau or k
            return lif_run(x, v0, mode, tk, 1.0, v_reset, decay, detach, S.SurrogateSpec(code, alpha),
                           strict, backend, "test")

        outs = _compare(run, (x, v0, alpha, w), grads, dtype) if mode == PLIF_MODE else \
            _compare(lambda b, x, v0, a: run(b, x, v0, a, w), (x, v0, alpha), grads, dtype)
        assert 0 < outs[0].mean() < 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("strict", [False, True])
def test_decay_lif_fused_equals_reference(dtype, detach, strict):
    for code in PARAMS:
        x, v0, alpha, grads = _inputs(8, (2, 37), dtype, code, seed=10 + code)

        def run(backend, x, v0, alpha):
            return decay_lif(x * 0.5, v0, decay=0.3, v_threshold=0.3, detach_reset=detach,
                             surrogate=S.SurrogateSpec(code, alpha), strict=strict, backend=backend)

        outs = _compare(run, (x, v0, alpha), grads, dtype)
        assert 0 < outs[0].mean() < 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("membrane_filter", [False, True])
def test_iir_neuron_fused_equals_reference(dtype, detach, membrane_filter):
    for code, strict in itertools.product(PARAMS, (True, False)):
        x, v0, alpha, grads = _inputs(9, (2, 37), dtype, code, seed=20 + code)
        r0 = (torch.rand(2, 37, dtype=dtype) * 0.5).requires_grad_()

        def run(backend, x, v0, r0, alpha):
            return iir_neuron(x + 0.4, v0, r0, tau_m=4.0, membrane_filter=membrane_filter,
                              v_threshold=1.0, reset_v=1.0, detach_reset=detach,
                              surrogate=S.SurrogateSpec(code, alpha), strict=strict, backend=backend)

        outs = _compare(run, (x, v0, r0, alpha), grads, dtype)
        assert 0 < outs[0].mean() < 1


def test_fixed_surrogate_param_no_grad_and_no_grad_mode():
    x = torch.randn(6, 4, 300, dtype=torch.float64) + 0.5
    spec = S.SurrogateSpec(S.ATAN, 2.0)
    ref = lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "reference", "t")
    fused = lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "fused", "t")
    with torch.no_grad():
        xg = x.clone().requires_grad_()
        nograd = lif_run(xg, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "fused", "t")
    for a, b, c in zip(ref, fused, nograd):
        assert torch.equal(a, b) and torch.equal(a, c)
        assert b.grad_fn is None and c.grad_fn is None


def test_non_contiguous_input_and_many_blocks_on_two_threads():
    base = torch.randn(10, 4, 6, 600, dtype=torch.float64)
    x = base.transpose(0, 1)[:, :, :, ::2].contiguous().transpose(2, 3)  # [4, 10, 300, 6]: 8 blocks
    x = (x + 0.5).requires_grad_()
    assert not x.is_contiguous()
    g = torch.randn(x.shape, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = []
        for backend in ("reference", "fused"):
            s, v = lif_run(x, None, LIF_MODE, 2.0, 1.0, None, True, False,
                           S.SurrogateSpec(S.SIGMOID, 4.0), False, backend, "t")
            (gx,) = torch.autograd.grad((s * g).sum() + v.sum(), x)
            results.append((s, v, gx))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    torch.testing.assert_close(results[1][2], results[0][2], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("decay", [True, False])
def test_plif_k_gradient_fused_into_the_reverse_loop_over_blocks(v_reset, decay):
    """PLIF with a fixed surrogate parameter takes the loop that computes dH/dk from H[t-1] inside
    the reverse loop (and from v0 at t = 0), here over several blocks on two threads."""
    gen = torch.Generator().manual_seed(5)
    N = 2 * _runtime.MAX_BLOCK + 1000
    x = (torch.randn(4, N, generator=gen, dtype=torch.float64) * 0.8 + 0.45).requires_grad_()
    v0 = (torch.randn(N, generator=gen, dtype=torch.float64) * 0.3).requires_grad_()
    w = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(4, N, generator=gen, dtype=torch.float64),
             torch.randn(N, generator=gen, dtype=torch.float64)]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        def run(backend, x, v0, w):
            return lif_run(x, v0, PLIF_MODE, torch.sigmoid(w), 1.0, v_reset, decay, False,
                           S.SurrogateSpec(S.SIGMOID, 4.0), False, backend, "t")

        _compare(run, (x, v0, w), grads, torch.float64)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("tau", [2.0, 4.0, 3.0])
def test_power_of_two_tau_multiplies_with_identical_spikes(tau):
    """tau = 2^k runs the multiplying loop; spikes stay bit-identical to the dividing reference."""
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn(16, 500, generator=gen) * 1.5 + 0.7).requires_grad_()
    g = torch.randn(16, 500, generator=gen)

    def run(backend, x):
        return lif_run(x, None, LIF_MODE, tau, 1.0, 0.0, True, False,
                       S.SurrogateSpec(S.SIGMOID, 4.0), False, backend, "t")[:1]

    _compare(run, (x,), [g], torch.float32)


def test_block_size_bounds_and_parallel_split():
    threads = torch.get_num_threads()
    try:
        for nthreads, N in itertools.product((1, 2, 4), (1, 100, 5000, 262_144, 10**7)):
            torch.set_num_threads(nthreads)
            bs = _runtime.block_size(N)
            assert bs % 64 == 0 and _runtime.MIN_BLOCK <= bs <= _runtime.MAX_BLOCK
            if _runtime.MIN_BLOCK * 4 * nthreads <= N <= _runtime.MAX_BLOCK * 4 * nthreads:
                assert -(-N // bs) >= 4 * nthreads - 1  # about four blocks per thread
    finally:
        torch.set_num_threads(threads)


def test_empty_sequence_returns_state_unchanged():
    v = torch.ones(3)
    s, v_out = lif_run(torch.zeros(0, 3), v, LIF_MODE, 2.0, 1.0, 0.0, True, False,
                       S.SurrogateSpec(S.SIGMOID, 4.0), False, "auto", "t")
    assert s.shape == (0, 3) and torch.equal(v_out, v)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorised_exp_accuracy(dtype):
    low = -700.0 if dtype == np.float64 else -87.0
    y = np.concatenate([np.linspace(low, 0.0, 20001), [-1e-30, -0.0, -750.0]]).astype(dtype)
    out = np.empty_like(y)
    _blocks.expneg(y, len(y), _blocks.consts(dtype), out, np.empty_like(y))
    ref = np.exp(y.astype(np.float64))
    normal = ref > np.finfo(dtype).tiny
    rel = np.abs(out[normal] - ref[normal]) / ref[normal]
    assert rel.max() < (1e-15 if dtype == np.float64 else 3e-7)
    assert out[-1] == 0.0 and out[-2] == 1.0 and out[-3] == 1.0


def test_backend_errors_and_fallbacks():
    x = torch.randn(3, 2, 4, dtype=torch.float16)
    spec = S.SurrogateSpec(S.SIGMOID, 4.0)
    with pytest.raises(RuntimeError, match="float32/float64"):
        lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "fused", "LIF")
    with pytest.raises(ValueError, match="backend"):
        lif_run(x.float(), None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "cuda", "LIF")
    from spikeflow import ops

    assert ops.use_fused("auto", x, "LIF16")  # the op runs its reference implementation
    assert ops.fused_problem(x) == "the CPU kernels take float32/float64 tensors (got torch.float16)"
    s, _ = lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "auto", "LIF")
    ref, _ = lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "reference", "LIF")
    assert s.dtype == torch.float16 and s.shape == ref.shape
    with pytest.raises(ValueError, match="v must have the shape"):
        lif_run(x.float(), torch.zeros(3), LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "auto", "t")


def test_devices_without_a_fused_kernel_run_the_ops_reference_implementation():
    from spikeflow.ops import BackendError

    x = torch.empty(3, 2, 4, device="meta")  # any device without a fused kernel
    spec = S.SurrogateSpec(S.SIGMOID, 4.0)
    with pytest.raises(BackendError, match="no fused kernel for meta tensors"):
        lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "fused", "LIFmeta")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" takes the op's reference implementation silently
        s, v = lif_run(x, None, LIF_MODE, 2.0, 1.0, 0.0, True, False, spec, False, "auto", "LIFmeta")
    assert s.shape == x.shape and s.device.type == "meta" and v.shape == (2, 4)


@pytest.mark.parametrize("enabled", ["1", "0"])
def test_large_outputs_on_huge_pages_are_ordinary_tensors(monkeypatch, enabled):
    from spikeflow.ops._cpu import _alloc

    monkeypatch.setenv("SPIKEFLOW_HUGEPAGES", enabled)
    _alloc._madvise.cache_clear()
    try:
        big = _alloc.empty((3, 1 << 19), torch.float32)  # 6 MiB
        small = _alloc.empty((5, 7), torch.float64)
        assert big.shape == (3, 1 << 19) and big.dtype == torch.float32 and big.is_contiguous()
        assert small.shape == (5, 7) and small.dtype == torch.float64
        if enabled == "1" and _alloc.hugepages_enabled():
            assert big.data_ptr() % _alloc.HUGE_PAGE == 0
        if enabled == "0":
            assert not _alloc.hugepages_enabled()
        big.fill_(2.0)
        assert big.sum().item() == 2.0 * 3 * (1 << 19)
    finally:
        _alloc._madvise.cache_clear()


def test_output_buffers_are_reused_only_when_unreferenced():
    from spikeflow.ops._cpu import _alloc

    if not _alloc.hugepages_enabled():
        pytest.skip("huge-page buffers (and their cache) are off on this machine")
    shape = (3, 1 << 20)  # 12 MiB of float32
    a = _alloc.empty(shape, torch.float32)
    b = _alloc.empty(shape, torch.float32)
    assert a.data_ptr() != b.data_ptr()
    ptr, view = a.data_ptr(), a[1]
    del a
    c = _alloc.empty(shape, torch.float32)  # a's storage is still alive through the view
    assert c.data_ptr() not in (ptr, b.data_ptr())
    del view
    d = _alloc.empty(shape, torch.float32)  # now it is free again
    assert d.data_ptr() == ptr


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("grads", ["input", "k", "alpha"])
def test_paired_time_steps_for_every_sequence_length(T, grads):
    """The kernels run two time steps per pass and a single step for the odd one out (forward:
    the last; LIF backward: t = 0; DecayLIF backward: the first); PLIF pairs down to t = 2 and
    finishes with single steps; a learnable surrogate parameter uses single steps throughout."""
    x, v0, alpha, g = _inputs(T, (3, 70), torch.float64, S.SIGMOID, seed=40 + T)
    w = torch.tensor(0.3, dtype=torch.float64, requires_grad=grads == "k")
    alpha.requires_grad_(grads == "alpha")
    tensors = [x, v0] + ([w] if grads == "k" else []) + ([alpha] if grads == "alpha" else [])
    spec = S.SurrogateSpec(S.SIGMOID, alpha)

    def run_lif(backend, *ts):
        tau_or_k = torch.sigmoid(w) if grads == "k" else 2.0
        mode = PLIF_MODE if grads == "k" else LIF_MODE
        return lif_run(x, v0, mode, tau_or_k, 1.0, 0.0, True, False, spec, False, backend, "t")

    def run_decay(backend, *ts):
        return decay_lif(x, v0, detach_reset=False, surrogate=S.SurrogateSpec(S.RECTANGLE, alpha)
                         if grads == "alpha" else S.SurrogateSpec(S.RECTANGLE, 0.5),
                         strict=True, backend=backend)

    _compare(run_lif, tensors, g, torch.float64)
    if grads != "k":
        _compare(run_decay, tensors, g, torch.float64)

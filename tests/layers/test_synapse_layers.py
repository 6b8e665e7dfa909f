"""Synapse filter modules: coefficients, fused == reference (outputs and grads), state, persistence."""
import importlib.util
import math

import pytest
import torch

from spikeflow.functional import synapse as F
from spikeflow.ops import BackendError
from spikeflow.layers import DualExpReadout, DualExpSynapse, LowPassSynapse, StatefulFilter
from spikeflow.neurons import LIF
from spikeflow.neurons.base import BaseNeuron, StatefulModule

DT = torch.float64
needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba not installed")


def make(kind, shape, backend, dtype=DT):
    if kind == "dual_exp":
        layer = DualExpSynapse(shape, tau_m=4.0, tau_s=1.0, backend=backend)
    elif kind == "low_pass":
        layer = LowPassSynapse(shape, tau=4.0, backend=backend)
    else:
        layer = DualExpReadout(8.0, 2.0, backend=backend)
    layer.to(dtype)
    with torch.no_grad():  # per-element coefficients that differ, so broadcasting bugs show
        for p in layer.parameters():
            p.mul_(1 + 0.1 * torch.rand_like(p))
    return layer


def test_initial_coefficients_and_parameter_shapes():
    syn = DualExpSynapse((2, 3), tau_m=4.0, tau_s=1.0)
    dm, ds = math.exp(-1 / 4), math.exp(-1 / 1)
    for name, value in (("a1", dm + ds), ("a2", -dm * ds), ("b1", dm - ds)):
        p = getattr(syn, name)
        assert isinstance(p, torch.nn.Parameter) and p.shape == (2, 3) and p.requires_grad
        torch.testing.assert_close(p, torch.full((2, 3), value), rtol=1e-7, atol=0)
    lp = LowPassSynapse(784, tau=4.0, trainable=False)
    assert lp.a.shape == (784,) and not lp.a.requires_grad
    assert lp.a[0].item() == pytest.approx(math.exp(-0.25), rel=1e-7)
    assert [n for n, _ in DualExpReadout().named_parameters()] == []
    assert not DualExpSynapse(4, trainable=False).a1.requires_grad


def test_filters_are_stateful_filters_not_neurons():
    for layer in (DualExpSynapse(3), LowPassSynapse(3), DualExpReadout()):
        assert isinstance(layer, StatefulFilter) and not isinstance(layer, BaseNeuron)
        assert isinstance(layer, StatefulModule)  # the one stateful base, shared with neurons
    assert isinstance(LIF(), StatefulModule) and not isinstance(LIF(), StatefulFilter)
    for method in ("forward", "reset_state"):  # one implementation of the contract
        assert getattr(StatefulFilter, method) is getattr(StatefulModule, method)
    assert BaseNeuron.reset_state is StatefulModule.reset_state


@needs_numba
@pytest.mark.parametrize("kind", ["dual_exp", "low_pass", "readout"])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_fused_module_matches_reference_outputs_and_grads(kind, shape):
    torch.manual_seed(1)
    fused, ref = make(kind, shape, "fused"), make(kind, shape, "reference")
    ref.load_state_dict(fused.state_dict())
    x = torch.rand(9, 3, *shape, dtype=DT, requires_grad=True)
    y_f, s_f = fused.run(x)
    y_r, s_r = ref.run(x)
    torch.testing.assert_close(y_f, y_r, rtol=1e-10, atol=1e-10)
    for u, v in zip(s_f, s_r):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(y_r)
    inputs_f = [x, *fused.parameters()]
    inputs_r = [x, *ref.parameters()]
    for gf, gr in zip(torch.autograd.grad(y_f, inputs_f, g), torch.autograd.grad(y_r, inputs_r, g)):
        torch.testing.assert_close(gf, gr, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["reference", pytest.param("fused", marks=needs_numba)])
@pytest.mark.parametrize("kind", ["dual_exp", "low_pass", "readout"])
def test_run_on_halves_equals_whole_including_grads(kind, backend):
    torch.manual_seed(2)
    layer = make(kind, (4,), backend)
    x = torch.rand(10, 2, 4, dtype=DT, requires_grad=True)
    for split in (1, 2, 7):
        whole, s_whole = layer.run(x)
        first, s1 = layer.run(x[:split])
        second, s2 = layer.run(x[split:], s1)
        halves = torch.cat([first, second])
        torch.testing.assert_close(halves, whole, rtol=1e-12, atol=1e-12)
        for u, v in zip(s2, s_whole):
            torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)
        g = torch.randn_like(whole)
        params = [x, *layer.parameters()]
        for gh, gw in zip(torch.autograd.grad(halves, params, g), torch.autograd.grad(whole, params, g)):
            torch.testing.assert_close(gh, gw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["reference", pytest.param("fused", marks=needs_numba)])
def test_dual_exp_module_impulse_known_answer(backend):
    syn = DualExpSynapse(1, tau_m=4.0, tau_s=1.0, backend=backend).double()
    x = torch.zeros(12, 1, 1, dtype=DT)
    x[0] = 1.0
    psp = syn(x)[:, 0, 0]
    t = torch.arange(12, dtype=DT)
    torch.testing.assert_close(psp, torch.exp(-(t + 1) / 4) - torch.exp(-(t + 1)), rtol=1e-7, atol=1e-8)
    assert psp[0].item() == syn.b1.item()


@pytest.mark.parametrize("backend", ["reference", pytest.param("fused", marks=needs_numba)])
def test_readout_peak_and_any_trailing_shape(backend):
    readout = DualExpReadout(8.0, 2.0, backend=backend)
    x = torch.zeros(30, 2, 3, 4, dtype=DT)
    x[0] = 1.0
    y = readout(x)
    assert y.shape == x.shape
    assert torch.all(y.argmax(0) == 4)
    assert y.max().item() == pytest.approx(readout.v0 * (math.exp(-4 / 8) - math.exp(-4 / 2)), rel=1e-12)
    t_star = readout.peak_time
    assert readout.v0 * (math.exp(-t_star / 8) - math.exp(-t_star / 2)) == pytest.approx(1.0, rel=1e-12)
    torch.testing.assert_close(y[:, 0, 0, 0], torch.from_numpy(F.readout_filter(x[:, 0, 0, 0].numpy())))


@pytest.mark.parametrize("backend", ["reference", pytest.param("fused", marks=needs_numba)])
def test_forward_from_rest_and_persistent_state(backend):
    x = torch.rand(6, 2, 3, dtype=DT)
    plain = DualExpSynapse(3, backend=backend).double()
    assert torch.equal(plain(x), plain(x))  # rest on every call
    keep = DualExpSynapse(3, persistent=True, backend=backend).double()
    keep.load_state_dict(plain.state_dict())
    first, second = keep(x[:4]), keep(x[4:])
    whole = plain(x)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=1e-12, atol=1e-12)
    assert all(not s.requires_grad for s in keep._stored_state)
    with pytest.raises(ValueError, match="reset_state"):
        keep(torch.rand(3, 5, 3, dtype=DT))  # batch size changed
    keep.reset_state()
    torch.testing.assert_close(keep(x), whole, rtol=1e-12, atol=1e-12)


@needs_numba
def test_float32_fused_path_and_training_step_changes_coefficients():
    syn = DualExpSynapse(8)
    x = torch.rand(25, 4, 8)
    y = syn(x)
    assert y.dtype == torch.float32 and syn.use_fused(x)
    ref, _ = F.dual_exp_iir(x.double(), syn.a1.double(), syn.a2.double(), syn.b1.double())
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    before = [p.detach().clone() for p in syn.parameters()]
    opt = torch.optim.SGD(syn.parameters(), lr=0.1)
    (y ** 2).mean().backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, syn.parameters()))


def test_auto_backend_runs_the_op_reference_for_unsupported_dtype():
    syn = LowPassSynapse(3)
    x = torch.rand(4, 2, 3, dtype=torch.bfloat16)
    assert syn.use_fused(x)  # the op, which runs its plain-torch reference for bfloat16 on CPU
    y = syn.to(torch.bfloat16)(x)
    assert y.dtype == torch.bfloat16
    ref, _ = F.low_pass(x.double(), syn.a.double())  # float32 arithmetic, rounded once
    torch.testing.assert_close(y.double(), ref, rtol=8e-3, atol=0)
    with pytest.raises(BackendError, match="backend='fused'"):
        LowPassSynapse(3, backend="fused").to(torch.bfloat16)(x)
    assert issubclass(BackendError, ValueError)


def test_bad_arguments_raise():
    with pytest.raises(BackendError, match="backend"):
        DualExpSynapse(3, backend="cuda")
    for shape in (0, (2, -1), "3", 2.5):
        with pytest.raises(ValueError, match="shape"):
            DualExpSynapse(shape)
    with pytest.raises(ValueError, match="tau_m"):
        DualExpSynapse(3, tau_m=1.0, tau_s=1.0)
    with pytest.raises(ValueError, match="tau_s"):
        DualExpReadout(tau_m=4.0, tau_s=0.0)
    with pytest.raises(ValueError, match="tau"):
        LowPassSynapse(3, tau=-2.0)
    with pytest.raises(ValueError, match=r"\[T, B, 3\]"):
        DualExpSynapse(3)(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        DualExpReadout()(torch.zeros(4))
    with pytest.raises(ValueError, match="state"):
        DualExpSynapse(3).run(torch.zeros(4, 2, 3), (torch.zeros(2, 3),))

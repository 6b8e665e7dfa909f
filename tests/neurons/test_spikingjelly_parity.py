"""Parity with SpikingJelly 2.0's LIFNode / ParametricLIFNode / IFNode in multi-step mode:
identical spikes and gradients (inputs, PLIF w) to float64 tolerance."""
import itertools

import pytest
import torch

import spikeflow as sf

sj = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")
sj_functional = pytest.importorskip("spikingjelly.activation_based.functional")

pytestmark = pytest.mark.peers

SURROGATES = [("sigmoid", 4.0, lambda a: sj_surrogate.Sigmoid(alpha=a)),
              ("atan", 2.0, lambda a: sj_surrogate.ATan(alpha=a))]


def _pair(kind, decay_input, v_reset, detach, sg_name, alpha, sj_sg, backend):
    common = dict(v_reset=v_reset, detach_reset=detach)
    ours_sg = {"name": sg_name, "alpha": alpha}
    if kind == "lif":
        theirs = sj.LIFNode(tau=2.5, decay_input=decay_input, surrogate_function=sj_sg(alpha),
                            step_mode="m", **common)
        ours = sf.neurons.LIF(tau=2.5, decay_input=decay_input, surrogate=ours_sg, backend=backend,
                              **common)
    elif kind == "plif":
        theirs = sj.ParametricLIFNode(init_tau=2.5, decay_input=decay_input,
                                      surrogate_function=sj_sg(alpha), step_mode="m", **common)
        ours = sf.neurons.PLIF(init_tau=2.5, decay_input=decay_input, surrogate=ours_sg,
                               backend=backend, **common)
    else:
        theirs = sj.IFNode(surrogate_function=sj_sg(alpha), step_mode="m", **common)
        ours = sf.neurons.IF(surrogate=ours_sg, backend=backend, **common)
    return ours, theirs


def _run(module, x, g, reset=None):
    x = x.clone().requires_grad_()
    if reset is not None:
        reset(module)
    s = module(x)
    (s * g).sum().backward()
    params = [p.grad.clone() for p in module.parameters()]
    return s.detach(), x.grad, params


@pytest.mark.parametrize("kind", ["lif", "plif", "if"])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_float64_spikes_and_gradients_match(kind, backend):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(12, 3, 40, generator=gen, dtype=torch.float64) * 0.9 + 0.6
    g = torch.randn(12, 3, 40, generator=gen, dtype=torch.float64)
    for decay_input, v_reset, detach, (name, alpha, make) in itertools.product(
            (True, False), (0.0, None), (False, True), SURROGATES):
        if kind == "if" and not decay_input:
            continue
        ours, theirs = _pair(kind, decay_input, v_reset, detach, name, alpha, make, backend)
        ours, theirs = ours.double(), theirs.double()
        s_ours, gx_ours, gp_ours = _run(ours, x, g)
        s_theirs, gx_theirs, gp_theirs = _run(theirs, x, g, sj_functional.reset_net)
        assert torch.equal(s_ours, s_theirs.to(s_ours.dtype))
        assert 0.05 < s_ours.mean() < 0.95
        torch.testing.assert_close(gx_ours, gx_theirs, atol=1e-10, rtol=1e-10)
        assert len(gp_ours) == len(gp_theirs) == (1 if kind == "plif" else 0)
        for a, b in zip(gp_ours, gp_theirs):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_float32_spikes_identical_to_spikingjelly_cpu_path(kind):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(16, 4, 64, generator=gen) * 0.9 + 0.6
    g = torch.randn(16, 4, 64, generator=gen)
    ours, theirs = _pair(kind, True, 0.0, True, "atan", 2.0, SURROGATES[1][2], "fused")
    s_ours, gx_ours, gp_ours = _run(ours, x, g)
    s_theirs, gx_theirs, gp_theirs = _run(theirs, x, g, sj_functional.reset_net)
    assert torch.equal(s_ours, s_theirs)
    torch.testing.assert_close(gx_ours, gx_theirs, atol=1e-5, rtol=1e-5)
    for a, b in zip(gp_ours, gp_theirs):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)

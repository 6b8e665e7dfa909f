"""Reference loops of the snn-iir synapse filters: known answers, state round trips, bad arguments."""
import math

import numpy as np
import pytest
import torch

from spikeflow.functional import synapse as F

DT = torch.float64


def impulse(T: int, n: int = 1) -> torch.Tensor:
    x = torch.zeros(T, n, dtype=DT)
    x[0] = 1.0
    return x


def test_dual_exp_coefficients_known_values():
    a1, a2, b1 = F.dual_exp_coefficients(4.0, 1.0)
    dm, ds = math.exp(-0.25), math.exp(-1.0)
    assert (a1, a2, b1) == (dm + ds, -dm * ds, dm - ds)
    assert a2 == pytest.approx(-math.exp(-(4.0 + 1.0) / (4.0 * 1.0)), rel=1e-15)


def test_dual_exp_impulse_response_is_difference_of_exponentials():
    tau_m, tau_s = 4.0, 1.0
    a1, a2, b1 = (torch.tensor(c, dtype=DT) for c in F.dual_exp_coefficients(tau_m, tau_s))
    psp, state = F.dual_exp_iir(impulse(20), a1, a2, b1)
    t = torch.arange(20, dtype=DT)
    expected = torch.exp(-(t + 1) / tau_m) - torch.exp(-(t + 1) / tau_s)
    assert psp[0, 0].item() == pytest.approx(b1.item(), abs=1e-15)
    torch.testing.assert_close(psp[:, 0], expected, rtol=1e-12, atol=1e-14)
    assert torch.equal(state.psp1, psp[-1]) and torch.equal(state.psp2, psp[-2])


def test_low_pass_impulse_and_step_response():
    a = torch.tensor(math.exp(-1 / 4.0), dtype=DT)
    psp, _ = F.low_pass(impulse(10), a)
    torch.testing.assert_close(psp[:, 0], a ** torch.arange(10, dtype=DT), rtol=1e-13, atol=0)
    step, state = F.low_pass(torch.ones(10, 1, dtype=DT), a)
    expected = (1 - a ** torch.arange(1, 11, dtype=DT)) / (1 - a)
    torch.testing.assert_close(step[:, 0], expected, rtol=1e-13, atol=0)
    assert torch.equal(state.psp, step[-1])


def test_readout_impulse_response_and_unit_peak():
    tau_m, tau_s = 8.0, 2.0
    out, _ = F.dual_exp_readout(impulse(40), tau_m, tau_s)
    v0 = F.readout_gain(tau_m, tau_s)
    assert v0 == pytest.approx(4 ** (4 / 3) / 3, rel=1e-15)
    t = torch.arange(40, dtype=DT)
    torch.testing.assert_close(out[:, 0], v0 * (torch.exp(-t / tau_m) - torch.exp(-t / tau_s)),
                               rtol=1e-12, atol=1e-14)
    assert out[0, 0].item() == 0.0
    # continuous-time peak is exactly 1; the sampled peak (t=4) sits just below it
    t_star = math.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)
    assert v0 * (math.exp(-t_star / tau_m) - math.exp(-t_star / tau_s)) == pytest.approx(1.0, rel=1e-14)
    assert int(out[:, 0].argmax()) == 4
    assert 0.997 < out.max().item() <= 1.0


@pytest.mark.parametrize("tau_m,tau_s", [(8.0, 2.0), (4.0, 1.0), (5.0, 3.0)])
def test_readout_is_scaled_dual_exp_delayed_by_one_step(tau_m, tau_s):
    x = torch.rand(30, 3, 4, dtype=DT)
    out, _ = F.dual_exp_readout(x, tau_m, tau_s)
    coeffs = [torch.tensor(c, dtype=DT) for c in F.dual_exp_coefficients(tau_m, tau_s)]
    psp, _ = F.dual_exp_iir(x, *coeffs)
    v0 = F.readout_gain(tau_m, tau_s)
    torch.testing.assert_close(out[1:], v0 * psp[:-1], rtol=1e-12, atol=1e-12)
    assert torch.all(out[0] == 0)


@pytest.mark.parametrize("which", ["dual_exp", "low_pass", "readout"])
def test_run_on_halves_equals_whole(which):
    x = torch.randn(12, 2, 3, dtype=DT)
    a = torch.rand(3, dtype=DT)

    def run(seq, state):
        if which == "dual_exp":
            return F.dual_exp_iir(seq, a, -0.2 * a, 1 - a, state)
        if which == "low_pass":
            return F.low_pass(seq, a, state)
        return F.dual_exp_readout(seq, 6.0, 1.5, state)

    whole, s_whole = run(x, None)
    first, s1 = run(x[:5], None)
    second, s2 = run(x[5:], s1)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=1e-13, atol=1e-13)
    for u, v in zip(s2, s_whole):
        torch.testing.assert_close(u, v, rtol=1e-13, atol=1e-13)


def test_per_element_coefficients_broadcast_over_batch():
    x = torch.randn(6, 4, 2, 3, dtype=DT)
    a1 = torch.rand(2, 3, dtype=DT)
    psp, _ = F.dual_exp_iir(x, a1, -0.1 * a1, torch.ones(2, 3, dtype=DT))
    for i in range(2):
        for j in range(3):
            ref, _ = F.dual_exp_iir(x[:, :, i, j], a1[i, j], -0.1 * a1[i, j], torch.tensor(1.0, dtype=DT))
            torch.testing.assert_close(psp[:, :, i, j], ref, rtol=1e-14, atol=1e-14)


def test_readout_filter_numpy_and_torch():
    x = (np.random.default_rng(0).random((25, 7)) < 0.2)
    y_np = F.readout_filter(x, 8.0, 2.0)
    assert isinstance(y_np, np.ndarray) and y_np.dtype == np.float32 and y_np.shape == (25, 7)
    y64 = F.readout_filter(x.astype(np.float64))
    assert y64.dtype == np.float64
    y_t = F.readout_filter(torch.from_numpy(x.astype(np.float64)))
    assert isinstance(y_t, torch.Tensor)
    np.testing.assert_allclose(y_t.numpy(), y64, rtol=0, atol=0)
    np.testing.assert_allclose(y_np, y64, rtol=1e-5, atol=1e-6)
    assert not np.shares_memory(y64, x)


@pytest.mark.parametrize("kwargs,name", [
    (dict(tau_m=2.0, tau_s=2.0), "tau_m"), (dict(tau_m=1.0, tau_s=3.0), "tau_m"),
    (dict(tau_m=4.0, tau_s=0.0), "tau_s"), (dict(tau_m=4.0, tau_s=-1.0), "tau_s"),
    (dict(tau_m=float("inf"), tau_s=1.0), "tau_m"),
])
def test_bad_time_constants_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        F.dual_exp_coefficients(**kwargs)
    with pytest.raises(ValueError, match=name):
        F.readout_gain(**kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="tau"):
        F.low_pass_coefficient(0.0)
    with pytest.raises(ValueError, match="x must have shape"):
        F.low_pass(torch.zeros(0, 3), torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"state\.psp must be a tensor of shape \(2, 3\)"):
        F.low_pass(torch.zeros(4, 2, 3), torch.tensor(0.5), F.LowPassState(torch.zeros(3)))
    with pytest.raises(ValueError, match="tuple of 2 tensors"):
        F.dual_exp_iir(torch.zeros(4, 3), 1.0, 0.0, 1.0, (torch.zeros(3),))

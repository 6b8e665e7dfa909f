"""Surrogate gradients: gradcheck of every derivative (input and shape parameter), heaviside,
config round trips, bad arguments."""
import math

import pytest
import torch

import spikeflow as sf
from spikeflow.functional import surrogate as F

PARAMS = {"sigmoid": 4.0, "atan": 2.0, "rectangle": 0.5, "gaussian": 0.4, "triangle": 1.0}
KINKS = {"rectangle": lambda p: [p / 2], "triangle": lambda p: [0.0, p]}


class _Primitive(F.SpikeFunction):
    """Forward = the smooth primitive F(z; p), backward = SpikeFunction's hand-written one: gradcheck
    then proves the backward is exactly dF/dz and dF/dp."""

    @staticmethod
    def forward(ctx, z, p, code, strict):
        F._save(ctx, z, p, code)
        return F.primitive(z, code, p)


def _points(name: str, p: float) -> torch.Tensor:
    z = torch.linspace(-1.7, 1.7, 41, dtype=torch.float64) * max(p, 0.5)
    for kink in KINKS.get(name, lambda p: [])(p):  # finite differences fail at kinks: stay away
        z = z[(z.abs() - kink).abs() > 1e-3]
    return z


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_gradcheck_input_and_param(name):
    code, p0 = F.CODES[name], PARAMS[name]
    z = _points(name, p0).requires_grad_()
    p = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, p: _Primitive.apply(z, p, code, False), (z, p))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_derivative_integrates_to_primitive_from_0_to_1(name):
    code, p = F.CODES[name], PARAMS[name]
    z = torch.linspace(-60, 60, 1_200_001, dtype=torch.float64)
    d = F.derivative(z, code, p)
    ends = F.primitive(torch.tensor([-60.0, 60.0], dtype=torch.float64), code, p)
    step_error = 3e-4 if name == "rectangle" else 1e-6  # trapezoid error at the box edges
    assert torch.trapezoid(d, z).item() == pytest.approx((ends[1] - ends[0]).item(), abs=step_error)
    assert ends[0].item() < 5e-3 and ends[1].item() > 1 - 5e-3  # atan has the heaviest tails
    assert d.argmax().item() == z.abs().argmin().item() or name == "rectangle"
    assert (d >= 0).all()


def test_known_values():
    z = torch.tensor([0.0, 0.3], dtype=torch.float64)
    s = torch.sigmoid(torch.tensor(4 * 0.3, dtype=torch.float64)).item()
    assert F.derivative(z, F.SIGMOID, 4.0).tolist() == pytest.approx([1.0, 4 * s * (1 - s)])
    assert F.derivative(z, F.ATAN, 2.0).tolist() == pytest.approx(
        [1.0, 1.0 / (1 + (math.pi / 2 * 2 * 0.3) ** 2)])
    assert F.derivative(torch.tensor([0.0, 0.2499, 0.25, -0.3]), F.RECTANGLE, 0.5).tolist() == [2, 2, 0, 0]
    assert F.derivative(z, F.GAUSSIAN, 0.4).tolist() == pytest.approx(
        [1 / (math.sqrt(2 * math.pi) * 0.4), math.exp(-0.09 / 0.32) / (math.sqrt(2 * math.pi) * 0.4)])
    assert F.derivative(torch.tensor([0.0, 0.5, -1.0, 2.0]), F.TRIANGLE, 1.0).tolist() == [1, 0.5, 0, 0]


def test_heaviside_strict_and_not():
    z = torch.tensor([-1.0, 0.0, 1e-30, 2.0])
    assert F.heaviside(z).tolist() == [0, 1, 1, 1]
    assert F.heaviside(z, strict=True).tolist() == [0, 0, 1, 1]
    assert sf.surrogate.ATan()(z, strict=True).tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("cls", [sf.surrogate.Sigmoid, sf.surrogate.ATan, sf.surrogate.Rectangle,
                                 sf.surrogate.Gaussian, sf.surrogate.Triangle])
def test_module_learnable_param_gets_sum_of_dF_dp(cls):
    sg = cls(learnable=True).double()
    z = torch.linspace(-0.9, 0.9, 13, dtype=torch.float64, requires_grad=True)
    g = torch.randn(13, dtype=torch.float64)
    (sg(z) * g).sum().backward()
    p = sg.param.detach()
    assert torch.allclose(z.grad, g * F.derivative(z.detach(), sg.code, p), atol=1e-14)
    expected = (g * F.derivative_param(z.detach(), sg.code, p)).sum()
    assert torch.allclose(sg.param.grad, expected, atol=1e-14)
    assert sg.param.grad.abs() > 0


def test_not_learnable_has_no_parameters_and_fixed_value():
    sg = sf.surrogate.Rectangle(width=0.25)
    assert list(sg.parameters()) == [] and sg.value() == 0.25 and sg.param == 0.25


def test_build_and_config_round_trip():
    for sg in (sf.surrogate.Sigmoid(alpha=3.0, learnable=True), sf.surrogate.Triangle(width=0.7)):
        again = sf.surrogate.build(sg.config())
        assert type(again) is type(sg) and again.config() == sg.config()
    assert isinstance(sf.surrogate.build("ATan"), sf.surrogate.ATan)
    assert sf.surrogate.build("gaussian").value() == 0.4
    assert sf.surrogate.list_surrogates() == ["atan", "gaussian", "rectangle", "sigmoid", "triangle"]


@pytest.mark.parametrize("make, word", [
    (lambda: sf.surrogate.Rectangle(width=-0.5), "width"),
    (lambda: sf.surrogate.Triangle(width=0.0), "width"),
    (lambda: sf.surrogate.Gaussian(sigma=float("nan")), "sigma"),
    (lambda: sf.surrogate.ATan(alpha=0), "alpha"),
    (lambda: sf.surrogate.build("nope"), "nope"),
    (lambda: sf.surrogate.build({"alpha": 2.0}), "name"),
    (lambda: sf.surrogate.build({"name": "atan", "width": 2.0}), "atan"),
    (lambda: sf.surrogate.build(3.0), "surrogate"),
    (lambda: F.derivative(torch.zeros(1), 9, 1.0), "code"),
])
def test_bad_arguments_raise_value_error_naming_them(make, word):
    with pytest.raises(ValueError, match=word):
        make()

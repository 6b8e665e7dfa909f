"""Surrogate gradients: objects with a forward Heaviside step and a smooth backward derivative.

    >>> import torch, spikeflow as sf
    >>> sg = sf.surrogate.ATan(alpha=2.0)
    >>> z = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)   # z = v - v_threshold
    >>> sg(z)
    tensor([0., 1., 1.], grad_fn=<SpikeFunctionBackward>)
    >>> sg(z, strict=True)                       # He2020 / snn-iir: a spike needs v > threshold
    tensor([0., 0., 1.], grad_fn=<SpikeFunctionBackward>)
    >>> sf.surrogate.build({"name": "rectangle", "width": 0.5}).config()
    {'name': 'rectangle', 'width': 0.5, 'learnable': False}

``learnable=True`` makes the shape parameter (``alpha``, ``width`` or ``sigma``) an ``nn.Parameter``
that receives ``dL/dp = sum(dL/dS * dF/dp)`` (see :mod:`spikeflow.functional.surrogate` for the
formulas). Whether reaching the threshold exactly counts as a spike is a neuron option
(``compare=">="`` or ``">"``), passed here as ``strict``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Union

import torch
from torch import Tensor, nn

from spikeflow.functional import surrogate as F
from spikeflow.registry import Registry

__all__ = [
    "Surrogate", "Sigmoid", "ATan", "Rectangle", "Gaussian", "Triangle",
    "SURROGATES", "SurrogateLike", "build", "create", "list_surrogates",
]

SURROGATES: Registry = Registry("surrogate")


class Surrogate(nn.Module):
    """Base class: one positive shape parameter named :attr:`param_name`.

    Args:
        value: the shape parameter (``alpha``, ``width`` or ``sigma``); must be finite and > 0.
        learnable: make it an ``nn.Parameter`` (one scalar per surrogate instance).
    """

    name: str = ""
    code: int = -1
    param_name: str = ""

    def __init__(self, value: float, learnable: bool = False) -> None:
        super().__init__()
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"{type(self).__name__}: {self.param_name} must be a finite number > 0, got {value}"
            )
        self.learnable = bool(learnable)
        if self.learnable:
            self.register_parameter(self.param_name, nn.Parameter(torch.tensor(value)))
        else:
            setattr(self, "_" + self.param_name, value)

    @property
    def param(self) -> Union[float, Tensor]:
        """The shape parameter: a float, or the ``nn.Parameter`` when learnable."""
        if self.learnable:
            return getattr(self, self.param_name)
        return getattr(self, "_" + self.param_name)

    def value(self) -> float:
        """The current shape parameter as a Python float (for logging and configs)."""
        p = self.param
        return float(p.detach()) if isinstance(p, Tensor) else float(p)

    def spec(self) -> F.SurrogateSpec:
        """``(code, param)`` for the functional/fused dynamics."""
        return F.SurrogateSpec(self.code, self.param)

    def forward(self, z: Tensor, strict: bool = False) -> Tensor:
        """Spikes ``H(z)`` (``z = v - v_threshold``) with this surrogate's gradient."""
        return F.spike(z, self.spec(), strict)

    def derivative(self, z: Tensor) -> Tensor:
        """The surrogate ``dS/dz`` at ``z`` (no autograd needed)."""
        return F.derivative(z, self.code, self.param)

    def primitive(self, z: Tensor) -> Tensor:
        """The smooth function whose derivative is :meth:`derivative`."""
        return F.primitive(z, self.code, self.param)

    def config(self) -> dict[str, Any]:
        """A plain dict that :func:`build` turns back into an equal surrogate (YAML friendly)."""
        return {"name": self.name, self.param_name: self.value(), "learnable": self.learnable}

    def extra_repr(self) -> str:
        return f"{self.param_name}={self.value():g}, learnable={self.learnable}"


@SURROGATES.register("sigmoid")
class Sigmoid(Surrogate):
    """``dS/dz = alpha sig(alpha z)(1 - sig(alpha z))`` (SpikingJelly's default, alpha=4)."""

    name, code, param_name = "sigmoid", F.SIGMOID, "alpha"

    def __init__(self, alpha: float = 4.0, learnable: bool = False) -> None:
        super().__init__(alpha, learnable)


@SURROGATES.register("atan")
class ATan(Surrogate):
    """``dS/dz = (alpha/2) / (1 + (pi/2 alpha z)^2)`` (PLIF, Fang et al. 2021: alpha=2)."""

    name, code, param_name = "atan", F.ATAN, "alpha"

    def __init__(self, alpha: float = 2.0, learnable: bool = False) -> None:
        super().__init__(alpha, learnable)


@SURROGATES.register("rectangle")
class Rectangle(Surrogate):
    """``dS/dz = 1/width`` for ``|z| < width/2`` else 0 (STBP, He et al. 2020; ASA: width=0.5)."""

    name, code, param_name = "rectangle", F.RECTANGLE, "width"

    def __init__(self, width: float = 0.5, learnable: bool = False) -> None:
        super().__init__(width, learnable)


@SURROGATES.register("gaussian")
class Gaussian(Surrogate):
    """``dS/dz`` = normal pdf with std ``sigma`` centred on the threshold (snn-iir: sigma=0.4)."""

    name, code, param_name = "gaussian", F.GAUSSIAN, "sigma"

    def __init__(self, sigma: float = 0.4, learnable: bool = False) -> None:
        super().__init__(sigma, learnable)


@SURROGATES.register("triangle")
class Triangle(Surrogate):
    """``dS/dz = max(0, width - |z|) / width^2``: support ``|z| < width``, peak ``1/width``."""

    name, code, param_name = "triangle", F.TRIANGLE, "width"

    def __init__(self, width: float = 1.0, learnable: bool = False) -> None:
        super().__init__(width, learnable)


SurrogateLike = Union[Surrogate, str, Mapping[str, Any]]


def create(name: str, **kwargs: Any) -> Surrogate:
    """``create("atan", alpha=3.0)``; names are case-insensitive (see :func:`list_surrogates`)."""
    return SURROGATES.create(name.lower(), **kwargs)


def list_surrogates() -> list[str]:
    """Registered surrogate names."""
    return SURROGATES.names()


def build(spec: SurrogateLike, argument: str = "surrogate") -> Surrogate:
    """A :class:`Surrogate` from an instance (returned as is), a name or a config dict.

    ``"atan"`` gives the default parameter; ``{"name": "atan", "alpha": 3.0, "learnable": True}``
    sets it. ``argument`` names the caller's argument in error messages.
    """
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str):
        return create(spec)
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"{argument}: a surrogate config dict needs a 'name', got {dict(spec)!r}")
        try:
            return create(name, **options)
        except TypeError as err:
            raise ValueError(f"{argument}: bad options for surrogate {name!r}: {err}") from None
    raise ValueError(
        f"{argument} must be a spikeflow.surrogate.Surrogate, a name ({', '.join(list_surrogates())}) "
        f"or a config dict, got {type(spec).__name__}"
    )

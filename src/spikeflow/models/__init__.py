"""Model zoo, timm-style: ``@register_model`` entries; ``create_model(name, **overrides)``.

Every model takes ``[T, B, C, H, W]`` (or ``[T, B, F]``) and returns per-step outputs ``[T, B, K]``.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from torch import nn

from spikeflow.registry import Registry
from spikeflow.utils.discover import import_submodules

MODELS: Registry = Registry("model")
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Register a model factory under its function name."""
    return MODELS.register(fn.__name__)(fn)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name``; ``None`` overrides are ignored."""
    import_submodules(__name__)
    return MODELS.create(name, **overrides)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern."""
    import_submodules(__name__)
    return MODELS.names(pattern)


from spikeflow.models._common import ModelCard, model_card  # noqa: E402 (paper metadata per model)
from spikeflow.models.peer_weights import load_peer_weights  # noqa: E402 (peers' checkpoints)

__all__ = ["MODELS", "register_model", "create_model", "list_models", "ModelCard", "model_card",
           "load_peer_weights"]

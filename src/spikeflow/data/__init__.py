"""Torch datasets registered by name: static images, event datasets, encoders, splits, cache.

A dataset item is ``(input, label)``. ``create_dataset(name, root=None, split="train", **options)``
reads the original published files from ``root``; nothing is downloaded. :class:`DataLoader`
batches sequence items ``[T, ...]`` time-first, ``[T, B, ...]`` (:mod:`spikeflow.data.loader`).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from spikeflow.registry import Registry
from spikeflow.utils.discover import import_submodules

DATASETS: Registry = Registry("dataset")
F = TypeVar("F", bound=Callable[..., Any])


def register_dataset(name: str) -> Callable[[F], F]:
    """Register a dataset factory ``fn(root=None, split="train", **options)`` under ``name``."""
    return DATASETS.register(name)


def create_dataset(name: str, root: Any = None, split: str = "train", **options: Any) -> Any:
    """Build the registered dataset ``name`` for ``split`` from files under ``root``."""
    import_submodules(__name__)
    return DATASETS.get(name)(root=root, split=split, **options)


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names matching a shell-style pattern."""
    import_submodules(__name__)
    return DATASETS.names(pattern)


#: time-first batching (:mod:`spikeflow.data.loader`), imported on first access (it imports torch)
_LOADER = ("DataLoader", "TimeFirstCollate", "collate_time_first", "stack_targets",
           "check_time_first")


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        from spikeflow.data import loader  # noqa: PLC0415

        return getattr(loader, name)
    raise AttributeError(f"module 'spikeflow.data' has no attribute {name!r}")


__all__ = ["DATASETS", "register_dataset", "create_dataset", "list_datasets", *_LOADER]

"""spikeflow: train, compare and measure spiking neural networks and recurrent baselines.

Sub-packages are imported lazily, so ``import spikeflow as sf`` is cheap and
``sf.events`` works without touching torch.

    >>> import spikeflow as sf
    >>> sf.__version__
    '0.1.0'
"""
from __future__ import annotations

import importlib
from typing import Any

from spikeflow._openmp import shorten_openmp_spin

__version__ = "0.1.0"

shorten_openmp_spin()  # before torch is imported (see spikeflow/_openmp.py)

_SUBMODULES = (
    "registry", "functional", "surrogate", "neurons", "layers", "events", "data",
    "models", "metrics", "train", "report", "utils",
)
__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"spikeflow.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'spikeflow' has no attribute {name!r}")

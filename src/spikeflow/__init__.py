"""spikeflow: train, compare and measure spiking neural networks and recurrent baselines.

Sub-packages are imported lazily, so ``import spikeflow as sf`` is cheap and
``sf.events`` works without touching torch. Importing spikeflow (or any of its sub-packages)
changes nothing in the process: process tuning is the explicit :func:`spikeflow.runtime.configure`.

    >>> import spikeflow as sf
    >>> sf.__version__
    '0.1.0'
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "registry", "functional", "surrogate", "neurons", "layers", "events", "data",
    "models", "metrics", "train", "report", "utils", "runtime", "export", "nir",
)
#: functions re-exported at the top level (imported on first access)
_FUNCTIONS = {"summary": "spikeflow.metrics.model_summary"}
__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"spikeflow.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'spikeflow' has no attribute {name!r}")

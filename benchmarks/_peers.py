"""Peer implementations (SpikingJelly, Tonic) for ``benchmarks/frames.py`` and the parity tests
(``tests/events/test_frames.py``); not part of the installed package.

SpikingJelly 2.0's ``spikingjelly.datasets`` package imports torchvision at import time. When
torchvision is absent, :func:`spikingjelly_integration` compiles only the three pure-numpy
integration functions from the installed ``spikingjelly/datasets/utils.py`` source instead.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np

_SJ_FUNCS = ("integrate_events_segment_to_frame", "cal_fixed_frames_number_segment_index",
             "integrate_events_by_fixed_frames_number")


def spikingjelly_integration() -> Callable | None:
    """SpikingJelly's ``integrate_events_by_fixed_frames_number(events, split_by, T, H, W)``."""
    try:
        from spikingjelly.datasets.utils import integrate_events_by_fixed_frames_number

        return integrate_events_by_fixed_frames_number
    except ImportError:
        pass
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "utils.py"
    if not path.exists():
        return None
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in _SJ_FUNCS]
    if len(body) != len(_SJ_FUNCS):
        return None
    namespace: dict = {"np": np, "Optional": __import__("typing").Optional}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace["integrate_events_by_fixed_frames_number"]


def tonic_to_frame() -> Callable | None:
    """Tonic's ``functional.to_frame_numpy``, or None when Tonic is not installed."""
    try:
        from tonic.functional.to_frame import to_frame_numpy
    except ImportError:
        return None
    return to_frame_numpy

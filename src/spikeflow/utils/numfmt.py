"""One number format for everything printed as a table cell or a summary number.

``format_number`` is used by reports, sweeps and reproduction tables (``spikeflow.report``); any
other printed measurement (``spikeflow test``, model summaries) can use it too, so the same
value never reads ``1`` in one place and ``0.936`` in another.
"""
from __future__ import annotations

import math
from numbers import Integral
from typing import Any

SIG = 3
_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_number(value: Any, sig: int = SIG) -> str:
    """``value`` to ``sig`` significant figures, trailing zeros kept.

    Integers (Python or numpy) below 10,000 are printed in full (``7808 -> '7,808'``, counts);
    every other number to ``sig`` significant figures with trailing zeros kept, so the precision
    is visible (``0.936 -> '0.936'``, ``0.9996 -> '1.00'``, ``0.05 -> '0.0500'``), with a
    k/M/G/T suffix from 1,000 on (``2950.4 -> '2.95k'``, ``79000.0 -> '79.0k'``,
    ``1234567 -> '1.23M'``) and scientific notation below 1e-4 or from 1e15 on; zero is ``'0'``;
    ``None``, NaN and infinities are ``'–'``.
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral) and abs(int(value)) < 10_000:
        return f"{int(value):,}"
    v = float(value)
    if not math.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    rounded = float(f"{v:.{sig}g}")          # round first: 999.96 -> 1000 -> '1.00k'
    if abs(rounded) >= 1000 * _SUFFIXES[0][0]:
        return f"{v:.{sig - 1}e}"
    for factor, suffix in _SUFFIXES:
        if abs(rounded) >= factor:
            return _trim(f"{rounded / factor:#.{sig}g}") + suffix
    return _trim(f"{v:#.{sig}g}")


def _trim(text: str) -> str:
    """``'100.' -> '100'`` (the alternate form keeps trailing zeros but also a bare point)."""
    return text[:-1] if text.endswith(".") else text


__all__ = ["SIG", "format_number", "format_energy_pj"]


def format_energy_pj(pj: Any) -> str:
    """An energy in pJ as pJ / nJ / uJ / mJ with :func:`format_number`'s 3 significant figures
    (``999.6 -> '1.00 nJ'``, ``936.2 -> '936 pJ'``, ``2.5e6 -> '2.50 uJ'``); ``None`` -> ``'–'``."""
    if _missing(pj):
        return "–"
    pj = float(f"{float(pj):.{SIG}g}")  # round first, so 999.96 pJ reads 1.00 nJ
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{format_number(pj / scale)} {unit}"
    return f"{format_number(pj)} pJ"


def _missing(value: Any) -> bool:
    """``None`` or a non-finite float."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


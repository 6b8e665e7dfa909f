"""Energy estimate from operation counts (45 nm CMOS, Horowitz ISSCC 2014).

    E = ACs * E_AC + MACs * E_MAC        [pJ per sample]

Defaults are 32-bit floating point: an add costs ``E_AC = 0.9 pJ`` and a multiply-add
``E_MAC = 4.6 pJ`` (3.7 pJ multiply + 0.9 pJ add), as used by SpikingJelly's op counter and most
SNN papers; ``PRESETS["fp16"]`` holds the 16-bit values (0.4 / 1.5 pJ). Memory access energy is
not modelled, so the number is a compute-only estimate for comparing models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules."""

    e_ac: float = 0.9
    e_mac: float = 4.6

    def __post_init__(self) -> None:
        for name in ("e_ac", "e_mac"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be a non-negative energy in pJ, got {value}")

    def energy_pj(self, ops: Mapping[str, float]) -> float:
        """``ops["ac"] * e_ac + ops["mac"] * e_mac`` (missing keys count as 0)."""
        return float(ops.get("ac", 0.0)) * self.e_ac + float(ops.get("mac", 0.0)) * self.e_mac


PRESETS: dict[str, EnergyModel] = {
    "fp32": EnergyModel(0.9, 4.6),
    "fp16": EnergyModel(0.4, 1.5),
}


def energy_pj(ops: Mapping[str, float], e_ac: float = 0.9, e_mac: float = 4.6) -> float:
    """Compute energy in pJ of ``{"ac": n_ac, "mac": n_mac}`` operations.

    >>> energy_pj({"ac": 1000, "mac": 10})
    946.0
    """
    return EnergyModel(e_ac, e_mac).energy_pj(ops)


__all__ = ["EnergyModel", "PRESETS", "energy_pj"]

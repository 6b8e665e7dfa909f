"""A shorter spin-wait for torch's OpenMP worker threads, set before torch is loaded.

After every parallel operation, libgomp's worker threads (torch's CPU thread pool on Linux) keep
spinning before they sleep: by default about 8 ms on the 2-core AMD Zen 4 VM we measure on, after
*every* torch op. The fused neuron kernels usually run right after a torch op (a convolution, a
batch norm), on their own threads, and then share the cores with a spinning worker: the LIF
forward+backward (T=32, 262,144 neurons, two threads) took 9.5 instead of 7.2 ms. With
``GOMP_SPINCOUNT=30000`` the workers spin about 0.8 ms, still far longer than the gap between two
back-to-back torch ops, so torch's own speed is unchanged (measured: the reference loop and
SpikingJelly, both a torch op per step, ran as fast as before) while the fused kernels get the
cores. (``OMP_WAIT_POLICY=passive``, no spinning at all, made the torch loops 2.5x slower.)

libgomp reads the variable once, when torch loads it, so :func:`shorten_openmp_spin` only acts
when torch is not imported yet; ``import spikeflow`` before ``import torch`` (the CLI does)
applies it. It never overrides ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` set by the user, and
``SPIKEFLOW_OMP_SPIN=keep`` turns it off.
"""
from __future__ import annotations

import os
import sys

__all__ = ["SPIN_COUNT", "shorten_openmp_spin"]

SPIN_COUNT = "30000"


def shorten_openmp_spin() -> bool:
    """Set ``GOMP_SPINCOUNT`` for torch's OpenMP runtime; ``True`` when it was set now."""
    if "torch" in sys.modules or os.environ.get("SPIKEFLOW_OMP_SPIN") == "keep":
        return False
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True

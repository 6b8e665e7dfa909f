"""Fused vs reference synapse filters: forward+backward time and memory kept for backward.

Measures, in one run, ``DualExpSynapse`` / ``LowPassSynapse`` / ``DualExpReadout`` with
``backend="fused"`` (numba kernel, hand-written backward) against ``backend="reference"`` (the plain
per-step torch loop, i.e. snn-iir's formulation) on ``[T, B, N]`` float32 inputs, and prints the
ratios of the median times (the two backends alternate, so both see the same background load).
"saved MB" is the size of the distinct tensors autograd keeps for backward (counted with
``torch.autograd.graph.saved_tensors_hooks``; the input ``x`` and its views are excluded, as they
belong to the previous layer).

    python benchmarks/synapse.py [--steps 8 32] [--batch 16] [--neurons 16384] [--repeat 11]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import spikeflow.runtime

spikeflow.runtime.configure()  # before torch: short OpenMP spin-wait, numba cache (docs/runtime.md)
import torch

from spikeflow.layers import DualExpReadout, DualExpSynapse, LowPassSynapse


def make(kind: str, n: int, backend: str) -> torch.nn.Module:
    if kind == "DualExpSynapse":
        return DualExpSynapse(n, 4.0, 1.0, backend=backend)
    if kind == "LowPassSynapse":
        return LowPassSynapse(n, 4.0, backend=backend)
    return DualExpReadout(8.0, 2.0, backend=backend)


def fwd_bwd(layer: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()
    return step


def timed_pair(first: Callable[[], None], second: Callable[[], None], repeat: int) -> tuple[float, float]:
    """Median ms of two steps run alternately, so both see the same background load."""
    first(), second()  # warm-up (numba compilation is cached on disk after the first run)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for step, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            step()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def saved_mb(layer: torch.nn.Module, x: torch.Tensor) -> float:
    seen: dict[int, int] = {}
    inputs = x.untyped_storage().data_ptr()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() != inputs:  # views of x (e.g. x[t]) belong to the previous layer
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x)
    del out
    return sum(seen.values()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--neurons", type=int, default=16384)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, float32, B={args.batch}, N={args.neurons}")
    print(f"{'filter':<16} {'T':>4} {'fused ms':>9} {'ref ms':>9} {'speed-up':>9} "
          f"{'fused MB':>9} {'ref MB':>9} {'mem ratio':>9}")
    for kind in ("DualExpSynapse", "LowPassSynapse", "DualExpReadout"):
        for steps in args.steps:
            torch.manual_seed(0)
            x = torch.rand(steps, args.batch, args.neurons, requires_grad=True)
            fused, ref = make(kind, args.neurons, "fused"), make(kind, args.neurons, "reference")
            t_fused, t_ref = timed_pair(fwd_bwd(fused, x), fwd_bwd(ref, x), args.repeat)
            m_fused, m_ref = saved_mb(fused, x), saved_mb(ref, x)
            ratio = f"{m_fused / m_ref:>9.2f}" if m_ref else f"{'-':>9}"
            print(f"{kind:<16} {steps:>4} {t_fused:>9.1f} {t_ref:>9.1f} {t_ref / t_fused:>8.1f}x "
                  f"{m_fused:>9.1f} {m_ref:>9.1f} {ratio}")


if __name__ == "__main__":
    main()

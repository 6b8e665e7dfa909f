"""SparseLinear (event-driven CSR path) vs nn.Linear: forward+backward time and bytes saved.

Measures, in one run, forward+backward of binary spike inputs ``[N, K] -> O`` (float32) at several
densities, with the input not requiring a gradient (first layer) and requiring one (hidden layer:
``grad_x = gY W`` is a dense GEMM on both paths), on 1 and 2 torch threads. ``SparseLinear`` is
forced onto its sparse path (``threshold > 1``, no size gates) so the table shows where the
crossover lies; the two layers alternate, so both see the same background load. "saved" is the
bytes autograd keeps for backward, parameters excluded (nn.Linear: the dense input; SparseLinear:
the CSR).

    python benchmarks/sparse_linear.py [--density 0.05 0.1 0.2 0.3] [--threads 1 2] [--repeat 7]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable, Optional

import spikeflow.runtime

spikeflow.runtime.configure()  # before torch: short OpenMP spin-wait, numba cache (docs/runtime.md)
import torch
from torch import nn

from spikeflow.layers import SparseLinear

SHAPES = [(1600, 784, 512), (1600, 512, 10), (160, 2048, 512)]


def step(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()
    return run


def timed_pair(first: Callable[[], None], second: Callable[[], None], repeat: int) -> tuple[float, float]:
    """Median ms of two steps run alternately."""
    first(), second()  # warm-up (numba compiles once, cached on disk)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for run, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            run()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def saved_bytes(layer: nn.Module, x: torch.Tensor) -> int:
    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x)
    del out
    return sum(seen.values())


def measure(n: int, k: int, o: int, density: float, threads: int, x_grad: bool,
            repeat: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sparse = SparseLinear(k, o, threshold=2.0, min_rows=0, min_out=0)
    dense = nn.Linear(k, o)
    dense.load_state_dict(sparse.state_dict())
    x = (torch.rand(n, k) < density).float().requires_grad_(x_grad)
    ms_sparse, ms_dense = timed_pair(step(sparse, x), step(dense, x), repeat)
    return dict(shape=f"{n}x{k}->{o}", density=density, threads=threads, x_grad=x_grad,
                sparse_ms=ms_sparse, dense_ms=ms_dense, speedup=ms_dense / ms_sparse,
                sparse_saved=saved_bytes(sparse, x), dense_saved=saved_bytes(dense, x))


def main(argv: Optional[list[str]] = None) -> list[dict]:
    """Run the benchmark, print the table (ratios measured in this run), return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--density", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="densities 0.05 0.2, 3 repeats")
    args = parser.parse_args(argv)
    densities = [0.05, 0.2] if args.quick else args.density
    repeat = 3 if args.quick else args.repeat
    threads0 = torch.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"float32 binary spikes, forward+backward, median of {repeat}")
    print(f"{'shape':>16} {'dens':>5} {'thr':>3} {'x grad':>6} {'sparse ms':>9} {'dense ms':>9} "
          f"{'speed-up':>8} {'saved MB':>8} {'dense MB':>8} {'mem':>5}")
    rows = []
    try:
        for n, k, o in SHAPES:
            for density in densities:
                for threads in args.threads:
                    for x_grad in (False, True):
                        r = measure(n, k, o, density, threads, x_grad, repeat)
                        rows.append(r)
                        print(f"{r['shape']:>16} {density:5.2f} {threads:3d} {str(x_grad):>6} "
                              f"{r['sparse_ms']:9.2f} {r['dense_ms']:9.2f} {r['speedup']:7.2f}x "
                              f"{r['sparse_saved'] / 2**20:8.2f} {r['dense_saved'] / 2**20:8.2f} "
                              f"{r['sparse_saved'] / max(r['dense_saved'], 1):5.2f}", flush=True)
    finally:
        torch.set_num_threads(threads0)
    return rows


if __name__ == "__main__":
    main()

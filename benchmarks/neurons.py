"""Neuron benchmark: forward+backward time and memory held for backward, fused vs reference loop vs
SpikingJelly (multi-step, when installed), measured in one run.

    python benchmarks/neurons.py            # T in {8, 32, 128}, 16 x 16384 neurons, float32
    python benchmarks/neurons.py --quick    # T in {8, 32}, fewer repeats

Time: best and median over repeats of ``neuron(x)`` + ``backward`` with a fixed random output
gradient; the implementations take turns within each repeat so background load hits them alike.
Ratios use the best time (the least disturbed by other processes; the median is printed too).
``--clock cpu`` times process CPU time instead of wall time: on a machine shared with other jobs
this is the stable choice with ``--threads 1`` (with more threads it also counts spin-waiting).
Memory: bytes of the distinct tensor storages autograd saves for backward (recorded with
``torch.autograd.graph.saved_tensors_hooks`` during the forward). The input counts when it is
saved (the reference loop saves it; the fused kernels save only the membrane before the spike, one
``[T, N]`` tensor, plus PLIF's initial state), parameters do not. This is the memory a training step holds per neuron layer between forward and backward.
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

import spikeflow as sf

try:  # SpikingJelly is an optional peer ([peers] extra)
    from spikingjelly.activation_based import functional as sj_functional
    from spikingjelly.activation_based import neuron as sj_neuron
except ImportError:  # pragma: no cover - depends on the environment
    sj_neuron = None

__all__ = ["main", "measure", "build"]


def build(kind: str, impl: str) -> Optional[torch.nn.Module]:
    """The neuron ``kind`` ("LIF", "PLIF", "DecayLIF") of implementation ``impl``
    ("fused", "reference", "spikingjelly"); ``None`` when unavailable."""
    if impl == "spikingjelly":
        if sj_neuron is None or kind == "DecayLIF":
            return None
        if kind == "LIF":
            return sj_neuron.LIFNode(tau=2.0, step_mode="m")
        return sj_neuron.ParametricLIFNode(init_tau=2.0, step_mode="m")
    cls = {"LIF": sf.neurons.LIF, "PLIF": sf.neurons.PLIF, "DecayLIF": sf.neurons.DecayLIF}[kind]
    return cls(backend=impl)


def _saved_bytes(step: Callable[[], torch.Tensor], exclude: list[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    skip = {t.untyped_storage().data_ptr() for t in exclude}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    del out
    return sum(seen.values())


def measure(kind: str, T: int, batch: int, neurons: int, repeats: int,
            impls: tuple[str, ...] = ("fused", "reference", "spikingjelly"),
            clock: Callable[[], float] = time.perf_counter) -> list[dict]:
    """Rows ``{neuron, T, impl, ms (best), median_ms, saved_mb}`` for the available implementations."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(T, batch, neurons, generator=gen) * 0.5 + 0.6).requires_grad_()
    grad = torch.randn(T, batch, neurons, generator=gen)
    modules = {impl: m for impl in impls if (m := build(kind, impl)) is not None}

    def step(impl: str) -> torch.Tensor:
        module = modules[impl]
        if impl == "spikingjelly":
            sj_functional.reset_net(module)
        return module(x)

    def fwd_bwd(impl: str) -> None:
        step(impl).backward(grad)
        x.grad = None
        for p in modules[impl].parameters():
            p.grad = None

    times: dict[str, list[float]] = {impl: [] for impl in modules}
    for impl in modules:  # warm-up: numba load/compile, allocator
        fwd_bwd(impl)
    for _ in range(repeats):
        for impl in modules:
            start = clock()
            fwd_bwd(impl)
            times[impl].append(clock() - start)
    rows = []
    for impl, module in modules.items():
        saved = _saved_bytes(lambda: step(impl), list(module.parameters()))
        rows.append(dict(neuron=kind, T=T, impl=impl, ms=1e3 * min(times[impl]),
                         median_ms=1e3 * statistics.median(times[impl]), saved_mb=saved / 2**20))
    return rows


def _ratios(rows: list[dict]) -> list[str]:
    lines = []
    by = {(r["neuron"], r["T"], r["impl"]): r for r in rows}
    for (kind, T, impl), r in by.items():
        if impl != "fused":
            continue
        parts = [f"{kind:8s} T={T:<4d}"]
        ref = by.get((kind, T, "reference"))
        if ref:
            parts.append(f"speed x{ref['ms'] / r['ms']:5.1f} vs reference")
            parts.append(f"memory {r['saved_mb'] / ref['saved_mb']:.2f}x reference")
        sj = by.get((kind, T, "spikingjelly"))
        if sj:
            parts.append(f"speed x{sj['ms'] / r['ms']:4.1f} vs SpikingJelly")
            parts.append(f"memory {r['saved_mb'] / sj['saved_mb']:.2f}x SpikingJelly")
        lines.append(", ".join(parts))
    return lines


def main(argv: Optional[list[str]] = None) -> list[dict]:
    """Run the benchmark, print a table and the ratios, return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T in {8, 32}, 3 repeats")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="values of T")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--neurons", type=int, default=16384, help="neurons per sample")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--neuron", nargs="+", default=["LIF", "PLIF", "DecayLIF"])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time (default) or process CPU time")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or ([8, 32] if args.quick else [8, 32, 128])
    repeats = args.repeats or (3 if args.quick else 7)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.batch} x {args.neurons} neurons, float32, "
          f"{repeats} repeats, {args.clock} clock; "
          f"SpikingJelly: {'yes' if sj_neuron is not None else 'not installed'}")
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows: list[dict] = []
    print(f"{'neuron':8s} {'T':>4s} {'impl':>12s} {'best ms':>9s} {'median ms':>10s} {'saved MB':>9s}")
    for kind in args.neuron:
        for T in steps:
            for row in measure(kind, T, args.batch, args.neurons, repeats, clock=clock):
                rows.append(row)
                print(f"{row['neuron']:8s} {row['T']:4d} {row['impl']:>12s} {row['ms']:9.1f} "
                      f"{row['median_ms']:10.1f} {row['saved_mb']:9.1f}", flush=True)
    print()
    for line in _ratios(rows):
        print(line)
    return rows


if __name__ == "__main__":
    main()

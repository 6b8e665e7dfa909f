"""Cost of measuring: hook overhead of the recorder/op counter, and fan-out maps vs binary layers.

On a conv SNN with input ``[T, B, 2, 34, 34]`` (N-MNIST-sized; conv 2->32->32, pooling, FC 2048->512
->10, stateless threshold neurons so only the measured parts vary) it times, in one run and with
the variants interleaved so all see the same background load:

* ``plain``: ``model(x)`` without gradients;
* ``recorder``: under :class:`SpikeRecorder` (per-step counts of every spiking layer);
* ``synops``: under :class:`SynOpCounter` (ACs/MACs of every Linear/Conv call);
* ``both``: under both, as ``evaluate_metrics`` does;
* ``binary-layer reference``: the NeuroBench way of counting the same operations, i.e. running a
  ones-weight copy of every connection layer on the binarised input of every call (the count is
  checked to be identical to ours).

    python benchmarks/metrics.py [--steps 10] [--batch 16] [--repeat 7]
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
import torch.nn.functional as F
from torch import Tensor, nn

from spikeflow.metrics import SpikeRecorder, SynOpCounter
from spikeflow.neurons.base import BaseNeuron


class Threshold(BaseNeuron):
    def run(self, x: Tensor, state=None):
        return (x >= 0.5).to(x.dtype), state


class Fold(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, x.shape[:2])


def conv_snn() -> nn.Sequential:
    return nn.Sequential(
        Fold(nn.Conv2d(2, 32, 3, padding=1)), Threshold(), Fold(nn.MaxPool2d(2)),
        Fold(nn.Conv2d(32, 32, 3, padding=1)), Threshold(), Fold(nn.MaxPool2d(2)),
        Fold(nn.Flatten()), Fold(nn.Linear(32 * 8 * 8, 512)), Threshold(),
        Fold(nn.Linear(512, 10)), Threshold(),
    )


def binary_reference(model: nn.Module, x: Tensor) -> float:
    """Operations counted with ones-weight copies of each layer on binarised inputs."""
    total = 0.0
    handles = []

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        nonlocal total
        xb = (args[0] != 0).to(args[0].dtype)
        w = torch.ones_like(module.weight)
        if isinstance(module, nn.Linear):
            total += float(F.linear(xb, w).sum())
        else:
            total += float(module._conv_forward(xb, w, None).sum())

    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            handles.append(m.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return total / x.shape[1]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = conv_snn().eval()
    x = (torch.rand(args.steps, args.batch, 2, 34, 34) > 0.9).float()

    def under(*managers: Callable[[nn.Module], object]) -> Callable[[], object]:
        def run() -> None:
            ctx = [m(model) for m in managers]
            for c in ctx:
                c.__enter__()
            try:
                model(x)
            finally:
                for c in reversed(ctx):
                    c.__exit__(None, None, None)
        return run

    variants = {
        "plain": lambda: model(x),
        "recorder": under(SpikeRecorder),
        "synops": under(SynOpCounter),
        "both": under(SpikeRecorder, SynOpCounter),
        "binary-layer reference": lambda: binary_reference(model, x),
    }
    with torch.no_grad():
        counter = SynOpCounter(model)
        with counter:
            model(x)
        ours = counter.totals()["ac"] + counter.totals()["mac"]
        ref = binary_reference(model, x)
        assert abs(ours - ref) <= 1e-9 * max(1.0, ref), (ours, ref)
        for fn in variants.values():
            fn()  # warm-up (fan-out maps are cached per layer and shape on first use)
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeat):
            for name, fn in variants.items():
                times[name].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"# metrics overhead: T={args.steps}, B={args.batch}, input 2x34x34, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"# synaptic ops per sample: {ours:,.0f} (ours) == {ref:,.0f} (binary-layer reference)")
    print("| variant | median ms | x plain |")
    print("|---|---|---|")
    for name, t in med.items():
        print(f"| {name} | {1e3 * t:.1f} | {t / med['plain']:.2f} |")
    print(f"# op counting: fan-out maps are {med['binary-layer reference'] / med['synops']:.2f}x "
          "faster than the binary-layer reference")


if __name__ == "__main__":
    main()

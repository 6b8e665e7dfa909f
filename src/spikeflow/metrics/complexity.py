"""Static and timing complexity: parameter count, memory footprint, latency and throughput."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def memory_footprint(model: nn.Module) -> dict[str, int]:
    """Bytes held by the model: ``{"params": ..., "buffers": ..., "total": ...}`` (NeuroBench)."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return {"params": params, "buffers": buffers, "total": params + buffers}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(
    model: Callable[[Tensor], Any],
    x: Tensor,
    warmup: int = 2,
    repeats: int = 5,
    batch_dim: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Wall-clock inference time of ``model(x)`` (any callable; no gradients; device synchronised on CUDA).

    Returns ``{"batch_size", "latency_ms" (median over repeats), "latency_ms_min",
    "throughput_samples_per_s" (batch_size / median), "repeats"}``.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    device = x.device
    for _ in range(warmup):
        model(x)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = clock()
        model(x)
        _sync(device)
        times.append(clock() - start)
    times.sort()
    median = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
    batch = int(x.shape[batch_dim])
    return {
        "batch_size": batch,
        "latency_ms": 1e3 * median,
        "latency_ms_min": 1e3 * times[0],
        "throughput_samples_per_s": batch / median if median > 0 else float("inf"),
        "repeats": repeats,
    }


def connection_sparsity(model: nn.Module) -> Optional[float]:
    """Fraction of zero weights over Linear/Conv/RNN weights (NeuroBench); None without any."""
    zeros = total = 0
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            tensors = [module.weight]
        elif isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            tensors = [p for n, p in module.named_parameters(recurse=False) if n.startswith("weight")]
        else:
            continue
        for w in tensors:
            zeros += int((w == 0).sum())
            total += w.numel()
    return zeros / total if total else None


__all__ = ["count_parameters", "memory_footprint", "measure_latency", "connection_sparsity"]

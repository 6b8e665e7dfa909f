"""Shared helpers of the device benchmarks (``--device cuda``): timing, peak memory, versions, JSON.

Timing follows ``triton.testing.do_bench``: one call to load/compile, a few calls to estimate the
time of one, ``warmup_ms`` of warm-up calls, then ``n`` timed calls, each bracketed by a pair of
``torch.cuda.Event`` records on the GPU timeline; with ``flush`` a 256 MiB buffer is zeroed before
every call, so no call finds its inputs in the L2 cache (the zeroing is outside the events). One
``torch.cuda.synchronize()`` waits for everything before the events are read. The result is the
list of per-call milliseconds; callers report the median (and the minimum). On a CPU device the
same protocol runs with ``time.perf_counter`` (used by the dry run of ``scripts/gpu_check.sh``).

Peak memory: ``torch.cuda.max_memory_allocated()`` over one call minus ``memory_allocated()``
before it (after ``reset_peak_memory_stats``): what the call allocates on top of what is already
held (inputs, parameters, optimizer state). ``None`` on CPU.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

__all__ = ["time_ms", "peak_mb", "summary", "device_info", "sj_implementations", "write_json",
           "DTYPES"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_FLUSH_BYTES = 256 * 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], Any], device: torch.device, *, reps: Optional[int] = None,
            rep_ms: float = 100.0, warmup_ms: float = 25.0, min_reps: int = 5,
            max_reps: int = 1000, flush: bool = True, prime: bool = True) -> list[float]:
    """Milliseconds of each of ``reps`` timed calls of ``fn`` (``None``: as many as fit in
    ``rep_ms``, clamped to ``[min_reps, max_reps]``); see the module docstring for the protocol.
    ``prime=False`` (with ``reps``): the caller has warmed ``fn`` up; no priming, estimate or
    warm-up calls."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    cache = torch.empty(_FLUSH_BYTES, dtype=torch.int8, device=device) if cuda and flush else None

    def one() -> None:
        if cache is not None:
            cache.zero_()
        fn()

    if prime or reps is None:
        fn()  # load / compile / autotune
        _sync(device)
        start = time.perf_counter()
        for _ in range(3):
            one()
        _sync(device)
        estimate = max((time.perf_counter() - start) * 1e3 / 3, 1e-3)
        for _ in range(max(1, int(warmup_ms / estimate))):
            one()
    n = reps if reps is not None else max(min_reps, min(max_reps, int(rep_ms / estimate)))
    _sync(device)
    if not cuda:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for s, e in zip(starts, ends):
        if cache is not None:
            cache.zero_()
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize(device)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def peak_mb(fn: Callable[[], Any], device: torch.device) -> Optional[float]:
    """MiB that one call of ``fn`` allocates at its peak on top of what is held before it
    (CUDA only; ``None`` on CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        fn()
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def summary(times: list[float]) -> dict[str, float]:
    """``{ms: median, min_ms, reps}`` of per-call times."""
    return {"ms": statistics.median(times), "min_ms": min(times), "reps": len(times)}


def _version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed / no metadata
        return None


def device_info(device: torch.device) -> dict[str, Any]:
    """The machine, the device and the versions a result depends on."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "device": str(device), "python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "triton": _version("triton"),
        "spikingjelly": _version("spikingjelly"), "numba": _version("numba"),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    sms=props.multi_processor_count,
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                    tf32_cudnn=torch.backends.cudnn.allow_tf32,
                    cudnn_benchmark=torch.backends.cudnn.benchmark)
    return info


def sj_implementations() -> dict[str, str]:
    """Which CUDA implementation SpikingJelly 2.0 selected per neuron operator (``triton``,
    ``cuda`` (its optional native build) or ``torch``), read from its dispatch tables after a run;
    empty when SpikingJelly is absent or chose nothing yet."""
    found: dict[str, str] = {}
    for name in ("lif", "plif"):
        try:
            module = __import__(f"spikingjelly._ops.{name}", fromlist=["_selection"])
            selections = getattr(module._selection, "_selections", {})
        except Exception:  # noqa: BLE001 - other SpikingJelly versions
            continue
        names = {getattr(sel, "name", None) for sel in selections.values() if sel is not None}
        names.discard(None)
        if names:
            found[name] = ",".join(sorted(names))
    return found


def write_json(path: Optional[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` (folders created; nothing when ``path`` is None)."""
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1, default=str) + "\n")

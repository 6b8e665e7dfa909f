"""Backend names, the one error type, and the device/dtype dispatch of every op.

``backend`` (a neuron's or a filter's option) is one of :data:`BACKENDS`:

* ``"auto"``: the op, which runs its fused implementation where one exists for the tensor's device
  and dtype (CPU: numba, float32/float64; CUDA: Triton, float32/bfloat16/float16) and its plain-torch
  reference implementation elsewhere (same results, slower);
* ``"fused"``: the fused implementation or :class:`BackendError`;
* ``"reference"``: the plain torch loop of ``spikeflow.functional`` with autograd (the oracle).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["BACKENDS", "BackendError", "check_backend", "fused_problem", "use_fused", "tracing",
           "CPU_DTYPES", "CUDA_DTYPES"]

BACKENDS = ("auto", "fused", "reference")
CPU_DTYPES = (torch.float32, torch.float64)
CUDA_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class BackendError(ValueError, RuntimeError):
    """A backend name that does not exist, or ``backend="fused"`` where no fused kernel runs.

    A ``ValueError`` (a bad argument) and a ``RuntimeError`` (unavailable at run time) both."""


@lru_cache(maxsize=None)
def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_backend(backend: object, argument: str = "backend") -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else :class:`BackendError`."""
    if backend not in BACKENDS:
        raise BackendError(f"{argument} must be one of {BACKENDS}, got {backend!r}")
    return str(backend)


def fused_problem(x: Tensor) -> str | None:
    """Why no fused kernel runs on ``x`` (``None`` when one does)."""
    kind = x.device.type
    if kind == "cpu":
        if not _available("numba"):
            return "numba is not installed"
        if x.dtype not in CPU_DTYPES:
            return f"the CPU kernels take float32/float64 tensors (got {x.dtype})"
        return None
    if kind == "cuda":
        if not _available("triton"):
            return "triton is not installed"
        if x.dtype not in CUDA_DTYPES:
            return f"the CUDA kernels take float32/bfloat16/float16 tensors (got {x.dtype})"
        return None
    return f"no fused kernel for {kind} tensors"


def use_fused(backend: str, x: Tensor, what: str) -> bool:
    """Whether ``what`` runs through the op (``"auto"``/``"fused"``) rather than the reference loop;
    ``backend="fused"`` where no fused kernel runs raises :class:`BackendError`."""
    check_backend(backend)
    if backend == "reference":
        return False
    if backend == "fused":
        problem = fused_problem(x)
        if problem is not None:
            raise BackendError(f"{what}: backend='fused' is unavailable: {problem}; "
                               "use backend='auto' or 'reference'")
    return True


def tracing(x: Tensor) -> bool:
    """Whether ``x`` is being traced (torch.compile, torch.export, jit.trace, fake tensors): then
    the registered op is called, so that the tracer sees ``spikeflow::NAME`` with its fake
    implementation; eager calls take a shorter path to the same implementations."""
    compiling = getattr(torch.compiler, "is_compiling", None)  # public since torch 2.3
    if (compiling is not None and compiling()) or torch.jit.is_tracing():
        return True
    return type(x) is not torch.Tensor and not isinstance(x, torch.nn.Parameter)

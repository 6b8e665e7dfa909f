"""Where a fused backward writes ``dL/dX``: over the tensor its forward saved, when that is safe.

The LIF, DecayLIF and IIR kernels save one ``[T, N]`` tensor (``H``, ``U``, ``V``) that only their
backward reads, and the backward reads row ``t`` of it for the last time at reverse step ``t``,
exactly where row ``t`` of ``dL/dX`` is written (PLIF also reads ``H[t-1]`` at step ``t``, which
is still intact in reverse order). Writing the gradient over the saved rows needs no new ``[T, N]``
buffer and no write-allocate reads of one: measured for DecayLIF at T=32, 262,144 neurons, two
threads (AMD Zen 4), backward kernel 3.1-3.3 ms -> 2.4-2.5 ms. (The loop must see one array for
the read and the write: with two arguments that happen to alias, LLVM's run-time overlap check
takes the scalar loop, 3x slower; so the kernels always work in place, on a copy when needed.)

Overwriting is safe when both hold:

1. autograd frees the saved tensors after this backward (no ``retain_graph=True`` and no
   ``create_graph=True``): asked with :func:`spikeflow._compat.graph_kept` (a private PyTorch
   function; when it is missing or fails the graph counts as retained);
2. nothing outside autograd references the tensor (a saved-tensor hook that kept it or a view of
   it, a reference taken from ``grad_fn.saved_tensors``): its Python reference count, its
   ``TensorImpl`` use count and its storage use count are no higher than those of a private saved
   tensor, measured once with a probe ``Function`` (:func:`_baseline`); read with
   :func:`spikeflow._compat.use_counts` (private PyTorch functions; when they are missing or fail,
   nothing counts as unreferenced).

Otherwise :func:`grad_buffer` returns a copy, and the saved tensor stays as it was. (The call
that compiles a kernel can take the copy path too: numba's compiler may hold references to that
call's arrays until Python's cycle collector runs.)
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from spikeflow._compat import graph_kept, saved_tensors_hooks_active, use_counts
from spikeflow.ops._cpu._alloc import empty_like

__all__ = ["grad_buffer", "graph_kept"]


def grad_buffer(saved: Tensor, _record: Optional[list] = None) -> Tensor:
    """``saved`` itself when the backward may overwrite it with ``dL/dX`` (see the module
    docstring), else a copy of it. Call as ``grad_buffer(t)`` with ``t`` a local variable of the
    backward unpacked from ``ctx.saved_tensors`` (the reference counts assume exactly that)."""
    counts = use_counts(saved)  # the same call depth as in the probe: counts compare exactly
    if _record is not None:
        _record.append(counts)
        return saved
    baseline = _baseline()
    if (counts is not None and baseline is not None and not graph_kept()
            and all(c <= b for c, b in zip(counts, baseline))):
        return saved
    copy = empty_like(saved)
    copy.copy_(saved)
    return copy


class _Probe(torch.autograd.Function):
    """Saves a private tensor; its backward records the counts :func:`grad_buffer` sees."""

    @staticmethod
    def forward(ctx, x: Tensor, record: list) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(torch.empty(4))
        ctx.record = record
        return x.clone()

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        (saved,) = ctx.saved_tensors
        grad_buffer(saved, ctx.record)
        return g, None


_BASELINE: list[tuple[int, int, int]] = []  # measured once, see _baseline()


def _baseline() -> Optional[tuple[int, int, int]]:
    """The counts of a saved tensor that only autograd holds, seen from a backward; ``None`` (no
    overwriting) while saved-tensor hooks are active and it has not been measured yet."""
    if not _BASELINE:
        if saved_tensors_hooks_active():  # they would change the probe's counts
            return None
        record: list = []
        with torch.inference_mode(False), torch.enable_grad():
            x = torch.zeros(1, requires_grad=True)
            torch.autograd.grad(_Probe.apply(x, record).sum(), x)
        if not record or record[0] is None:
            return None
        _BASELINE.append(record[0])
    return _BASELINE[0]

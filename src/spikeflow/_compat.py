"""The one module that touches private PyTorch internals, each behind a small typed function.

``pyproject.toml`` admits torch 2.2-2.14; private functions can disappear, be renamed or change
behaviour in any of those releases. Every function here looks its internal up at call time and,
when it is missing or raises, returns the *safe* answer: the one that makes the caller take its
slower but always-correct path (copy instead of overwrite, dense instead of sparse, no
compaction). Results never depend on the internals, only speed and memory do; the tests remove
each internal (``tests/test_compat.py``) and check that kernel outputs and gradients stay
bit-identical.

=====================================  ==========================================  ===========
function                               internal                                    fallback
=====================================  ==========================================  ===========
:func:`graph_kept`                     ``torch._C._autograd._get_current_graph_``  ``True``
                                       ``task_keep_graph``
:func:`use_counts`                     ``Tensor._use_count``,                      ``None``
                                       ``torch._C._storage_Use_Count``,
                                       ``UntypedStorage._cdata``
:func:`saved_tensors_hooks`            ``torch._C._autograd._top_saved_tensors_``  raises
                                       ``default_hooks``                           ``Unsupported``
:func:`saved_tensors_hooks_active`     (same)                                      ``True``
:func:`torch_function_mode_active`     ``torch._C._is_torch_function_mode_``       ``True``
                                       ``enabled``
:func:`is_compiling`                   ``torch.compiler.is_compiling`` (public),   ``False``
                                       else ``torch._dynamo.is_compiling``
:func:`is_fake`                        ``torch._subclasses.fake_tensor.is_fake``   meta device
=====================================  ==========================================  ===========

Importing this module imports torch and nothing else.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import torch
from torch import Tensor

__all__ = ["Unsupported", "graph_kept", "use_counts", "saved_tensors_hooks",
           "saved_tensors_hooks_active", "torch_function_mode_active", "is_compiling", "is_fake"]

# what a private function may raise when it exists but behaves differently than expected
_ERRORS = (RuntimeError, TypeError, AttributeError, ValueError)


class Unsupported(RuntimeError):
    """This torch build cannot answer the question (the private internal is missing or failed)."""


def _private(owner: Any, name: str) -> Optional[Callable[..., Any]]:
    """``owner.name`` if it exists and is callable, else ``None``."""
    fn = getattr(owner, name, None)
    return fn if callable(fn) else None


def graph_kept() -> bool:
    """Whether the running backward keeps its graph (``retain_graph=True`` or
    ``create_graph=True``), so saved tensors may be read again.

    ``True`` (the safe answer: do not overwrite saved tensors) outside a backward, and when torch
    cannot say.
    """
    query = _private(getattr(torch._C, "_autograd", None), "_get_current_graph_task_keep_graph")
    if query is None:
        return True
    try:
        return bool(query())
    except _ERRORS:
        return True


def use_counts(t: Tensor) -> Optional[tuple[int, int, int]]:
    """``(Python references, TensorImpl uses, storage uses)`` of ``t``, or ``None`` when torch
    cannot say (callers then copy instead of overwriting).

    The Python count includes the references held by this call (the argument and the caller's
    variable), so two counts compare exactly only when taken through the same call chain.
    """
    use_count = _private(t, "_use_count")
    storage_count = _private(torch._C, "_storage_Use_Count")
    if use_count is None or storage_count is None:
        return None
    try:
        counts = (sys.getrefcount(t) - 1, int(use_count()),
                  int(storage_count(t.untyped_storage()._cdata)))
    except _ERRORS:
        return None
    return counts


def saved_tensors_hooks() -> Optional[tuple[Callable[[Tensor], Any], Callable[[Any], Tensor]]]:
    """The innermost active ``torch.autograd.graph.saved_tensors_hooks`` pair ``(pack, unpack)``,
    or ``None`` when none is active.

    Raises:
        Unsupported: torch cannot say (callers should then act as if unknown hooks were active).
    """
    top = _private(getattr(torch._C, "_autograd", None), "_top_saved_tensors_default_hooks")
    if top is None:
        raise Unsupported("torch._C._autograd._top_saved_tensors_default_hooks is unavailable")
    try:
        hooks = top(False)
    except _ERRORS as err:
        raise Unsupported(f"reading the saved-tensor hooks failed: {err}") from err
    if hooks is None:
        return None
    if not (isinstance(hooks, tuple) and len(hooks) == 2):
        raise Unsupported(f"unexpected saved-tensor hooks {type(hooks).__name__}")
    return hooks


def saved_tensors_hooks_active() -> bool:
    """Whether saved-tensor hooks are active now; ``True`` when torch cannot say."""
    try:
        return saved_tensors_hooks() is not None
    except Unsupported:
        return True


def torch_function_mode_active() -> bool:
    """Whether a ``TorchFunctionMode`` is active (a counter or tracer watching torch calls);
    ``True`` when torch cannot say (callers then take their plain-torch path)."""
    query = _private(torch._C, "_is_torch_function_mode_enabled")
    if query is None:
        return True
    try:
        return bool(query())
    except _ERRORS:
        return True


def is_compiling() -> bool:
    """Whether ``torch.compile`` (dynamo) is tracing the current code.

    Uses the public ``torch.compiler.is_compiling`` (torch >= 2.3), else the private
    ``torch._dynamo.is_compiling``; ``False`` when neither exists or both fail.
    """
    query = _private(getattr(torch, "compiler", None), "is_compiling")
    if query is not None:  # first and alone: dynamo folds this call to a constant while tracing
        try:
            return bool(query())
        except _ERRORS:
            pass
    query = _private(sys.modules.get("torch._dynamo"), "is_compiling")  # torch < 2.3
    if query is not None:
        try:
            return bool(query())
        except _ERRORS:
            pass
    return False


def is_fake(t: Any) -> bool:
    """Whether ``t`` is a tensor without data: a ``FakeTensor`` (torch.compile / torch.export
    tracing, possibly wrapped) or a tensor on the ``meta`` device.

    Falls back to the meta-device test when the fake-tensor module is missing or fails.
    """
    if not isinstance(t, Tensor):
        return False
    if t.device.type == "meta":
        return True
    module = sys.modules.get("torch._subclasses.fake_tensor")  # only loaded once tracing started
    query = _private(module, "is_fake")
    if query is not None:
        try:
            return bool(query(t))
        except _ERRORS:
            pass
    fake_type = getattr(module, "FakeTensor", None)
    return isinstance(fake_type, type) and isinstance(t, fake_type)

"""``train.cuda_graphs``: the whole training step replayed as one CUDA graph.

A training step of fixed shapes launches the same kernels every time: forward over all ``T``
steps, loss, backward, gradient clipping and the optimizer update. :class:`GraphedTrainStep`
captures them once with ``torch.cuda.graph`` and then, per batch, copies the batch into static
input buffers and replays the graph: one launch instead of thousands, no Python in between.

Protocol (PyTorch's "whole-network capture"):

1. ``warmup`` eager steps on a side stream before the first capture (lazy initialisation:
   cuBLAS/cuDNN handles, optimizer state, autograd streams); 1 before later captures;
2. ``optimizer.zero_grad(set_to_none=True)``, then capture forward + loss + backward + step:
   the gradients are allocated inside the graph's private memory pool and overwritten (not
   accumulated) on every replay; the optimizer must be ``capturable`` (Adam/AdamW; its step
   counter lives on the device);
3. the capture executes nothing, so it is replayed at once for the batch it was captured with;
4. a batch of another shape (the last partial batch without ``train.drop_last``) runs eagerly;
5. a new capture at every epoch start, because the learning rate, a Python float, is baked into
   the optimizer's captured kernels and the schedule changes it between epochs.

Randomness: dropout uses the default CUDA generator, which graphs advance on every replay. The
Poisson encoder's own generator is not captured: non-deterministic encodings run eagerly and the
graph's static input is the encoded batch; ``none``/``repeat`` are captured with the model (the
static input is the raw batch, ``repeat`` stays a stride-0 view).

Requirements on the model: nothing reads tensor values on the host during forward or backward
(``.item()``, ``torch.equal``, data-dependent shapes) and no Python-side state changes per step.
A capture that fails raises :class:`CudaGraphError` naming ``train.cuda_graphs``.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

#: ``capture(fn) -> replay``: record ``fn`` (returning the static outputs); ``replay()`` runs
#: the recording and returns those outputs
Capture = Callable[[Callable[[], Any]], Callable[[], Any]]


class CudaGraphError(RuntimeError):
    """Capturing the training step in a CUDA graph failed."""


def capture_cuda(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Capture ``fn`` in a ``torch.cuda.CUDAGraph``; the returned replay runs it again.

    ``capture_error_mode="thread_local"``: only this thread is checked, so a DataLoader's
    pin-memory thread allocating pinned memory meanwhile does not invalidate the capture."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        out = fn()

    def replay() -> Any:
        graph.replay()
        return out

    replay.graph = graph  # keeps the graph (and its memory pool) alive with the replay
    return replay


@contextmanager
def _quiet_capturable() -> Iterator[None]:
    # eager warm-up steps of a capturable optimizer warn once that capturable=True is slower
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*capturable=True.*")
        yield


class GraphedTrainStep:
    """Replays one captured training step for every batch of the captured shapes.

    Args:
        forward: ``forward(x, y, capturing) -> (loss, correct)`` (encode when needed, model,
            loss; ``capturing`` disables the autocast cache).
        update: ``update(loss)``: backward, gradient clipping, optimizer step.
        zero_grad: sets every gradient to None (called before each eager step and capture).
        encode: applied eagerly before the graph (random encodings), or None.
        warmup: eager steps before the first capture (1 before later ones).
        capture: the capture function (:func:`capture_cuda`; tests pass a stand-in that runs
            the step eagerly on every replay).
        side_stream: run eager steps on a side stream (CUDA).
    """

    def __init__(self, forward: Callable[[Tensor, Tensor, bool], tuple[Tensor, Tensor]],
                 update: Callable[[Tensor], None], zero_grad: Callable[[], None],
                 encode: Callable[[Tensor], Tensor] | None = None, warmup: int = 3,
                 capture: Capture = capture_cuda, side_stream: bool = True) -> None:
        self.forward, self.update, self.zero_grad = forward, update, zero_grad
        self.encode, self.warmup = encode, warmup
        self.capture, self.side_stream = capture, side_stream
        self.captures = 0       # graphs captured so far
        self.eager_steps = 0    # warm-up steps and batches of other shapes
        self.replays = 0        # steps run by the graph (including each captured batch)
        self._replay: Callable[[], Any] | None = None
        self._key: tuple | None = None
        self._x: Tensor | None = None
        self._y: Tensor | None = None
        self._warm = 0

    def start_epoch(self) -> None:
        """Drop the graph; the next batches warm up and capture again (the learning rate, baked
        into the captured optimizer kernels, may have changed)."""
        self._replay = self._x = self._y = self._key = None
        self._warm = 0

    def _eager(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        self.eager_steps += 1
        stream = nullcontext()
        if self.side_stream:
            main, side = torch.cuda.current_stream(), torch.cuda.Stream()
            side.wait_stream(main)
            stream = torch.cuda.stream(side)
        with stream, _quiet_capturable():
            self.zero_grad()
            loss, correct = self.forward(x, y, False)
            self.update(loss)
        if self.side_stream:
            main.wait_stream(side)
        return loss.detach(), correct

    def _body(self) -> tuple[Tensor, Tensor]:
        loss, correct = self.forward(self._x, self._y, True)
        self.update(loss)
        return loss.detach(), correct

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """One training step on ``(x, y)``; returns ``(loss, correct)`` device tensors (a graph's
        static outputs: read or accumulate them before the next call)."""
        if self.encode is not None:
            x = self.encode(x)
        key = (tuple(x.shape), x.dtype, x.stride(), tuple(y.shape), y.dtype)
        if self._replay is not None:
            if key != self._key:
                return self._eager(x, y)   # another shape (the last partial batch)
            self._x.copy_(x)
            self._y.copy_(y)
            self.replays += 1
            return self._replay()
        if self._warm < (self.warmup if self.captures == 0 else 1):
            self._warm += 1
            return self._eager(x, y)
        self._x, self._y = x.clone(), y.clone()  # static inputs (same layout when dense)
        self._key = key
        self.zero_grad()  # gradients are then allocated in the graph's pool by the capture
        try:
            self._replay = self.capture(self._body)
        except RuntimeError as err:
            self.start_epoch()
            raise CudaGraphError(
                f"train.cuda_graphs: capturing the training step failed ({err}); the model must "
                "not read tensor values on the host in forward/backward (.item(), torch.equal, "
                "data-dependent shapes); set train.cuda_graphs=false") from err
        self.captures += 1
        self.replays += 1
        return self._replay()  # the capture ran nothing: this is the captured batch's step


__all__ = ["GraphedTrainStep", "CudaGraphError", "capture_cuda", "Capture"]

"""The training and evaluation loops: BPTT over whole sequences, nothing neuron-specific.

Each batch calls ``model(x)`` with ``x`` ``[T, B, ...]``; neurons start from rest on every call,
so there is no state to reset. Sums (loss x samples, correct, samples) are reduced over DDP ranks.

No host synchronisation per step: batch losses go into a small device buffer and the correct
count into a device sum; both are read in one transfer every ``Step.log_interval`` steps (and at
the epoch end), where non-finite losses are detected and the progress bar is updated. With
``log_interval=1`` (the CPU default, where a read costs nothing) the read comes before the
batch's update, so a non-finite loss stops training before it touches the weights; with N > 1
the batches between two reads have been applied when it is found (the run stops all the same
and nothing of the epoch is saved). Evaluation sums on the device and reads once at the end.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from spikeflow.train.device_data import device_batches
from spikeflow.train.distributed import all_reduce_sum, broadcast_flag
from spikeflow.train.graphs import Capture, GraphedTrainStep, capture_cuda
from spikeflow.train.losses import count_correct, predict
from spikeflow.train.memory import packed_saved_tensors


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops, the last good checkpoint is kept."""


@dataclass
class Step:
    """What one training/evaluation step needs besides the model and the data.

    ``amp``: the autocast dtype (``torch.bfloat16``/``torch.float16``; ``True`` = float16),
    used on CUDA only. ``log_interval``: steps between host reads of the running loss/accuracy.
    ``cuda_graphs``: replay the training step as a CUDA graph (:mod:`spikeflow.train.graphs`).
    """

    loss_fn: Callable[[Tensor, Tensor], Tensor]
    encode: Callable[[Tensor], Tensor]
    device: torch.device
    accuracy: str = "mean"          # "mean" | "last" | "none"
    amp: Any = None                 # autocast dtype on CUDA (None/False: full precision)
    scaler: Any = None              # torch.amp.GradScaler with float16
    grad_clip: float | None = None
    distributed: bool = False
    pack_saved: bool = False        # spikes saved for backward kept as bits (train.memory)
    on_batch: Callable[[dict[str, float]], None] | None = field(default=None, repr=False)
    log_interval: int = 1
    cuda_graphs: bool = False
    graph: GraphedTrainStep | None = field(default=None, repr=False)

    def autocast(self, cache: bool = True):
        if self.amp and self.device.type == "cuda":
            dtype = torch.float16 if self.amp is True else self.amp
            return torch.autocast("cuda", dtype=dtype, cache_enabled=cache)
        return nullcontext()


def _forward(model: nn.Module, x: Tensor, y: Tensor, step: Step, encode: bool = True,
             cache: bool = True) -> tuple[Tensor, Tensor]:
    inp = step.encode(x) if encode else x
    y = y.to(step.device, non_blocking=True)
    with step.autocast(cache):
        out = model(inp)
    if not isinstance(out, Tensor) or out.dim() != 3:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"the model must return per-step outputs [T, B, K]; got {shape}")
    out = out.float()
    return out, step.loss_fn(out, y)


def _correct(out: Tensor, y: Tensor, step: Step) -> Tensor:
    if step.accuracy == "none":
        return out.new_zeros(())
    return count_correct(out, y.to(out.device), step.accuracy)


def _update(model: nn.Module, loss: Tensor, opt: Optimizer, step: Step) -> None:
    """zero_grad(set_to_none), backward, optional clipping, optimizer step (GradScaler with fp16)."""
    opt.zero_grad(set_to_none=True)
    if step.scaler is not None:
        step.scaler.scale(loss).backward()
        if step.grad_clip:
            step.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), step.grad_clip)
        step.scaler.step(opt)
        step.scaler.update()
    else:
        loss.backward()
        if step.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), step.grad_clip)
        opt.step()


def _finish(loss_sum: float, correct: float, n: float, step: Step, seconds: float) -> dict[str, float]:
    loss_sum, correct, n = all_reduce_sum([loss_sum, correct, n], step.device)
    n = max(n, 1.0)
    row = {"loss": loss_sum / n, "samples": int(n), "seconds": seconds,
           "samples_per_s": n / max(seconds, 1e-9)}
    if step.accuracy != "none":
        row["acc"] = correct / n
    return row


def make_graphed_step(model: nn.Module, opt: Optimizer, step: Step,
                      capture: Capture = capture_cuda, side_stream: bool = True) -> GraphedTrainStep:
    """A :class:`GraphedTrainStep` running this loop's forward and update. Deterministic
    encodings (``BatchEncoder`` ``none``/``repeat``) are captured with the model; others run
    eagerly before the graph."""
    inside = bool(getattr(step.encode, "deterministic", False))

    def forward(x: Tensor, y: Tensor, capturing: bool) -> tuple[Tensor, Tensor]:
        out, loss = _forward(model, x, y, step, encode=inside, cache=not capturing)
        return loss, _correct(out.detach(), y, step)

    return GraphedTrainStep(forward, lambda loss: _update(model, loss, opt, step),
                            lambda: opt.zero_grad(set_to_none=True),
                            None if inside else step.encode, capture=capture,
                            side_stream=side_stream)


def graphed_step(model: nn.Module, opt: Optimizer, step: Step) -> GraphedTrainStep | None:
    """``step.graph`` when set; else, with ``step.cuda_graphs`` on CUDA, a new
    :func:`make_graphed_step` kept on ``step``; else None (eager steps)."""
    if step.graph is None and step.cuda_graphs and step.device.type == "cuda":
        step.graph = make_graphed_step(model, opt, step)
    return step.graph


class _Window:
    """Batch losses (device buffer) and batch sizes (host) since the last read."""

    def __init__(self, size: int, device: torch.device) -> None:
        self.losses = torch.zeros(size, dtype=torch.float64, device=device)
        self.sizes: list[int] = []
        self.first = 0              # index of the window's first batch in the epoch

    def add(self, loss: Tensor, b: int) -> None:
        self.losses[len(self.sizes)].copy_(loss.detach())
        self.sizes.append(b)


class _EpochSums:
    """Host totals of the batches read so far."""

    def __init__(self) -> None:
        self.loss_sum, self.correct, self.n = 0.0, 0.0, 0


def _read(window: _Window, correct: Tensor, sums: _EpochSums, step: Step, epoch: int,
          start: float) -> None:
    """One host read: check the window's losses, add them to the totals, report progress."""
    k = len(window.sizes)
    values = torch.cat([window.losses[:k], correct.reshape(1).to(window.losses.dtype)]).tolist()
    losses, sums.correct = values[:k], values[k]
    bad = next((j for j, v in enumerate(losses) if not math.isfinite(v)), None)
    flag = bad is not None
    if step.distributed:
        flag = broadcast_flag(flag, step.device)
    if flag:
        if bad is None:
            raise NonFiniteLossError(f"loss is not finite on another process at epoch {epoch + 1}, "
                                     f"batches {window.first + 1}..{window.first + k}")
        raise NonFiniteLossError(f"loss is {losses[bad]} at epoch {epoch + 1}, "
                                 f"batch {window.first + bad + 1}")
    part = 0.0
    for value, b in zip(losses, window.sizes):
        sums.loss_sum += value * b
        part += value * b
    m = sum(window.sizes)
    sums.n += m
    if step.on_batch is not None:
        seconds = time.perf_counter() - start
        info = {"loss": part / max(m, 1), "samples_per_s": sums.n / max(seconds, 1e-9),
                "batches": k}
        if step.accuracy != "none":
            info["acc"] = sums.correct / max(sums.n, 1)
        step.on_batch(info)
    window.first += k
    window.sizes.clear()


def train_one_epoch(model: nn.Module, loader: Iterable, opt: Optimizer, step: Step,
                    epoch: int = 0) -> dict[str, float]:
    """One pass over ``loader`` with BPTT; returns ``{loss, acc, samples, seconds, samples_per_s}``.

    Host reads happen every ``step.log_interval`` batches and at the end (see the module doc).

    Raises:
        NonFiniteLossError: when a batch loss is NaN/inf (on any rank).
    """
    model.train()
    every = max(1, int(step.log_interval))
    window = _Window(every, step.device)
    correct = torch.zeros((), dtype=torch.float64, device=step.device)
    sums = _EpochSums()
    graph = graphed_step(model, opt, step)
    if graph is not None:
        graph.start_epoch()
    start = time.perf_counter()
    for x, y in device_batches(loader, step.device):
        y = y.to(step.device, non_blocking=True)
        b = y.shape[0]
        if graph is not None:
            loss, batch_correct = graph(x, y)
            window.add(loss, b)
            correct += batch_correct
            if len(window.sizes) == every:
                _read(window, correct, sums, step, epoch, start)
            continue
        with packed_saved_tensors(step.pack_saved):
            out, loss = _forward(model, x, y, step)
        window.add(loss, b)
        correct += _correct(out.detach(), y, step)
        if len(window.sizes) == every:
            _read(window, correct, sums, step, epoch, start)  # before the update
        _update(model, loss, opt, step)
    if window.sizes:
        _read(window, correct, sums, step, epoch, start)
    return _finish(sums.loss_sum, sums.correct, sums.n, step, time.perf_counter() - start)


def clip_correct(out: Tensor, y: Tensor, clips: int, mode: str) -> Tensor:
    """ASA multi-clip rule (seeds_spec R3.5): a sample is correct iff MORE than half of its
    ``clips`` clip predictions are right. ``out`` is ``[T, B*K, C]`` with the clips of sample
    ``b`` at ``b*K .. b*K+K-1``; returns the number of correct samples."""
    preds = predict(out, mode).view(-1, clips)
    labels = (y.argmax(-1) if y.dim() == 2 else y).to(preds.device)
    return ((preds == labels[:, None]).double().mean(1) > 0.5).sum()


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, step: Step, clips: int | None = None
             ) -> dict[str, float]:
    """Loss and accuracy over ``loader`` in eval mode (every sample counted once over ranks).

    With ``clips=K`` (default: ``loader.clips``) batches are ``[T, B*K, ...]`` and targets ``[B]``:
    the loss averages over all clips, the accuracy follows :func:`clip_correct`.
    """
    model.eval()
    clips = getattr(loader, "clips", 0) if clips is None else clips
    loss_sum = torch.zeros((), dtype=torch.float64, device=step.device)  # sum of loss x samples
    correct = torch.zeros((), dtype=torch.float64, device=step.device)
    n = 0
    start = time.perf_counter()
    for x, y in device_batches(loader, step.device):
        y = y.to(step.device, non_blocking=True)
        b = y.shape[0]
        if clips:
            y_clips = y.repeat_interleave(clips, dim=0)
            out, loss = _forward(model, x, y_clips, step)
            if step.accuracy != "none":
                correct += clip_correct(out, y, clips, step.accuracy)
        else:
            out, loss = _forward(model, x, y, step)
            correct += _correct(out, y, step)
        loss_sum += loss.detach().double() * b
        n += b
    loss_total, correct_total = torch.stack([loss_sum, correct]).tolist()  # the one host read
    return _finish(loss_total, correct_total, n, step, time.perf_counter() - start)


__all__ = ["NonFiniteLossError", "Step", "train_one_epoch", "evaluate", "clip_correct",
           "graphed_step", "make_graphed_step"]

"""The training and evaluation loops: BPTT over whole sequences, nothing neuron-specific.

Each batch calls ``model(x)`` with ``x`` ``[T, B, ...]``; neurons start from rest on every call,
so there is no state to reset. Sums (loss x samples, correct, samples) are reduced over DDP ranks.
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

from spikeflow.train.distributed import all_reduce_sum, broadcast_flag
from spikeflow.train.losses import count_correct, predict
from spikeflow.train.memory import packed_saved_tensors


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops, the last good checkpoint is kept."""


@dataclass
class Step:
    """What one training/evaluation step needs besides the model and the data."""

    loss_fn: Callable[[Tensor, Tensor], Tensor]
    encode: Callable[[Tensor], Tensor]
    device: torch.device
    accuracy: str = "mean"          # "mean" | "last" | "none"
    amp: bool = False               # autocast (CUDA only)
    scaler: Any = None              # torch.amp.GradScaler when amp
    grad_clip: float | None = None
    distributed: bool = False
    pack_saved: bool = False        # spikes saved for backward kept as bits (train.memory)
    on_batch: Callable[[dict[str, float]], None] | None = field(default=None, repr=False)

    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()


def _forward(model: nn.Module, x: Tensor, y: Tensor, step: Step) -> tuple[Tensor, Tensor]:
    inp = step.encode(x)
    y = y.to(step.device, non_blocking=True)
    with step.autocast():
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


def _finish(loss_sum: float, correct: float, n: float, step: Step, seconds: float) -> dict[str, float]:
    loss_sum, correct, n = all_reduce_sum([loss_sum, correct, n], step.device)
    n = max(n, 1.0)
    row = {"loss": loss_sum / n, "samples": int(n), "seconds": seconds,
           "samples_per_s": n / max(seconds, 1e-9)}
    if step.accuracy != "none":
        row["acc"] = correct / n
    return row


def train_one_epoch(model: nn.Module, loader: Iterable, opt: Optimizer, step: Step,
                    epoch: int = 0) -> dict[str, float]:
    """One pass over ``loader`` with BPTT; returns ``{loss, acc, samples, seconds, samples_per_s}``.

    Raises:
        NonFiniteLossError: when a batch loss is NaN/inf (on any rank).
    """
    model.train()
    loss_sum = 0.0
    correct = torch.zeros((), dtype=torch.float64, device=step.device)
    n = 0
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        with packed_saved_tensors(step.pack_saved):
            out, loss = _forward(model, x, y, step)
        value = float(loss.detach())
        bad = not math.isfinite(value)
        if step.distributed:
            bad = broadcast_flag(bad, step.device)
        if bad:
            raise NonFiniteLossError(f"loss is {value} at epoch {epoch + 1}, batch {i + 1}")
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
        b = y.shape[0]
        loss_sum += value * b
        correct += _correct(out.detach(), y, step)
        n += b
        if step.on_batch is not None:
            seconds = time.perf_counter() - start
            info = {"loss": value, "samples_per_s": n / max(seconds, 1e-9)}
            if step.accuracy != "none":
                info["acc"] = float(correct) / n
            step.on_batch(info)
    return _finish(loss_sum, float(correct), n, step, time.perf_counter() - start)


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
    loss_sum = 0.0
    correct = torch.zeros((), dtype=torch.float64, device=step.device)
    n = 0
    start = time.perf_counter()
    for x, y in loader:
        b = y.shape[0]
        if clips:
            y_clips = y.repeat_interleave(clips, dim=0)
            out, loss = _forward(model, x, y_clips, step)
            if step.accuracy != "none":
                correct += clip_correct(out, y, clips, step.accuracy)
        else:
            out, loss = _forward(model, x, y, step)
            correct += _correct(out, y, step)
        loss_sum += float(loss) * b
        n += b
    return _finish(loss_sum, float(correct), n, step, time.perf_counter() - start)


__all__ = ["NonFiniteLossError", "Step", "train_one_epoch", "evaluate", "clip_correct"]

"""Losses over per-step model outputs ``[T, B, K]`` and accuracy read-outs.

=================  ==========================================================  =====================
name               definition                                                  used by (seeds_spec)
=================  ==========================================================  =====================
``mse_rate``       ``MSE(mean_t out[t], one_hot(y))``                          PLIF R2.4, ASA R3.6,
                                                                               He2020 R4.2
``ce_count``       ``CE(sum_t out[t], y)`` (spike counts as logits)            snn-iir R1.4
``ce_mean``        ``CE(mean_t out[t], y)``                                    RNN/LSTM baselines
``ce_per_step``    ``mean_t CE(out[t], y)``                                    per-step read-out
``mse_sequence``   ``MSE(f(out), target)``; ``f`` = normalised dual-exp filter  snn-iir associative
                   over T when ``filter_tau_m``/``filter_tau_s`` are given      memory R1.2 (f)
=================  ==========================================================  =====================

Targets: class indices ``[B]`` (int) for the classification losses (``mse_rate`` also accepts a
float one-hot ``[B, K]``); ``mse_sequence`` takes a batch-first target sequence ``[B, T, F]``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]

#: options each loss accepts in ``train.loss_options``
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    "mse_rate": (),
    "ce_count": ("label_smoothing",),
    "ce_mean": ("label_smoothing",),
    "ce_per_step": ("label_smoothing",),
    "mse_sequence": ("filter_tau_m", "filter_tau_s"),
}


def _check_output(out: Tensor) -> None:
    if out.dim() != 3:
        raise ValueError(f"the model must return per-step outputs [T, B, K]; got shape "
                         f"{tuple(out.shape)}")


def mse_rate(out: Tensor, target: Tensor) -> Tensor:
    """``MSE(mean_t out[t], one_hot(target))`` (firing rate vs one-hot)."""
    _check_output(out)
    rate = out.mean(0)
    if target.dim() == 1:
        target = F.one_hot(target.long(), rate.shape[-1]).to(rate.dtype)
    return F.mse_loss(rate, target.to(rate.dtype))


def ce_count(out: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy with spike counts ``sum_t out[t]`` as logits."""
    _check_output(out)
    return F.cross_entropy(out.sum(0), target.long(), label_smoothing=label_smoothing)


def ce_mean(out: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy with ``mean_t out[t]`` as logits."""
    _check_output(out)
    return F.cross_entropy(out.mean(0), target.long(), label_smoothing=label_smoothing)


def ce_per_step(out: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """``mean_t CE(out[t], target)``: every step is asked for the label."""
    _check_output(out)
    steps = out.shape[0]
    return F.cross_entropy(out.flatten(0, 1), target.long().repeat(steps),
                           label_smoothing=label_smoothing)


def mse_sequence(out: Tensor, target: Tensor, filter_tau_m: float | None = None,
                 filter_tau_s: float | None = None) -> Tensor:
    """MSE between the output sequence ``[T, B, F]`` (filtered when taus are given) and the
    batch-first target sequence ``[B, T, F]``."""
    _check_output(out)
    if (filter_tau_m is None) != (filter_tau_s is None):
        raise ValueError("mse_sequence needs both filter_tau_m and filter_tau_s (or neither)")
    if filter_tau_m is not None:
        out = dual_exp_readout(out, float(filter_tau_m), float(filter_tau_s))
    target = target.transpose(0, 1).to(out.dtype)
    if target.shape != out.shape:
        raise ValueError(f"mse_sequence: output {tuple(out.shape)} and target (time-first) "
                         f"{tuple(target.shape)} differ")
    return F.mse_loss(out, target)


def dual_exp_readout(x: Tensor, tau_m: float, tau_s: float) -> Tensor:
    """The layers package's normalised dual-exponential read-out filter over ``[T, B, ...]``."""
    from spikeflow.layers import DualExpReadout  # noqa: PLC0415 (layers land independently)

    return DualExpReadout(tau_m=tau_m, tau_s=tau_s).to(x.device)(x)


_LOSSES: dict[str, Callable[..., Tensor]] = {
    "mse_rate": mse_rate, "ce_count": ce_count, "ce_mean": ce_mean,
    "ce_per_step": ce_per_step, "mse_sequence": mse_sequence,
}


def check_loss_options(name: str, options: dict[str, Any]) -> None:
    """Raise ValueError naming ``train.loss_options.<key>`` when a key is not accepted by ``name``."""
    allowed = LOSS_OPTIONS[name]
    for key in options:
        if key not in allowed:
            raise ValueError(f"unknown config key 'train.loss_options.{key}' for loss {name}; "
                             f"allowed: {', '.join(allowed) or '(none)'}")


def build_loss(name: str, options: dict[str, Any] | None = None) -> LossFn:
    """The loss ``name`` with its options bound: ``fn(out [T, B, K], target) -> scalar``."""
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(_LOSSES)}")
    options = dict(options or {})
    check_loss_options(name, options)
    fn = _LOSSES[name]
    return lambda out, target: fn(out, target, **options)


def predict(out: Tensor, mode: str = "mean") -> Tensor:
    """Class predictions ``[B]`` from ``[T, B, K]``: argmax of the mean over T (same as of the
    sum; ties go to the lower index) or of the last step."""
    _check_output(out)
    if mode == "mean":
        return out.sum(0).argmax(-1)
    if mode == "last":
        return out[-1].argmax(-1)
    raise ValueError(f"unknown accuracy mode {mode!r}; allowed: mean, last")


def count_correct(out: Tensor, target: Tensor, mode: str = "mean") -> Tensor:
    """Number of correct predictions in the batch (a 0-dim tensor on ``out``'s device)."""
    if target.dim() == 2:  # one-hot targets
        target = target.argmax(-1)
    return (predict(out, mode) == target.to(out.device)).sum()


__all__ = ["LOSS_OPTIONS", "build_loss", "check_loss_options", "mse_rate", "ce_count", "ce_mean",
           "ce_per_step", "mse_sequence", "predict", "count_correct"]

"""Optimizers (Adam, AdamW, SGD) and per-epoch learning-rate schedules from the config.

Schedules are stepped once per epoch (PLIF R2.4 CosineAnnealingLR(T_max=64); snn-iir R1.4
MultiStepLR([50, 100], 0.1); ASA R3.6 CosineAnnealingWarmRestarts(T_0=epochs, eta_min=1e-6)).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
)

from spikeflow.train.config import OptimConfig, ScheduleConfig


def fused_supported(params: list[nn.Parameter]) -> bool:
    """Whether PyTorch's fused optimizer kernels take these parameters (float, CPU or CUDA)."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig,
                    capturable: bool = False) -> Optimizer:
    """Adam / AdamW / SGD over ``params`` with ``cfg``'s lr and weight decay (fused update when
    ``cfg.fused`` is true, or null and supported). ``capturable``: Adam/AdamW keep their step
    counter on the device so the update can be captured in a CUDA graph (``train.cuda_graphs``;
    SGD needs nothing)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    fused = fused_supported(params) if cfg.fused is None else cfg.fused
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                weight_decay=cfg.weight_decay, fused=fused, capturable=capturable)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, fused=fused,
                                 capturable=capturable)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay, fused=fused)
    raise ValueError(f"optim.name: got {cfg.name!r}; allowed: adam, adamw, sgd")


def _constant(_: int) -> float:
    return 1.0


def build_scheduler(opt: Optimizer, cfg: ScheduleConfig, epochs: int) -> LRScheduler:
    """The epoch-wise schedule ``cfg.name``; ``T_max``/``T_0`` default to ``epochs``."""
    if cfg.name == "constant":
        return LambdaLR(opt, _constant)
    if cfg.name == "cosine":
        return CosineAnnealingLR(opt, T_max=cfg.T_max or epochs, eta_min=cfg.eta_min)
    if cfg.name == "multistep":
        return MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if cfg.name == "cosine_restarts":
        return CosineAnnealingWarmRestarts(opt, T_0=cfg.T_0 or epochs, T_mult=cfg.T_mult,
                                           eta_min=cfg.eta_min)
    raise ValueError(f"schedule.name: got {cfg.name!r}; allowed: constant, cosine, multistep, "
                     "cosine_restarts")


def current_lr(opt: Optimizer) -> float:
    """Learning rate of the first parameter group."""
    return float(opt.param_groups[0]["lr"])


__all__ = ["build_optimizer", "build_scheduler", "current_lr", "fused_supported"]

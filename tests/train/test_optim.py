"""Optimizers and per-epoch schedules against closed forms."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeflow.train.config import OptimConfig, ScheduleConfig
from spikeflow.train.optim import build_optimizer, build_scheduler, current_lr


def lrs(schedule: ScheduleConfig, epochs: int, lr: float = 1.0) -> list[float]:
    opt = build_optimizer(nn.Linear(2, 2).parameters(), OptimConfig(name="sgd", lr=lr))
    sched = build_scheduler(opt, schedule, epochs)
    out = []
    for _ in range(epochs):
        out.append(current_lr(opt))
        opt.step()
        sched.step()
    return out


def test_optimizer_kinds_and_weight_decay():
    params = list(nn.Linear(3, 1).parameters())
    adam = build_optimizer(params, OptimConfig(name="adam", lr=0.1, weight_decay=1e-4))
    adamw = build_optimizer(params, OptimConfig(name="adamw", lr=0.1, weight_decay=0.01))
    sgd = build_optimizer(params, OptimConfig(name="sgd", lr=0.1, momentum=0.9, nesterov=True))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["weight_decay"] == 1e-4
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.01
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] is True
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(frozen.parameters(), OptimConfig())


def test_constant_and_multistep():
    assert lrs(ScheduleConfig(name="constant"), 4) == [1.0] * 4
    got = lrs(ScheduleConfig(name="multistep", milestones=[2, 4], gamma=0.1), 6)
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_defaults_T_max_to_epochs():
    got = lrs(ScheduleConfig(name="cosine", eta_min=0.1), 5)
    expect = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]
    assert got == pytest.approx(expect)
    got = lrs(ScheduleConfig(name="cosine", T_max=2), 3)  # PLIF: T_max=64 < epochs
    assert got == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)


def test_cosine_warm_restarts():
    got = lrs(ScheduleConfig(name="cosine_restarts", T_0=3, eta_min=0.0), 6)
    one = [(1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert got == pytest.approx(one + one)


def test_fused_update_by_default_where_supported():
    params = list(nn.Linear(3, 2).parameters())
    assert build_optimizer(params, OptimConfig())._step_supports_amp_scaling  # fused kernels
    assert build_optimizer(params, OptimConfig(name="sgd")).defaults["fused"] is True
    assert not build_optimizer(params, OptimConfig(fused=False)).defaults["fused"]

"""Hand-built run folders for the report tests (the same files `spikeflow train` writes)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from spikeflow.metrics import evaluate_metrics, write_metrics_json
from spikeflow.neurons.base import BaseNeuron


class Step(BaseNeuron):
    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold
        self.w = nn.Parameter(torch.tensor(0.0))

    @property
    def tau(self) -> Tensor:
        return 1 / torch.sigmoid(self.w)

    def run(self, x: Tensor, state=None):
        return (x >= self.threshold).to(x.dtype), state


class Flat(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Flat(), nn.Linear(2 * 6 * 6, 12), Step(), nn.Linear(12, 3), Step(0.0))


def batches(n: int = 2, T: int = 5, B: int = 3):
    g = torch.Generator().manual_seed(1)
    return [((torch.rand(T, B, 2, 6, 6, generator=g) > 0.6).float(), torch.randint(0, 3, (B,), generator=g))
            for _ in range(n)]


def make_run(path: Path, epochs: int = 4, tau: bool = True, seed: int = 0, test: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = {"data": {"name": "toy", "T": 5}, "model": {"name": "tiny"},
              "optim": {"name": "adam", "lr": 0.01}, "train": {"epochs": epochs, "seed": seed}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "lr": 0.01 * 0.5 * (1 + math.cos(math.pi * (e - 1) / epochs)),
               "train_loss": 1.0 / e, "train_acc": 1 - 0.5 / e, "test_loss": 1.2 / e,
               "test_acc": 1 - 0.6 / e - 0.01 * seed, "rate/2": 0.1 * e, "rate/4": 0.05}
        if tau:
            row.update({"tau/2": 2 + 0.1 * e, "tau/4": 2 - 0.05 * e})
        row["acc_A"] = max([r["test_acc"] for r in rows] + [row["test_acc"]])
        row["acc_B"] = None
        rows.append(row)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if test:
        write_metrics_json(path / "metrics_test.json", evaluate_metrics(tiny_net(), batches(), latency_repeats=1))
    return path

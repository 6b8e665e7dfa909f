"""The model summary of a run: measured on a real sample, printed at start, kept in the run folder.

``spikeflow train`` prints :meth:`~spikeflow.metrics.ModelSummary.line` once at start and writes
``model_summary.json`` (read by reports) and ``model_summary.md`` to the run folder;
``spikeflow summary CONFIG|RUN`` prints the whole table. The sample is the first item of a
dataset of the run, encoded as in training (``data.encoding``; Poisson draws from the fixed
evaluation seed), with batch size 1. Without data (files missing) the model card's input shape
is filled with seeded noise, and the summary says so.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from spikeflow.train.config import Config
from spikeflow.train.data import EVAL_SEED, BatchEncoder

SUMMARY_JSON = "model_summary.json"
SUMMARY_MD = "model_summary.md"


def sample_input(cfg: Config, dataset: Any, device: torch.device) -> Tensor:
    """The first item of ``dataset`` as the model input ``[T, 1, ...]`` on ``device``."""
    item = dataset[0]
    x = torch.as_tensor(item[0] if isinstance(item, (tuple, list)) else item)
    encoder = BatchEncoder(cfg.data.encoding, cfg.data.T, device)
    encoder.reseed(EVAL_SEED)
    if cfg.data.encoding == "none":
        return encoder(x.unsqueeze(1))     # [T, ...] -> [T, 1, ...]
    return encoder(x.unsqueeze(0))         # [C, H, W] -> [1, C, H, W] -> [T, 1, ...]


def card_input(cfg: Config) -> tuple[tuple[int, ...], Optional[int]]:
    """``(per-step shape, T)`` from the model card of ``model.name`` (``data.T`` wins for T)."""
    from spikeflow.models import model_card  # noqa: PLC0415

    card = model_card(cfg.model.name)
    return tuple(card.input), cfg.data.T or card.T


def summarize_model(cfg: Config, model: nn.Module, dataset: Any = None,
                    device: torch.device | str = "cpu") -> Any:
    """:func:`spikeflow.summary` of ``model`` on the first item of ``dataset`` (or, when
    ``dataset`` is None, on noise of the model card's input shape, noted in the summary)."""
    from spikeflow.metrics import summary  # noqa: PLC0415

    device = torch.device(device)
    name = cfg.model.name or type(model).__name__
    if dataset is not None:
        return summary(model, sample_input(cfg, dataset, device), name=name)
    shape, T = card_input(cfg)
    result = summary(model, shape, T=T or 1, name=name)
    result.notes.append(f"input: U[0, 1) noise of the model card's shape {list(shape)} (no dataset "
                        "sample); rates and ACs/MACs depend on the input")
    return result


def write_model_summary(run_dir: str | Path, result: Any) -> Path:
    """Write ``model_summary.json`` and ``model_summary.md`` into ``run_dir``; returns the JSON path."""
    from spikeflow.utils.atomic import atomic_write_text  # noqa: PLC0415

    run_dir = Path(run_dir)
    atomic_write_text(run_dir / SUMMARY_MD, result.to_markdown())
    return atomic_write_text(run_dir / SUMMARY_JSON, json.dumps(result.to_dict(), indent=1) + "\n")


__all__ = ["SUMMARY_JSON", "SUMMARY_MD", "sample_input", "card_input", "summarize_model",
           "write_model_summary"]

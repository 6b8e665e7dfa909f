"""Run-folder files: ``config.yaml``, ``versions.json``, ``metrics.csv``/``metrics.jsonl``, TensorBoard.

The metric files are rewritten atomically from the full history after every epoch, so after a
resume they hold exactly the epochs of the checkpoint (a killed epoch leaves no partial row).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeflow.utils.atomic import atomic_write_text


def git_sha(start: Path | None = None) -> str | None:
    """The git commit of the spikeflow sources (``None`` outside a git checkout)."""
    where = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions(seed: int | None = None) -> dict[str, Any]:
    """Python/torch/numpy/spikeflow versions, git SHA, platform and device of this process."""
    import spikeflow  # noqa: PLC0415

    info: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "spikeflow": spikeflow.__version__, "git_sha": git_sha(),
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "argv": sys.argv,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if seed is not None:
        info["seed"] = seed
    return info


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_metrics(run_dir: str | Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` and ``metrics.csv`` (one row per epoch) from ``history``."""
    run_dir = Path(run_dir)
    lines = [json.dumps({k: _jsonable(v) for k, v in row.items()}) for row in history]
    atomic_write_text(run_dir / "metrics.jsonl", "".join(line + "\n" for line in lines))
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())


class TensorBoard:
    """Scalars per epoch under ``<run>/tensorboard``; a no-op when disabled.

    On resume ``purge_step`` drops events of epochs after the checkpoint (a killed epoch).
    """

    def __init__(self, run_dir: str | Path, enabled: bool, purge_step: int | None = None) -> None:
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 (slow import)

            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None and isinstance(value, (int, float)):
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def epoch_scalars(row: dict[str, Any]) -> dict[str, float]:
    """TensorBoard tags for one metrics row: ``loss/<split>``, ``accuracy/<split>``, ``lr``,
    ``firing_rate/<layer>``, ``tau/<layer>``."""
    tags: dict[str, float] = {}
    for key, value in row.items():
        if not isinstance(value, (int, float)) or key == "epoch":
            continue
        for split in ("train", "val", "test"):
            if key == f"{split}_loss":
                tags[f"loss/{split}"] = value
            elif key == f"{split}_acc":
                tags[f"accuracy/{split}"] = value
        if key == "lr":
            tags["lr"] = value
        elif key.startswith(("rate/", "tau/")):
            tags[key.replace("rate/", "firing_rate/", 1)] = value
        elif key in ("acc_A", "acc_B"):
            tags[f"accuracy/{key}"] = value
    return tags


__all__ = ["git_sha", "versions", "write_metrics", "TensorBoard", "epoch_scalars"]

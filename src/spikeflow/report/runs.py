"""Read a run folder (``runs/<name>/``) into plain Python data for tables and plots.

A run folder holds ``config.yaml``, ``metrics.jsonl`` and ``metrics.csv`` (one row per epoch with
``epoch``, ``lr``, ``train_loss``, ``train_acc``, ``val_*``, ``test_*``, ``rate/<layer>``,
``tau/<layer>``, ``acc_A``, ``acc_B``), ``metrics_test.json`` (see
:func:`spikeflow.metrics.evaluate_metrics`), ``versions.json``, checkpoints and TensorBoard events.
Only ``config.yaml`` or a metrics file is required; everything else is optional.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from spikeflow.utils.safe_yaml import YAMLLimitError, safe_load_yaml

CONFIG = "config.yaml"
HISTORY = "metrics.jsonl"
HISTORY_CSV = "metrics.csv"
TEST_METRICS = "metrics_test.json"
VERSIONS = "versions.json"


class RunFolderError(ValueError):
    """A path is not a readable run folder."""


@dataclass
class Run:
    """Everything a report needs from one run folder."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    test: Optional[dict[str, Any]] = None
    versions: Optional[dict[str, Any]] = None

    @property
    def name(self) -> str:
        return self.path.name

    def get(self, dotted: str, default: Any = None) -> Any:
        """A config value by dotted key (``"model.name"``)."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def columns(self, prefix: str = "") -> list[str]:
        """History columns starting with ``prefix``, in first-seen order."""
        seen: list[str] = []
        for row in self.history:
            seen += [k for k in row if k.startswith(prefix) and k not in seen]
        return seen

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """``(epochs, values)`` of a history column, skipping epochs without a finite value."""
        xs, ys = [], []
        for i, row in enumerate(self.history):
            value = _number(row.get(key))
            if value is not None:
                xs.append(float(row.get("epoch", i + 1)))
                ys.append(value)
        return xs, ys

    def last(self, key: str) -> Optional[float]:
        """The last finite value of a history column."""
        _, ys = self.series(key)
        return ys[-1] if ys else None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunFolderError(f"{path}: not valid JSON ({err})") from None


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl`` (or ``metrics.csv`` when only that exists); ``[]`` when neither."""
    jsonl, csv_path = run_dir / HISTORY, run_dir / HISTORY_CSV
    if jsonl.is_file():
        rows = []
        for n, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise RunFolderError(f"{jsonl}, line {n}: not valid JSON ({err})") from None
            if not isinstance(row, dict):
                raise RunFolderError(f"{jsonl}, line {n}: expected a JSON object per line")
            rows.append(row)
        return rows
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as fh:
            return [{k: (_number(v) if _number(v) is not None else (v or None)) for k, v in row.items()}
                    for row in csv.DictReader(fh)]
    return []


def load_run(path: str | Path) -> Run:
    """Load a run folder; raises :class:`RunFolderError` naming the path when it is not one."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    config: dict[str, Any] = {}
    if (run_dir / CONFIG).is_file():
        try:
            loaded = safe_load_yaml((run_dir / CONFIG).read_text(encoding="utf-8"), str(run_dir / CONFIG))
        except YAMLLimitError as err:
            raise RunFolderError(str(err)) from None
        except yaml.YAMLError as err:
            raise RunFolderError(f"{run_dir / CONFIG}: not valid YAML ({err})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise RunFolderError(f"{run_dir / CONFIG}: expected a mapping of config sections")
        config = loaded or {}
    history = read_history(run_dir)
    test = _read_json(run_dir / TEST_METRICS) if (run_dir / TEST_METRICS).is_file() else None
    versions = _read_json(run_dir / VERSIONS) if (run_dir / VERSIONS).is_file() else None
    if not config and not history and test is None:
        raise RunFolderError(
            f"{run_dir}: not a run folder (expected {CONFIG}, {HISTORY} or {TEST_METRICS}; "
            "create one with `spikeflow train`)"
        )
    return Run(run_dir, config, history, test, versions)


__all__ = ["Run", "RunFolderError", "load_run", "read_history", "CONFIG", "HISTORY", "TEST_METRICS"]

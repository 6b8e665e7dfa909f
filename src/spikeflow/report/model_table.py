"""The model table of a run in reports: ``model_summary.json`` written by ``spikeflow train``.

The table is :meth:`spikeflow.metrics.ModelSummary.table` (one row per layer, then the totals),
measured on one training sample at the start of the run (untrained weights, so its rates are the
initial ones; the trained rates are in the "Layers (test set)" table).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from spikeflow.metrics.model_summary import ModelSummary
from spikeflow.report.document import Document

SUMMARY_FILE = "model_summary.json"


def load_model_summary(run_dir: str | Path) -> Optional[ModelSummary]:
    """The run's model summary, or None when the run has none (runs older than the summary)."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        return ModelSummary.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValueError) as err:
        raise ValueError(f"{path}: not a model summary ({err})") from None


def add_model_section(doc: Document, run_dir: str | Path) -> bool:
    """Append a "Model" heading, the layer table and its totals to ``doc``; False without a summary."""
    result = load_model_summary(run_dir)
    if result is None:
        return False
    doc.heading("Model", 3)
    headers, rows = result.table()
    doc.table(headers, rows)
    doc.paragraph("; ".join(result.footer()) + ". Measured at the start of training on one "
                  f"training sample {list(result.input_shape)} (initial weights).")
    return True


__all__ = ["SUMMARY_FILE", "load_model_summary", "add_model_section"]

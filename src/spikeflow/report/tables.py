"""Tables: one comparison row per run, rendered as Markdown (formatted) and CSV (raw numbers)."""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable, Optional, Sequence

from spikeflow.report.runs import Run
from spikeflow.utils.numfmt import format_number

# (column key, header, formatter kind)
COMPARISON_COLUMNS: list[tuple[str, str, str]] = [
    ("run", "run", "text"),
    ("model", "model", "text"),
    ("data", "data", "text"),
    ("T", "T", "int"),
    ("epochs", "epochs", "int"),
    ("acc_A", "acc-A %", "percent"),
    ("acc_B", "acc-B %", "percent"),
    ("test_acc", "test acc %", "percent"),
    ("nasfr", "NASFR", "number"),
    ("ac", "ACs/sample", "number"),
    ("mac", "MACs/sample", "number"),
    ("energy_uj", "energy µJ/sample", "number"),
    ("params", "params", "number"),
    ("footprint_kib", "footprint KiB", "number"),
    ("latency_ms", "latency ms/sample", "number"),
    ("throughput", "samples/s", "number"),
]


def _nested(d: Optional[dict], *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def comparison_row(run: Run) -> dict[str, Any]:
    """Raw numbers of one run for the comparison table (``None`` where unknown)."""
    test = run.test or {}
    synops = test.get("synops") or {}
    energy = test.get("energy_pj")
    footprint = _nested(test, "footprint_bytes", "total")
    history_acc = run.last("acc_A")
    return {
        "run": run.name,
        "model": run.get("model.name"),
        "data": run.get("data.name"),
        "T": test.get("T") or run.get("data.T"),
        "epochs": len(run.history) or None,
        "acc_A": history_acc,
        "acc_B": run.last("acc_B"),
        "test_acc": test.get("accuracy", run.last("test_acc")),
        "nasfr": test.get("nasfr"),
        "ac": synops.get("ac"),
        "mac": synops.get("mac"),
        "energy_uj": None if energy is None else energy / 1e6,
        "params": test.get("params"),
        "footprint_kib": None if footprint is None else footprint / 1024,
        "latency_ms": _nested(test, "latency", "sample", "latency_ms"),
        "throughput": _nested(test, "latency", "batch", "throughput_samples_per_s"),
    }


def format_percent(fraction: Any) -> str:
    """An accuracy fraction in percent with two decimals (``0.91234 -> '91.23'``), as the seed
    papers print accuracies, so a run can be compared with a paper's value digit for digit."""
    if fraction is None or isinstance(fraction, bool):
        return "–"
    v = float(fraction)
    return f"{100 * v:.2f}" if math.isfinite(v) else "–"


def format_value(value: Any, kind: str) -> str:
    """A table cell: ``text`` as is, ``int`` in full, ``percent`` (fraction -> percent, see
    :func:`format_percent`), anything else (``number``; also ``rate``, ``si``, ``float``) through
    :func:`format_number`."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "text":
        return str(value)
    if kind == "int":
        return f"{int(value)}"
    if kind == "percent":
        return format_percent(value)
    return format_number(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (cells are escaped for ``|``)."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def drop_empty_columns(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]
                       ) -> list[tuple[str, str, str]]:
    """Columns that hold at least one value (``run`` is always kept)."""
    return [c for c in columns if c[0] == "run" or any(r.get(c[0]) is not None for r in rows)]


def comparison_table(runs: Sequence[Run]) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
    """``(columns, raw rows)`` of the comparison across ``runs``."""
    rows = [comparison_row(r) for r in runs]
    return drop_empty_columns(COMPARISON_COLUMNS, rows), rows


def render_markdown(columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]) -> str:
    return markdown_table([h for _, h, _ in columns],
                          [[format_value(r.get(k), kind) for k, _, kind in columns] for r in rows])


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


__all__ = [
    "COMPARISON_COLUMNS", "comparison_row", "comparison_table", "format_value", "format_number",
    "format_percent",
    "markdown_table", "render_markdown", "csv_text", "drop_empty_columns",
]

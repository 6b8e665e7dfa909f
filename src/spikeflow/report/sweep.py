"""Parameter sweeps: one training run per value (or grid point), one table and one plot.

``spikeflow sweep CONFIG --set model.name=he2020_snn_mlp,he2020_lstm_mlp --set data.T=5,10``
expands every ``--set`` holding several comma-separated values into an axis and runs the grid
(cartesian product; ``mode="zip"`` pairs the values instead). A ``--set`` with one value is a fixed
override for every run. Each run goes to ``<out>/runs/<k1=v1,k2=v2>/``; a run whose folder already
holds ``metrics_test.json`` is not run again, so an interrupted sweep continues where it stopped.
The training itself is injected (``runner``), so this module does not import ``spikeflow.train``.
"""
from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml

from spikeflow.report import plots
from spikeflow.report.runs import TEST_METRICS, RunFolderError, load_run
from spikeflow.report.tables import comparison_row, csv_text, format_value, markdown_table
from spikeflow.utils.safe_yaml import YAMLLimitError, safe_load_yaml
from spikeflow.utils.atomic import atomic_write_text

Runner = Callable[[list[str], Path], Any]


class SweepError(ValueError):
    """A ``--set`` argument cannot be parsed."""


@dataclass(frozen=True)
class Axis:
    """One ``--set key=v1,v2,...``: the raw value strings (passed on) and their parsed values."""

    key: str
    raw: tuple[str, ...]
    values: tuple[Any, ...]


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes: ``"1,[2,3],'a,b'"`` -> 3 parts."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if depth != 0 or quote:
        raise SweepError(f"unbalanced brackets or quotes in {text!r}")
    return [p.strip() for p in parts]


def parse_set(arg: str) -> Axis:
    """``"key=v1,v2"`` -> :class:`Axis`; values are parsed as YAML scalars/lists."""
    key, sep, rest = arg.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
        raise SweepError(f"--set expects key=value[,value...] with a dotted key, got {arg!r}")
    raw = split_values(rest)
    if any(r == "" for r in raw):
        raise SweepError(f"--set {key}: empty value in {rest!r}")
    values = []
    for r in raw:
        try:
            values.append(safe_load_yaml(r, f"--set {key}"))
        except (yaml.YAMLError, YAMLLimitError) as err:
            raise SweepError(f"--set {key}: cannot parse value {r!r} ({err})") from None
    return Axis(key, tuple(raw), tuple(values))


def expand(axes: Sequence[Axis], mode: str = "grid") -> list[list[tuple[Axis, int]]]:
    """Points of the sweep: per point, ``(axis, value index)`` for every swept axis."""
    if mode not in ("grid", "zip"):
        raise SweepError(f"mode must be 'grid' or 'zip', got {mode!r}")
    if not axes:
        return [[]]
    if mode == "zip":
        lengths = {len(a.raw) for a in axes}
        if len(lengths) != 1:
            raise SweepError("--zip needs the same number of values for every swept key, got "
                             + ", ".join(f"{a.key}: {len(a.raw)}" for a in axes))
        return [[(a, i) for a in axes] for i in range(lengths.pop())]
    return [list(zip(axes, idx)) for idx in itertools.product(*(range(len(a.raw)) for a in axes))]


def point_name(point: Sequence[tuple[Axis, int]]) -> str:
    """Folder name of a point: ``key=value`` pairs (last key part) joined by ``,``; filesystem-safe."""
    if not point:
        return "run"
    text = ",".join(f"{a.key.split('.')[-1]}={a.raw[i]}" for a, i in point)
    return re.sub(r"[^\w.,=+-]+", "_", text)[:120]


@dataclass
class SweepResult:
    """Rows (one per point, raw numbers) and the files written."""

    rows: list[dict[str, Any]]
    table_md: Path
    table_csv: Path
    plot: Optional[Path]
    failed: list[str] = field(default_factory=list)


RESULT_COLUMNS = [
    ("acc_A", "acc-A %", "percent"), ("acc_B", "acc-B %", "percent"), ("test_acc", "test acc %", "percent"),
    ("nasfr", "NASFR", "number"), ("ac", "ACs/sample", "number"), ("mac", "MACs/sample", "number"),
    ("ops", "ops/sample", "number"), ("energy_uj", "energy µJ/sample", "number"),
    ("params", "params", "number"), ("seconds", "time s", "number"), ("status", "status", "text"),
]


def run_sweep(
    axes: Sequence[Axis],
    fixed: Sequence[str],
    out_dir: str | Path,
    runner: Runner,
    mode: str = "grid",
    echo: Callable[[str], None] = print,
    check: Optional[Callable[[list[str]], Any]] = None,
) -> SweepResult:
    """Run every point with ``runner(overrides, run_dir)`` and write ``sweep.md/.csv/.png``.

    Args:
        axes: swept keys (several values each).
        fixed: ``key=value`` overrides applied to every run (before the swept ones).
        runner: trains one run into ``run_dir``; must leave a run folder with ``metrics_test.json``.
        check: validates the overrides of a point (raises on a bad key/value); every point is
            checked before the first run starts.
    """
    out = Path(out_dir)
    points = expand(axes, mode)
    if check is not None:
        for point in points:
            check(list(fixed) + [f"{a.key}={a.raw[i]}" for a, i in point])
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for n, point in enumerate(points, 1):
        name = point_name(point)
        run_dir = out / "runs" / name
        overrides = list(fixed) + [f"{a.key}={a.raw[i]}" for a, i in point]
        row: dict[str, Any] = {"run": name, **{a.key: a.values[i] for a, i in point}}
        started = time.perf_counter()
        if (run_dir / TEST_METRICS).is_file():
            echo(f"[{n}/{len(points)}] {name}: already done, reading {run_dir}")
            row["status"] = "done"
        else:
            echo(f"[{n}/{len(points)}] {name}: " + " ".join(overrides))
            try:
                runner(overrides, run_dir)
                row["status"] = "ok"
            except Exception as err:  # one failing point must not lose the others
                echo(f"[{n}/{len(points)}] {name} failed: {type(err).__name__}: {err}")
                row["status"] = f"failed: {type(err).__name__}: {err}"[:200]
                failed.append(name)
        row["seconds"] = time.perf_counter() - started if row["status"] == "ok" else None
        rows.append(_with_results(row, run_dir))
    keys = [a.key for a in axes]
    return _write_outputs(rows, keys, out, failed)


def _with_results(row: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    try:
        run = load_run(run_dir)
    except RunFolderError:
        return row
    result = comparison_row(run)
    ops = None
    if result.get("ac") is not None or result.get("mac") is not None:
        ops = (result.get("ac") or 0.0) + (result.get("mac") or 0.0)
    row.update({k: result.get(k) for k in ("acc_A", "acc_B", "test_acc", "nasfr", "ac", "mac",
                                            "energy_uj", "params")})
    row["ops"] = ops
    if row.get("seconds") is None and run.history:
        seconds = [r.get("epoch_seconds") for r in run.history]
        if all(isinstance(s, (int, float)) for s in seconds):
            row["seconds"] = float(sum(seconds))
    return row


def _x_axis(rows: list[dict[str, Any]], keys: list[str]) -> tuple[str, list[str]]:
    """The key for the x axis (the first numeric swept key, else the first) and the group keys."""
    def numeric(k: str) -> bool:
        return all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)

    x = next((k for k in keys if numeric(k)), keys[0])
    return x, [k for k in keys if k != x]


def _write_outputs(rows: list[dict[str, Any]], keys: list[str], out: Path, failed: list[str]) -> SweepResult:
    columns = [("run", "run", "text")] + [(k, k, "text") for k in keys] + RESULT_COLUMNS
    columns = [c for c in columns if c[0] in ("run", "status") or c[0] in keys
               or any(r.get(c[0]) is not None for r in rows)]
    md = markdown_table([h for _, h, _ in columns],
                        [[format_value(r.get(k), kind) for k, _, kind in columns] for r in rows])
    table_md = atomic_write_text(out / "sweep.md", f"# Sweep over {', '.join(keys) or 'nothing'}\n\n{md}")
    table_csv = atomic_write_text(out / "sweep.csv", csv_text([k for k, _, _ in columns], rows))
    plot = None
    if keys:
        x, groups = _x_axis(rows, keys)
        acc_key = "acc_A" if any(r.get("acc_A") is not None for r in rows) else "test_acc"
        plot_rows = [dict(r, acc_pct=None if r.get(acc_key) is None else 100 * r[acc_key]) for r in rows]
        plot = plots.sweep_plot(
            plot_rows, x, groups,
            [("acc_pct", "accuracy (%)", False), ("ops", "synaptic ops / sample", True),
             ("energy_uj", "energy (µJ / sample)", True), ("params", "parameters", True)],
            out / "sweep.png",
        )
    return SweepResult(rows, table_md, table_csv, plot, failed)


__all__ = ["Axis", "SweepError", "SweepResult", "parse_set", "split_values", "expand", "point_name",
           "run_sweep", "RESULT_COLUMNS"]

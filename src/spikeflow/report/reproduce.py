"""Reproduce a seed paper's result tables: run ``configs/<paper>/*.yaml`` and compare with the paper.

A paper config is an ordinary training config (``data``, ``model``, ``optim``, ``schedule``,
``train``, ``run``) plus two metadata blocks that training ignores:

* ``paper:`` the published row: ``table``, ``row``, ``metric`` (``acc_A`` max test accuracy over
  epochs, ``acc_B`` test accuracy at the best validation epoch, ``test_loss`` lowest test loss),
  ``value`` (percent for accuracies; ``null`` when unknown), optional ``nasfr``, ``dataset`` (the
  full-scale dataset), ``data_dir`` (its folder under ``--data-root``) and ``notes``;
* ``mini:`` overrides deep-merged into the config for ``--scale mini`` (offline stand-in data, fewer
  epochs, smaller T and models), or ``false`` / a reason string when the row is not run at mini scale.

:func:`reproduce` runs every experiment of a paper through an injected ``runner(config_dict,
run_dir)`` (the CLI passes :func:`spikeflow.train.run`, so this module does not import
``spikeflow.train``), reads the finished run folders, and writes ``results.md`` / ``results.csv``
with: experiment, metric, paper value, this run, delta, params, NASFR, wall time, status. A missing
dataset gives the row "data not found at ..." instead of stopping the whole run; a run folder that
already holds ``metrics_test.json`` is reused (re-running continues an interrupted reproduction).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml

from spikeflow.report.runs import TEST_METRICS, RunFolderError, load_run
from spikeflow.report.tables import csv_text, format_number, markdown_table
from spikeflow.utils.atomic import atomic_write_text
from spikeflow.utils.safe_yaml import YAMLLimitError, safe_load_yaml

__all__ = ["META_KEYS", "SCALES", "METRICS", "PaperMeta", "Experiment", "ReproduceResult", "configs_root",
           "list_papers", "find_experiments", "split_meta", "deep_merge", "load_experiment", "metric_value",
           "reproduce", "render_markdown", "COLUMNS"]

META_KEYS = ("paper", "mini")
SCALES = ("mini", "full")
METRICS = ("acc_A", "acc_B", "test_loss")
Runner = Callable[[dict, Path], Any]

#: (key, header) of the results table
COLUMNS = [("experiment", "experiment"), ("metric", "metric"), ("paper", "paper"), ("run", "this run"),
           ("delta", "delta"), ("params", "params"), ("nasfr", "NASFR"), ("paper_nasfr", "paper NASFR"),
           ("seconds", "wall time s"), ("status", "status")]


class PaperConfigError(ValueError):
    """A paper config's ``paper:``/``mini:`` block is malformed."""


@dataclass(frozen=True)
class PaperMeta:
    """The ``paper:`` block of a config (see the module docstring)."""

    metric: str
    value: Optional[float]
    table: str = ""
    row: str = ""
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    nasfr: Optional[float] = None
    notes: str = ""

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> PaperMeta:
        if not isinstance(data, dict):
            raise PaperConfigError(f"{source}: the paper: block must be a mapping with metric and value")
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise PaperConfigError(f"{source}: unknown key(s) paper.{', paper.'.join(unknown)}; "
                                   f"allowed: {', '.join(sorted(allowed))}")
        if data.get("metric") not in METRICS:
            raise PaperConfigError(f"{source}: paper.metric must be one of {', '.join(METRICS)}, "
                                   f"got {data.get('metric')!r}")
        if "value" not in data:
            raise PaperConfigError(f"{source}: paper.value is required (null when unknown)")
        for key in ("value", "nasfr"):
            v = data.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise PaperConfigError(f"{source}: paper.{key} must be a number or null, got {v!r}")
        return cls(**data)


@dataclass
class Experiment:
    """One row: the config resolved for a scale (``config`` is None when skipped at that scale)."""

    name: str
    path: Path
    paper: PaperMeta
    config: Optional[dict]
    skip: Optional[str] = None


@dataclass
class ReproduceResult:
    rows: list[dict[str, Any]]
    markdown: Path
    csv: Path
    out: Path
    failed: list[str] = field(default_factory=list)


def configs_root() -> Path:
    """``configs/`` of the source tree, else ``./configs``."""
    here = Path(__file__).resolve()
    for root in (here.parents[3] / "configs", Path.cwd() / "configs"):
        if root.is_dir():
            return root
    raise FileNotFoundError("no configs/ folder next to the spikeflow sources or in the current directory; "
                            "pass --configs DIR")


def list_papers(root: Optional[Path] = None) -> list[str]:
    """Paper folders under the configs root that hold at least one YAML with a ``paper:`` block."""
    root = Path(root) if root is not None else configs_root()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and find_experiments(p.name, root))


def find_experiments(paper: str, root: Optional[Path] = None) -> list[Path]:
    """The YAML files of ``configs/<paper>/`` that carry a ``paper:`` block (sorted by name)."""
    root = Path(root) if root is not None else configs_root()
    folder = root / paper
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if "paper" in (_read(p) or {}))


def _read(path: Path) -> dict:
    try:
        data = safe_load_yaml(path.read_text(encoding="utf-8"), str(path))
    except YAMLLimitError as err:
        raise PaperConfigError(str(err)) from None
    except yaml.YAMLError as err:
        raise PaperConfigError(f"{path} is not valid YAML: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise PaperConfigError(f"{path} must hold a mapping at the top level")
    return data or {}


def split_meta(data: dict) -> tuple[dict, Any, Any]:
    """``(training config without metadata, paper block, mini block)``."""
    config = {k: copy.deepcopy(v) for k, v in data.items() if k not in META_KEYS}
    return config, data.get("paper"), data.get("mini")


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged in recursively (mappings merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_experiment(path: str | Path, scale: str = "full", data_root: Optional[str | Path] = None) -> Experiment:
    """Read a paper config and resolve its training config for ``scale``.

    ``data_root``: when the resolved dataset is the paper's full-scale ``dataset`` and the config
    sets no ``data.root``, ``data.root = data_root / paper.data_dir``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    path = Path(path)
    config, paper, mini = split_meta(_read(path))
    meta = PaperMeta.from_dict(paper, path)
    name = path.stem
    if scale == "mini":
        if mini is False or mini is None or isinstance(mini, str):
            reason = mini if isinstance(mini, str) and mini else "no offline stand-in"
            return Experiment(name, path, meta, None, f"not run at mini scale ({reason})")
        if not isinstance(mini, dict):
            raise PaperConfigError(f"{path}: mini: must be a mapping of overrides, false or a reason, got {mini!r}")
        config = deep_merge(config, mini)
    data = config.setdefault("data", {})
    if data_root is not None and data.get("root") is None and data.get("name") == meta.dataset:
        data["root"] = str(Path(data_root) / meta.data_dir) if meta.data_dir else str(data_root)
    return Experiment(name, path, meta, config)


def _history_min(run: Any, key: str) -> Optional[float]:
    vals = [r.get(key) for r in run.history if isinstance(r.get(key), (int, float))]
    return min(vals) if vals else None


def metric_value(run: Any, metric: str) -> Optional[float]:
    """The run's value of ``metric`` in the paper's units (accuracies in percent)."""
    if metric in ("acc_A", "acc_B"):
        v = run.last(metric)
        return None if v is None else 100.0 * v
    if metric == "test_loss":
        return _history_min(run, "test_loss")
    raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")


def _data_not_found(err: FileNotFoundError, exp: Experiment) -> str:
    root = ((exp.config or {}).get("data") or {}).get("root")
    if root:
        return f"data not found at {root}"
    if exp.paper.data_dir and (exp.config or {}).get("data", {}).get("name") == exp.paper.dataset:
        return f"data not found at $SPIKEFLOW_DATA/{exp.paper.data_dir} (no root given; pass --data-root DIR)"
    missing = getattr(err, "missing", None)
    detail = missing[0] if missing else str(err).strip().splitlines()[0]
    return f"data not found at the default location ({detail})"


def _row(exp: Experiment, status: str, seconds: Optional[float], run: Any = None) -> dict[str, Any]:
    value = metric_value(run, exp.paper.metric) if run is not None else None
    test = (run.test or {}) if run is not None else {}
    paper = exp.paper.value
    delta = value - paper if value is not None and paper is not None else None
    return {"experiment": exp.name, "metric": exp.paper.metric, "paper": paper, "run": value, "delta": delta,
            "params": test.get("params"), "nasfr": test.get("nasfr"), "paper_nasfr": exp.paper.nasfr,
            "seconds": seconds, "status": status, "run_dir": str(run.path) if run is not None else None}


def _run_one(exp: Experiment, run_dir: Path, runner: Runner, echo: Callable[[str], None]) -> dict[str, Any]:
    if exp.config is None:
        return _row(exp, f"skipped: {exp.skip}", None)
    if (run_dir / TEST_METRICS).is_file():
        run = load_run(run_dir)
        seconds = sum(r.get("epoch_seconds") or 0.0 for r in run.history) or None
        return _row(exp, "ok (reused finished run)", seconds, run)
    started = time.perf_counter()
    try:
        runner(copy.deepcopy(exp.config), run_dir)
    except FileNotFoundError as err:
        return _row(exp, _data_not_found(err, exp), None)
    except Exception as err:  # noqa: BLE001 - one failing row must not stop the table
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        echo(f"{exp.name}: {type(err).__name__}: {first}")
        return _row(exp, f"error: {type(err).__name__}: {first}", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    try:
        run = load_run(run_dir)
    except RunFolderError as err:
        return _row(exp, f"error: {err}", seconds)
    return _row(exp, "ok", seconds, run)


def _fmt(value: Any, key: str, metric: str = "acc_A") -> str:
    """A results cell: accuracies (already in percent) with two decimals like the papers, every
    other number through :func:`spikeflow.report.tables.format_number` (3 significant figures)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if key in ("paper", "run", "delta"):
        v = float(value)
        text = f"{v:.2f}" if metric in ("acc_A", "acc_B") else format_number(v)
        return ("+" + text) if key == "delta" and v > 0 else text
    if key in ("nasfr", "paper_nasfr", "params", "seconds"):
        return format_number(value)
    return str(value)


def render_markdown(rows: Sequence[dict[str, Any]], title: str = "", note: str = "") -> str:
    """The results table (Markdown) with an optional title and note."""
    cells = [[_fmt(r.get(k), k, r.get("metric", "acc_A")) for k, _ in COLUMNS] for r in rows]
    table = markdown_table([h for _, h in COLUMNS], cells)
    head = f"## {title}\n\n" if title else ""
    return head + (note.rstrip() + "\n\n" if note else "") + table


def reproduce(paper: str, runner: Runner, *, scale: str = "mini", out: str | Path | None = None,
              data_root: Optional[str | Path] = None, root: Optional[Path] = None,
              only: Optional[Sequence[str]] = None, echo: Callable[[str], None] = print) -> ReproduceResult:
    """Run every experiment of ``paper`` (or those named in ``only``) and write the results table.

    Returns the rows and the paths of ``results.md`` / ``results.csv`` under ``out`` (default
    ``runs/reproduce-<paper>-<scale>``); each experiment trains into ``out/<experiment>/``.
    """
    paths = find_experiments(paper, root)
    if not paths:
        known = ", ".join(list_papers(root)) or "(none)"
        raise ValueError(f"no paper configs for {paper!r} under {Path(root) if root else configs_root()}; "
                         f"known papers: {known}")
    if only:
        names = {p.stem for p in paths}
        unknown = sorted(set(only) - names)
        if unknown:
            raise ValueError(f"unknown experiment(s) of {paper}: {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        paths = [p for p in paths if p.stem in set(only)]
    out = Path(out) if out is not None else Path("runs") / f"reproduce-{paper}-{scale}"
    experiments = [load_experiment(p, scale, data_root) for p in paths]
    rows, started = [], time.perf_counter()
    for i, exp in enumerate(experiments, 1):
        echo(f"[{i}/{len(experiments)}] {paper}/{exp.name} ({scale})")
        row = _run_one(exp, out / exp.name, runner, echo)
        rows.append(row)
        summary = "" if row["run"] is None else (
            f": {exp.paper.metric} {_fmt(row['run'], 'run', exp.paper.metric)} "
            f"(paper {_fmt(row['paper'], 'paper', exp.paper.metric)})")
        echo(f"    {row['status']}{summary}")
    total = time.perf_counter() - started
    caveat = " (offline stand-ins, fewer epochs; NOT comparable to the paper numbers)" if scale == "mini" else ""
    note = (f"Scale **{scale}**{caveat}; total wall time {total:.0f} s. "
            "Accuracies in %, delta = this run - paper.")
    md = atomic_write_text(out / "results.md",
                           render_markdown(rows, f"Reproduction of {paper} ({scale})", note))
    csv_path = atomic_write_text(out / "results.csv", csv_text([k for k, _ in COLUMNS] + ["run_dir"], rows))
    failed = [r["experiment"] for r in rows if str(r["status"]).startswith("error")]
    return ReproduceResult(rows, md, csv_path, out, failed)

"""``write_report(runs, out_dir)``: report.md + report.html + PNG figures + comparison.csv."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from spikeflow.report import plots
from spikeflow.report.activity import SampleActivity
from spikeflow.report.document import Document, Table
from spikeflow.report.model_table import add_model_section
from spikeflow.report.runs import Run
from spikeflow.report.tables import comparison_table, csv_text, format_number, format_value
from spikeflow.utils.atomic import atomic_write_text


@dataclass
class ReportFiles:
    """Paths written by :func:`write_report`."""

    markdown: Path
    html: Path
    csv: Path
    figures: list[Path]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def write_report(
    runs: Sequence[Run],
    out_dir: str | Path,
    activity: Optional[Mapping[str, SampleActivity]] = None,
    notes: Sequence[str] = (),
    title: str = "spikeflow report",
) -> ReportFiles:
    """Write ``report.md``, ``report.html``, ``comparison.csv`` and ``figures/*.png`` to ``out_dir``.

    Args:
        runs: loaded run folders (:func:`spikeflow.report.load_run`).
        activity: run name -> one sample's activity, for the spike raster and the input frames.
        notes: lines added under the title (e.g. why a sample figure is missing).
    """
    if not runs:
        raise ValueError("write_report needs at least one run")
    out = Path(out_dir)
    fig_dir = out / "figures"
    doc = Document(title)
    doc.paragraph(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from "
                  + ", ".join(f"`{r.path}`" for r in runs) + ".")
    for note in notes:
        doc.paragraph(note)

    columns, rows = comparison_table(runs)
    doc.heading("Comparison")
    doc.blocks.append(_md_table(columns, rows))
    footnote = column_notes([key for key, _, _ in columns])
    if footnote:
        doc.paragraph(footnote)
    csv_path = atomic_write_text(out / "comparison.csv", csv_text([k for k, _, _ in columns], rows))

    doc.heading("Training")
    doc.image(plots.training_curves(runs, fig_dir / "training_curves.png"),
              "loss and accuracy per epoch")
    doc.image(plots.lr_curve(runs, fig_dir / "learning_rate.png"), "learning rate per epoch")

    doc.heading("Firing rates")
    bars = plots.firing_rate_bars(runs, fig_dir / "firing_rates.png")
    doc.image(bars, "average firing rate per spiking layer")
    doc.image(plots.rates_per_step(runs, fig_dir / "firing_rates_per_step.png"),
              "firing rate per time step")
    if bars is None:
        doc.paragraph("No spiking layer activity was recorded in these runs.")

    doc.heading("PLIF time constants")
    tau = plots.tau_curves(runs, fig_dir / "plif_tau.png")
    doc.image(tau, "learnt tau per PLIF layer over epochs")
    if tau is None:
        doc.paragraph("No run has a layer with a learnable time constant (no `tau/<layer>` column).")

    for i, run in enumerate(runs):
        _run_section(doc, run, i, fig_dir, (activity or {}).get(run.name))

    md_path = atomic_write_text(out / "report.md", doc.to_markdown(out))
    html_path = atomic_write_text(out / "report.html", doc.to_html())
    return ReportFiles(md_path, html_path, csv_path, doc.images())


#: (columns that need it, explanation) for the footnote under the comparison table
COLUMN_NOTES: list[tuple[tuple[str, ...], str]] = [
    (("acc_A",), "acc-A: best test accuracy over epochs"),
    (("acc_B",), "acc-B: test accuracy at the best validation epoch"),
    (("nasfr",), "NASFR: neuron-average spike firing rate over all spiking layers"),
    (("ac", "mac"), "ACs/MACs: synaptic operations per sample over all time steps"),
    (("energy_uj",), "energy: ACs x E_AC + MACs x E_MAC (45 nm, compute only)"),
]


def column_notes(keys: Sequence[str]) -> str:
    """The footnote explaining the columns in ``keys`` (only those: no acc-B note without acc-B)."""
    present = set(keys)
    notes = [text for needs, text in COLUMN_NOTES if present.intersection(needs)]
    return "; ".join(notes) + "." if notes else ""


def _md_table(columns, rows) -> Table:
    return Table([h for _, h, _ in columns],
                 [[format_value(r.get(k), kind) for k, _, kind in columns] for r in rows])


def _run_section(doc: Document, run: Run, index: int, fig_dir: Path,
                 activity: Optional[SampleActivity]) -> None:
    doc.heading(f"Run {run.name}")
    facts = [("model", run.get("model.name")), ("data", run.get("data.name")),
             ("T", run.get("data.T")), ("epochs", len(run.history) or None),
             ("optimizer", run.get("optim.name")), ("lr", run.get("optim.lr")),
             ("seed", run.get("train.seed"))]
    doc.paragraph("; ".join(f"{k}: `{v}`" for k, v in facts if v is not None) or "no config")
    add_model_section(doc, run.path)
    test = run.test or {}
    layers = test.get("layers") or []
    if layers:
        doc.heading("Layers (test set)", 3)
        doc.table(["layer", "kind", "neurons", "firing rate", "sparsity"],
                  [[r["name"], r["kind"], r["neurons"], format_number(r["firing_rate"]),
                    format_number(r["sparsity"])]
                   for r in layers])
    per_layer = (test.get("synops") or {}).get("per_layer") or {}
    if per_layer:
        doc.heading("Synaptic operations per sample", 3)
        doc.table(["connection", "kind", "ACs", "MACs", "dense"],
                  [[name, v["kind"], format_number(v["ac"]), format_number(v["mac"]),
                    format_number(v["dense"])]
                   for name, v in per_layer.items()])
    if activity is not None:
        slug = f"{index:02d}_{_slug(run.name)}"
        caption = []
        if activity.label is not None:
            caption.append(f"label {activity.label}")
        if activity.prediction is not None:
            caption.append(f"predicted {activity.prediction}")
        details = [", ".join(caption)] if caption else []
        short = plots._short(run.name, 32)
        doc.heading("One test sample", 3)
        if activity.frames is not None:
            doc.image(plots.event_frames(activity.frames, fig_dir / f"{slug}_input_frames.png",
                                         title=f"input frames, {short}", details=details),
                      "input frames of one test sample")
        doc.image(plots.spike_raster(activity.spikes, fig_dir / f"{slug}_raster.png",
                                     title=f"spike raster, {short}", details=details),
                  "spike raster of a few neurons per layer")


__all__ = ["write_report", "ReportFiles"]

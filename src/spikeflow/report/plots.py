"""PNG figures for reports (matplotlib's object API with the Agg canvas: no global pyplot state).

Every function draws one figure from plain data, writes it atomically and returns the path, or
returns ``None`` when there is nothing to draw (e.g. no PLIF layer has a tau).
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spikeflow.report.runs import Run
from spikeflow.report.tables import format_number
from spikeflow.utils.atomic import atomic_write_bytes

DPI = 120
SPLIT_STYLE = {"train": "-", "val": ":", "test": "--"}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return atomic_write_bytes(path, buf.getvalue())


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _integer_x(ax) -> None:
    """Integer ticks on the x axis (epochs, time steps)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _short(name: str, width: int = 18) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def training_curves(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Loss and accuracy per epoch (train solid, val dotted, test dashed; one colour per run)."""
    panels = [("loss", "loss"), ("acc", "accuracy (%)")]
    if not any(r.series(f"{s}_{m}")[0] for r in runs for s in SPLIT_STYLE for m, _ in panels):
        return None
    fig = _figure(10 if len(runs) == 1 else 13, 4)
    axes = fig.subplots(1, 2)
    colors = _colors(len(runs))
    for ax, (metric, label) in zip(axes, panels):
        for run, color in zip(runs, colors):
            for split, style in SPLIT_STYLE.items():
                xs, ys = run.series(f"{split}_{metric}")
                if not xs:
                    continue
                if metric == "acc":
                    ys = [100 * y for y in ys]
                name = split if len(runs) == 1 else f"{_short(run.name, 32)} {split}"
                ax.plot(xs, ys, style, color=color, marker="o" if len(xs) < 15 else None,
                        markersize=3, label=name)
        ax.set_xlabel("epoch")
        _integer_x(ax)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda hl: len(hl[0]))
    if len(runs) == 1:
        for ax in axes:
            if ax.lines:
                ax.legend(fontsize="small")
    else:
        fig.legend(handles, labels, loc="outside right upper", fontsize="small")
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    return _save(fig, path)


def lr_curve(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Learning rate per epoch (log scale when it spans more than a decade)."""
    series = [(r, *r.series("lr")) for r in runs]
    series = [s for s in series if s[1]]
    if not series:
        return None
    fig = _figure(6, 3.6)
    ax = fig.subplots()
    for (run, xs, ys), color in zip(series, _colors(len(series))):
        ax.plot(xs, ys, color=color, marker="o" if len(xs) < 15 else None, markersize=3,
                label=_short(run.name, 30))
    values = [y for _, _, ys in series for y in ys if y > 0]
    if values and max(values) / min(values) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    _integer_x(ax)
    ax.set_ylabel("learning rate")
    ax.set_title("learning-rate schedule")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize="small")
    return _save(fig, path)


def layer_rates(run: Run) -> dict[str, float]:
    """Per-layer test firing rates: ``metrics_test.json`` when present, else the last epoch's."""
    rows = (run.test or {}).get("layers") or []
    rates = {r["name"]: r["firing_rate"] for r in rows if r.get("kind") == "spiking"}
    if rates:
        return rates
    return {k[len("rate/"):]: run.last(k) for k in run.columns("rate/") if run.last(k) is not None}


def firing_rate_bars(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Grouped bars: average firing rate of every spiking layer, one colour per run."""
    per_run = [(r, layer_rates(r)) for r in runs]
    per_run = [(r, rates) for r, rates in per_run if rates]
    if not per_run:
        return None
    layers: list[str] = []
    for _, rates in per_run:
        layers += [k for k in rates if k not in layers]
    width = 0.8 / len(per_run)
    fig = _figure(max(6.0, 0.6 * len(layers) * max(1, len(per_run) / 2) + 2), 4)
    ax = fig.subplots()
    x = np.arange(len(layers))
    for i, ((run, rates), color) in enumerate(zip(per_run, _colors(len(per_run)))):
        values = [rates.get(name, np.nan) for name in layers]
        ax.bar(x + (i - (len(per_run) - 1) / 2) * width, values, width, color=color,
               label=_short(run.name, 30))
    ax.set_xticks(x, [_short(n) for n in layers], rotation=30 if len(layers) > 4 else 0,
                  ha="right" if len(layers) > 4 else "center")
    ax.set_xlabel("spiking layer")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_title("per-layer firing rate (test set)")
    ax.grid(axis="y", alpha=0.3)
    if len(per_run) > 1:
        ax.legend(fontsize="small")
    return _save(fig, path)


def rates_per_step_figure(runs: Sequence[Run]) -> Optional[Figure]:
    """One panel per run with per-step data: the firing rate of every spiking layer at every
    time step (shared y axis, one line per layer)."""
    per_run = []
    for run in runs:
        rows = [r for r in (run.test or {}).get("layers") or []
                if r.get("kind") == "spiking" and r.get("firing_rate_per_step")]
        if rows:
            per_run.append((run, rows))
    if not per_run:
        return None
    nrows, cols = grid_shape(len(per_run), max_cols=3)
    fig = _figure(6.4 if cols == 1 else 4.8 * cols + 0.6, 4 if nrows == 1 else 3.6 * nrows + 0.5)
    grid = fig.add_gridspec(nrows, cols)
    first = None
    for i, (run, rows) in enumerate(per_run):
        ax = fig.add_subplot(grid[i // cols, i % cols], sharey=first)
        first = first or ax
        for row, color in zip(rows, _colors(len(rows))):
            steps = row["firing_rate_per_step"]
            ax.plot(range(1, len(steps) + 1), steps, color=color,
                    marker="o" if len(steps) < 30 else None, markersize=3, label=_short(row["name"]))
        ax.set_xlabel("time step t")
        _integer_x(ax)
        ax.set_ylabel("firing rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="layer", title_fontsize="small",
                  ncol=2 if len(rows) > 5 else 1)
        if len(per_run) > 1:
            ax.set_title(_short(run.name, 40), fontsize="medium")
    fig.suptitle("firing rate per time step (test set)" if len(per_run) > 1
                 else f"firing rate per time step ({_short(per_run[0][0].name, 40)}, test set)")
    return fig


def rates_per_step(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Write :func:`rates_per_step_figure` (every run with per-step data) to ``path``."""
    fig = rates_per_step_figure(runs)
    return None if fig is None else _save(fig, path)


def tau_curves(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Learnt membrane time constant of every PLIF layer per epoch (one panel per run)."""
    with_tau = [r for r in runs if r.columns("tau/")]
    if not with_tau:
        return None
    rows, cols = grid_shape(len(with_tau), max_cols=3)
    fig = _figure(4.5 * cols + 1, 3.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, run in zip(axes, with_tau):
        keys = run.columns("tau/")
        for key, color in zip(keys, _colors(len(keys))):
            xs, ys = run.series(key)
            ax.plot(xs, ys, color=color, marker="o" if len(xs) < 15 else None, markersize=3,
                    label=_short(key[len("tau/"):]))
        ax.set_xlabel("epoch")
        _integer_x(ax)
        ax.set_ylabel("tau (steps)")
        ax.set_title(_short(run.name, 40))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", title="layer", title_fontsize="small",
                  ncol=2 if len(keys) > 5 else 1)
    for ax in axes[len(with_tau):]:
        ax.set_visible(False)
    fig.suptitle("PLIF membrane time constant per layer")
    return _save(fig, path)


def _title(title: str, details: Sequence[str]) -> str:
    """``title (d1; d2)``: one parenthesis for all details (never ``title (a) (b)``)."""
    details = [d for d in details if d]
    return f"{title} ({'; '.join(details)})" if details else title


def raster_rows(s: np.ndarray, neurons: int = 16) -> tuple[np.ndarray, str]:
    """The neurons shown for one layer ``[T, N]``: the first ``neurons`` that spike at least once
    (all silent: the first ``neurons``), and which of the two it is."""
    active = np.flatnonzero(s.any(axis=0))
    if active.size:
        return active[:neurons], "first active"
    return np.arange(min(neurons, s.shape[1])), "all silent"


def spike_raster_figure(spikes: Mapping[str, np.ndarray], neurons: int = 16,
                        title: str = "spike raster of one sample",
                        details: Sequence[str] = ()) -> Optional[Figure]:
    """Raster of up to 4 layers, ``spikes[layer]`` ``[T, N]`` (one sample): one row per shown
    neuron (row ``k`` = ``k``-th chosen neuron, labelled with its id), a vertical mark at every
    step ``t`` (1-based) where it spikes; rows are 0.75 high, so neighbours never touch."""
    layers = [(name, np.asarray(s).reshape(np.asarray(s).shape[0], -1)) for name, s in spikes.items()]
    layers = [(n, s) for n, s in layers if s.size][:4]
    if not layers:
        return None
    picks = [raster_rows(s, neurons) for _, s in layers]
    heights = [0.45 + 0.14 * len(chosen) for chosen, _ in picks]
    fig = _figure(7, 0.7 + sum(heights) + 0.35 * len(layers))
    axes = np.atleast_1d(fig.subplots(len(layers), 1, sharex=True, squeeze=False,
                                      gridspec_kw={"height_ratios": heights})).ravel()
    T = max(s.shape[0] for _, s in layers)
    width = 2.5 if T <= 50 else 1.2
    for ax, (name, s), (chosen, what) in zip(axes, layers, picks):
        ax.eventplot([np.flatnonzero(s[:, j]) + 1 for j in chosen], orientation="horizontal",
                     lineoffsets=np.arange(len(chosen)), linelengths=0.75, linewidths=width,
                     colors="black")
        ax.set_ylim(-0.6, len(chosen) - 0.4)
        ax.set_xlim(0.5, T + 0.5)
        ax.set_yticks(np.arange(len(chosen)), [str(j) for j in chosen], fontsize="x-small")
        ax.set_ylabel("neuron id")
        ax.grid(axis="x", alpha=0.25)
        ax.set_title(f"layer {_short(name, 30)}: {len(chosen)} of {s.shape[1]} neurons ({what}), "
                     f"layer rate {format_number(float(s.mean()))}", fontsize="medium")
    axes[-1].set_xlabel("time step t")
    if T <= 20:
        axes[-1].set_xticks(np.arange(1, T + 1))
    else:
        _integer_x(axes[-1])
    fig.suptitle(_title(title, details))
    return fig


def spike_raster(spikes: Mapping[str, np.ndarray], path: str | Path, neurons: int = 16,
                 title: str = "spike raster of one sample", details: Sequence[str] = ()
                 ) -> Optional[Path]:
    """Write :func:`spike_raster_figure` to ``path`` (``None`` when no layer has spikes data)."""
    fig = spike_raster_figure(spikes, neurons, title, details)
    return None if fig is None else _save(fig, path)


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` panels: the fewest rows of at most ``max_cols``, filled evenly,
    so fewer than ``rows`` cells stay empty (12 -> 2 x 6, 13 -> 2 x 7, 16 -> 2 x 8, 4 -> 1 x 4)."""
    if n < 1:
        raise ValueError(f"grid_shape needs n >= 1, got {n}")
    rows = math.ceil(n / max_cols)
    return rows, math.ceil(n / rows)


def event_frames_figure(frames: np.ndarray, max_frames: int = 16,
                        title: str = "input frames of one sample",
                        details: Sequence[str] = ()) -> Optional[Figure]:
    """Grid of the input frames ``[T, C, H, W]`` of one sample (see :func:`event_frames`)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 3:
        frames = frames[:, None]
    if frames.ndim != 4 or frames.shape[0] == 0:
        return None
    T, C = frames.shape[:2]
    idx = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    rows, cols = grid_shape(len(idx))
    fig = _figure(1.6 * cols + 1.2, 1.7 * rows + 0.6)
    grid = fig.add_gridspec(rows, cols)
    axes = [fig.add_subplot(grid[i // cols, i % cols]) for i in range(len(idx))]
    if C == 2:
        images = frames[idx, 0] - frames[idx, 1]
        vmax = float(np.abs(images).max()) or 1.0
        kw: dict[str, Any] = dict(cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        label = "ON - OFF events"
    elif C == 3:
        images = frames[idx].transpose(0, 2, 3, 1)
        lo, hi = float(images.min()), float(images.max())
        images = (images - lo) / ((hi - lo) or 1.0)
        kw, label = {}, None
    else:
        images = frames[idx].sum(axis=1)
        kw = dict(cmap="gray", vmin=float(images.min()), vmax=float(images.max()) or 1.0)
        label = "value"
    mappable = None
    for ax, t, image in zip(axes, idx, images):
        mappable = ax.imshow(image, interpolation="nearest", **kw)
        ax.set_title(f"t = {t + 1}", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    if label is not None and mappable is not None:
        bar = fig.colorbar(mappable, ax=axes, shrink=0.8, label=label)
        if np.array_equal(images, np.round(images)):       # event counts: integer ticks
            from matplotlib.ticker import MaxNLocator

            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()
    steps = f"{len(idx)} of {T} steps, {C} channel{'s' if C > 1 else ''}"
    fig.suptitle(_title(title, [*details, steps]))
    return fig


def event_frames(frames: np.ndarray, path: str | Path, max_frames: int = 16,
                 title: str = "input frames of one sample", details: Sequence[str] = ()
                 ) -> Optional[Path]:
    """Grid of the input frames ``[T, C, H, W]`` of one sample, written to ``path``.

    Two channels (ON/OFF polarities) are shown as ON - OFF on a diverging map, one channel in
    grey, three as RGB; frames are evenly picked when ``T > max_frames``; the grid has no empty
    row (:func:`grid_shape`); ``details`` go into the one parenthesis of the title.
    """
    fig = event_frames_figure(frames, max_frames, title, details)
    return None if fig is None else _save(fig, path)


LR_KEYS = ("lr", "learning_rate", "eta_min")


def log_x(key: str, values: Sequence[Any]) -> bool:
    """Whether a swept numeric axis is drawn on a log scale: all values positive and either the
    key is a learning rate (last part ``lr``, ``learning_rate``, ``eta_min`` or ending in ``_lr``)
    or the values span more than a decade."""
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(nums) != len(values) or not nums or min(nums) <= 0:
        return False
    name = key.split(".")[-1].lower()
    return name in LR_KEYS or name.endswith("_lr") or max(nums) / min(nums) > 10


def sweep_figure(rows: Sequence[Mapping[str, Any]], x_key: str, group_keys: Sequence[str],
                 metrics: Sequence[tuple[str, str, bool]]) -> Optional[Figure]:
    """One panel per metric ``(key, label, log_y)``: value against ``x_key``, one line per group.

    Rows lacking a metric are skipped; a categorical ``x_key`` is placed at evenly spaced ticks; a
    numeric one is on a log scale when :func:`log_x` says so; with at most 8 distinct numeric
    values the ticks sit at exactly those values, labelled as given (``0.0003``).
    """
    metrics = [m for m in metrics if any(r.get(m[0]) is not None for r in rows)]
    if not rows or not metrics:
        return None
    xs_all = [r.get(x_key) for r in rows]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
    categories = [] if numeric else list(dict.fromkeys(str(v) for v in xs_all))
    x_log = numeric and log_x(x_key, xs_all)
    distinct = sorted(set(float(v) for v in xs_all)) if numeric else []
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if len(group_keys) == 1:
            label = str(r.get(group_keys[0]))
        else:
            label = ", ".join(f"{k}={r.get(k)}" for k in group_keys) or "runs"
        groups.setdefault(label, []).append(r)
    cols = 2 if len(metrics) == 4 else len(metrics)
    nrows = math.ceil(len(metrics) / cols)
    fig = _figure(4.4 * cols + 0.4, 3.4 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    colors = _colors(len(groups))
    for ax, (key, label, log_y) in zip(axes, metrics):
        for (group, members), color in zip(groups.items(), colors):
            pts = [(r.get(x_key), r.get(key)) for r in members if r.get(key) is not None]
            if not pts:
                continue
            if numeric:
                pts.sort(key=lambda p: p[0])
                xs = [p[0] for p in pts]
            else:
                xs = [categories.index(str(p[0])) for p in pts]
            ax.plot(xs, [p[1] for p in pts], marker="o", markersize=4, color=color,
                    label=_short(group, 32))
        if not numeric:
            ax.set_xticks(range(len(categories)), [_short(c, 12) for c in categories],
                          rotation=30 if len(categories) > 3 else 0)
        else:
            if x_log:
                ax.set_xscale("log")
            if len(distinct) <= 8:
                from matplotlib.ticker import NullLocator

                ax.set_xticks(distinct, [f"{v:.3g}" for v in distinct],    # the swept values
                              rotation=30 if len(distinct) > 5 else 0)
                ax.xaxis.set_minor_locator(NullLocator())
        values = [float(r[key]) for r in rows if r.get(key) is not None and float(r[key]) > 0]
        if log_y and values and max(values) / min(values) > 10:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        ax.set_xlabel(x_key + (" (log scale)" if x_log else ""))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        if not handles:
            handles, labels = ax.get_legend_handles_labels()
    if len(groups) > 1 and handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(groups)),
                   fontsize="small", title=group_keys[0] if len(group_keys) == 1 else None,
                   title_fontsize="small")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"sweep over {x_key}")
    return fig


def sweep_plot(rows: Sequence[Mapping[str, Any]], x_key: str, group_keys: Sequence[str],
               metrics: Sequence[tuple[str, str, bool]], path: str | Path) -> Optional[Path]:
    """Write :func:`sweep_figure` to ``path`` (``None`` when there is nothing to draw)."""
    fig = sweep_figure(rows, x_key, group_keys, metrics)
    return None if fig is None else _save(fig, path)


__all__ = [
    "training_curves", "lr_curve", "firing_rate_bars", "rates_per_step", "rates_per_step_figure",
    "tau_curves", "spike_raster", "spike_raster_figure", "raster_rows", "event_frames",
    "event_frames_figure", "grid_shape", "sweep_plot", "sweep_figure", "log_x", "layer_rates",
]

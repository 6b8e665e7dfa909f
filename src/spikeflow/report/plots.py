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


def rates_per_step(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Firing rate of every spiking layer at every time step (first run with per-step data)."""
    for run in runs:
        rows = [r for r in (run.test or {}).get("layers") or []
                if r.get("kind") == "spiking" and r.get("firing_rate_per_step")]
        if rows:
            break
    else:
        return None
    fig = _figure(6.4, 4)
    ax = fig.subplots()
    for row, color in zip(rows, _colors(len(rows))):
        steps = row["firing_rate_per_step"]
        ax.plot(range(1, len(steps) + 1), steps, color=color, marker="o" if len(steps) < 30 else None,
                markersize=3, label=_short(row["name"]))
    ax.set_xlabel("time step t")
    _integer_x(ax)
    ax.set_ylabel("firing rate")
    ax.set_title(f"firing rate per time step ({_short(run.name, 40)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title="layer", title_fontsize="small", ncol=2 if len(rows) > 5 else 1)
    return _save(fig, path)


def tau_curves(runs: Sequence[Run], path: str | Path) -> Optional[Path]:
    """Learnt membrane time constant of every PLIF layer per epoch (one panel per run)."""
    with_tau = [r for r in runs if r.columns("tau/")]
    if not with_tau:
        return None
    cols = min(3, len(with_tau))
    rows = math.ceil(len(with_tau) / cols)
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


def spike_raster(spikes: Mapping[str, np.ndarray], path: str | Path, neurons: int = 16,
                 title: str = "spike raster of one sample") -> Optional[Path]:
    """Spike times of a few neurons per layer: ``spikes[layer]`` is ``[T, N]`` (one sample).

    Per layer the first ``neurons`` neurons that spike at least once are shown (all silent: the
    first ``neurons``), so the raster is deterministic.
    """
    layers = [(name, np.asarray(s).reshape(np.asarray(s).shape[0], -1)) for name, s in spikes.items()]
    layers = [(n, s) for n, s in layers if s.size][:4]
    if not layers:
        return None
    picks = []
    for _, s in layers:
        active = np.flatnonzero(s.any(axis=0))
        picks.append((active[:neurons] if active.size else np.arange(min(neurons, s.shape[1])),
                      "first active" if active.size else "all silent"))
    heights = [0.9 + 0.09 * len(chosen) for chosen, _ in picks]
    fig = _figure(7, 0.6 + sum(heights))
    axes = np.atleast_1d(fig.subplots(len(layers), 1, sharex=True, squeeze=False,
                                      gridspec_kw={"height_ratios": heights})).ravel()
    for ax, (name, s), (chosen, what) in zip(axes, layers, picks):
        t, k = np.nonzero(s[:, chosen])
        ax.scatter(t + 1, k, marker="|", s=40, linewidths=1.2, color="black")
        ax.set_ylim(-0.7, len(chosen) - 0.3)
        ax.set_xlim(0.5, s.shape[0] + 0.5)
        ax.set_ylabel("neuron id")
        ticks = np.unique(np.linspace(0, len(chosen) - 1, min(len(chosen), 5)).round().astype(int))
        ax.set_yticks(ticks, [str(chosen[i]) for i in ticks])
        ax.set_title(f"layer {_short(name, 30)}: {len(chosen)} of {s.shape[1]} neurons ({what}), "
                     f"layer rate {s.mean():.3f}", fontsize="medium")
    axes[-1].set_xlabel("time step t")
    _integer_x(axes[-1])
    fig.suptitle(title)
    return _save(fig, path)


def event_frames(frames: np.ndarray, path: str | Path, max_frames: int = 16,
                 title: str = "input frames of one sample") -> Optional[Path]:
    """Grid of the input frames ``[T, C, H, W]`` of one sample.

    Two channels (ON/OFF polarities) are shown as ON - OFF on a diverging map, one channel in
    grey, three as RGB; frames are evenly picked when ``T > max_frames``.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 3:
        frames = frames[:, None]
    if frames.ndim != 4 or frames.shape[0] == 0:
        return None
    T, C = frames.shape[:2]
    idx = np.unique(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int))
    cols = min(len(idx), 8)
    rows = math.ceil(len(idx) / cols)
    fig = _figure(1.6 * cols + 1.2, 1.7 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
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
    for ax in axes[len(idx):]:
        ax.set_visible(False)
    if label is not None and mappable is not None:
        fig.colorbar(mappable, ax=list(axes[:len(idx)]), shrink=0.8, label=label)
    fig.suptitle(f"{title} ({len(idx)} of {T} steps, {C} channel{'s' if C > 1 else ''})")
    return _save(fig, path)


def sweep_plot(rows: Sequence[Mapping[str, Any]], x_key: str, group_keys: Sequence[str],
               metrics: Sequence[tuple[str, str, bool]], path: str | Path) -> Optional[Path]:
    """One panel per metric ``(key, label, log_y)``: value against ``x_key``, one line per group.

    Rows lacking a metric are skipped; a categorical ``x_key`` is placed at evenly spaced ticks.
    """
    metrics = [m for m in metrics if any(r.get(m[0]) is not None for r in rows)]
    if not rows or not metrics:
        return None
    xs_all = [r.get(x_key) for r in rows]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
    categories = [] if numeric else list(dict.fromkeys(str(v) for v in xs_all))
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
        values = [float(r[key]) for r in rows if r.get(key) is not None and float(r[key]) > 0]
        if log_y and values and max(values) / min(values) > 10:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        ax.set_xlabel(x_key)
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
    return _save(fig, path)


__all__ = [
    "training_curves", "lr_curve", "firing_rate_bars", "rates_per_step", "tau_curves",
    "spike_raster", "event_frames", "sweep_plot", "layer_rates",
]

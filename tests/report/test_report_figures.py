"""Issue 17 item 15: what the report figures draw (artist data, not pixels).

Each test reproduces a defect seen in real reports: raster neurons merged into bars with
irregular ticks, a frame grid with half a row empty and ``(...) (...)`` titles, per-step firing of
the first run only, linear learning-rate axes in sweeps.
"""
import json
import math

import numpy as np
import pytest
from matplotlib.collections import EventCollection

from spikeflow.report import load_run
from spikeflow.report import plots


def _spikes():
    rng = np.random.default_rng(3)
    a = np.zeros((12, 40))
    a[:, [2, 3, 4, 9]] = rng.random((12, 4)) > 0.4        # neighbours 2, 3, 4 spike together
    a[[0, 5], 3] = 1
    b = (rng.random((12, 6)) > 0.7).astype(float)
    return {"conv": a, "fc": b, "silent": np.zeros((12, 5))}


def test_raster_has_one_row_per_neuron():
    spikes = _spikes()
    fig = plots.spike_raster_figure(spikes, neurons=16, title="raster", details=["label 1"])
    axes = fig.axes
    assert len(axes) == 3
    for ax, (name, s) in zip(axes, spikes.items()):
        chosen, _ = plots.raster_rows(s, 16)
        rows = [c for c in ax.collections if isinstance(c, EventCollection)]
        assert len(rows) == len(chosen)                   # one row (artist) per shown neuron
        for k, (row, j) in enumerate(zip(rows, chosen)):
            assert row.get_lineoffset() == k
            assert row.get_linelength() < 1               # neighbouring rows never touch
            np.testing.assert_array_equal(np.sort(row.get_positions()), np.flatnonzero(s[:, j]) + 1)
        # a tick on every row, labelled with that neuron's id (no skipped, irregular ticks)
        np.testing.assert_array_equal(ax.get_yticks(), np.arange(len(chosen)))
        assert [t.get_text() for t in ax.get_yticklabels()] == [str(j) for j in chosen]
    assert list(plots.raster_rows(spikes["conv"], 16)[0]) == [2, 3, 4, 9]
    assert plots.raster_rows(spikes["silent"], 3)[1] == "all silent"
    np.testing.assert_array_equal(axes[-1].get_xticks(), np.arange(1, 13))   # every step
    assert fig._suptitle.get_text() == "raster (label 1)"


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (4, (1, 4)), (8, (1, 8)), (10, (2, 5)),
                                      (12, (2, 6)), (13, (2, 7)), (15, (2, 8)), (16, (2, 8)),
                                      (17, (3, 6)), (30, (4, 8))])
def test_grid_shape_known_answers(n, shape):
    assert plots.grid_shape(n) == shape


def test_grid_shape_never_leaves_a_row_half_empty():
    for n in range(1, 65):
        rows, cols = plots.grid_shape(n)
        assert rows * cols >= n and rows * cols - n < rows and cols <= 8, n   # was 12 -> 2 x 8
    with pytest.raises(ValueError):
        plots.grid_shape(0)


@pytest.mark.parametrize("T, shown", [(12, 12), (40, 16)])
def test_frame_grid_has_one_axes_per_frame_and_one_parenthesis(T, shown):
    frames = np.zeros((T, 2, 6, 6))
    frames[:, 0, 1, 1] = 2
    frames[:, 1, 4, 4] = 1
    fig = plots.event_frames_figure(frames, max_frames=16, title="input frames, run",
                                    details=["label 0, predicted 5"])
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == shown and all(ax.get_visible() for ax in fig.axes)
    assert len(fig.axes) == shown + 1                    # + the colour bar; no empty cells
    rows, cols = plots.grid_shape(shown)
    assert rows * cols == shown
    title = fig._suptitle.get_text()
    assert title == f"input frames, run (label 0, predicted 5; {shown} of {T} steps, 2 channels)"
    assert title.count("(") == 1 and title.count(")") == 1 and "((" not in title


def _with_per_step(path, layers, T=5):
    path.mkdir(parents=True)
    test = {"layers": [{"name": name, "kind": "spiking", "neurons": 4, "firing_rate": 0.1, "sparsity": 0.9,
                        "firing_rate_per_step": [0.01 * (i + 1) * (k + 1) for k in range(T)]}
                       for i, name in enumerate(layers)]}
    (path / "metrics_test.json").write_text(json.dumps(test))
    return load_run(path)


def test_per_step_firing_shows_every_run(tmp_path):
    a = _with_per_step(tmp_path / "run_a", ["conv1", "conv2", "fc"])
    b = _with_per_step(tmp_path / "run_b", ["l1", "l2"])
    c = _with_per_step(tmp_path / "run_c", [])                 # no per-step data: no panel
    fig = plots.rates_per_step_figure([a, c, b])
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["run_a", "run_b"]
    assert [[ln.get_label() for ln in ax.lines] for ax in axes] == [["conv1", "conv2", "fc"], ["l1", "l2"]]
    np.testing.assert_allclose(axes[1].lines[1].get_ydata(), [0.02, 0.04, 0.06, 0.08, 0.10])
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    assert plots.rates_per_step_figure([c]) is None
    four = [_with_per_step(tmp_path / f"r{i}", ["x"]) for i in range(4)]
    assert len(plots.rates_per_step_figure(four).axes) == 4     # a 2 x 2 grid, no empty panels
    assert plots.rates_per_step_figure(four).axes[3].get_subplotspec().get_geometry()[:2] == (2, 2)


@pytest.mark.parametrize("key, values, scale", [
    ("optim.lr", [0.001, 0.002, 0.005], "log"),      # a learning rate: log even within a decade
    ("lr", [1e-4, 1e-3, 1e-2], "log"),
    ("data.options.dt_ms", [1, 10, 25], "log"),      # spans more than a decade
    ("data.T", [4, 8, 16], "linear"),
    ("optim.lr", [0.0, 0.01, 0.1], "linear"),        # zero cannot go on a log axis
    ("schedule.gamma", [-1.0, 1.0], "linear"),
])
def test_sweep_x_scale(key, values, scale):
    rows = [{key: v, "model.name": m, "acc_pct": 50 + i, "ops": 1000.0 * (i + 1)}
            for i, v in enumerate(values) for m in ("snn", "lstm")]
    fig = plots.sweep_figure(rows, key, ["model.name"], [("acc_pct", "accuracy (%)", False),
                                                        ("ops", "ops", True)])
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2
    assert {ax.get_xscale() for ax in panels} == {scale}
    assert plots.log_x(key, values) == (scale == "log")
    # ticks at exactly the swept values, labelled as given
    np.testing.assert_allclose(panels[0].get_xticks(), sorted(values))
    assert [t.get_text() for t in panels[0].get_xticklabels()] == [f"{v:.3g}" for v in sorted(values)]
    assert [len(ax.lines) for ax in panels] == [2, 2]
    assert math.isclose(panels[0].lines[0].get_xdata()[0], min(values))

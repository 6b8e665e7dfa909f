import struct

import numpy as np
import pytest
import torch

from report_fixtures import make_run, tiny_net
from spikeflow.report import load_run, sample_activity, write_report
from spikeflow.report import plots


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_report_writes_all_files(tmp_path):
    runs = [load_run(make_run(tmp_path / "run_a")), load_run(make_run(tmp_path / "run_b", tau=False, seed=1))]
    x = (torch.rand(5, 1, 2, 6, 6) > 0.5).float()
    activity = {"run_a": sample_activity(tiny_net(), x, label=2)}
    files = write_report(runs, tmp_path / "out", activity=activity, notes=["note: test"])
    names = sorted(p.name for p in files.figures)
    assert names == sorted([
        "training_curves.png", "learning_rate.png", "firing_rates.png", "firing_rates_per_step.png",
        "plif_tau.png", "00_run_a_input_frames.png", "00_run_a_raster.png",
    ])
    for fig in files.figures:
        w, h = _png_size(fig)
        assert 300 < w < 2500 and 200 < h < 2500
    md = files.markdown.read_text()
    for fig in files.figures:
        assert f"(figures/{fig.name})" in md
    assert "| run_a |" in md and "| run_b |" in md and "note: test" in md
    html = files.html.read_text()
    assert html.count("data:image/png;base64,") == len(files.figures)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    header = files.csv.read_text().splitlines()[0].split(",")
    assert header[:3] == ["run", "model", "data"] and "nasfr" in header


def test_report_without_optional_data(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n2,0.25\n")
    files = write_report([load_run(tmp_path / "r")], tmp_path / "out")
    assert [p.name for p in files.figures] == ["training_curves.png"]
    md = files.markdown.read_text()
    assert "No run has a layer with a learnable time constant" in md
    with pytest.raises(ValueError, match="at least one run"):
        write_report([], tmp_path / "x")


def test_sample_activity_shapes():
    net = tiny_net()
    x = (torch.rand(5, 1, 2, 6, 6) > 0.5).float()
    act = sample_activity(net, x, label=1)
    assert act.frames.shape == (5, 2, 6, 6) and act.label == 1
    assert {k: v.shape for k, v in act.spikes.items()} == {"2": (5, 12), "4": (5, 3)}
    with torch.no_grad():
        assert np.array_equal(act.spikes["4"], net(x)[:, 0].numpy())
    with pytest.raises(ValueError, match=r"\[T, 1, ...\]"):
        sample_activity(net, torch.zeros(5, 2, 2, 6, 6))


def test_plots_return_none_without_data(tmp_path):
    assert plots.spike_raster({}, tmp_path / "r.png") is None
    assert plots.event_frames(np.zeros((0, 1, 2, 2)), tmp_path / "e.png") is None
    assert plots.sweep_plot([], "x", [], [("a", "a", False)], tmp_path / "s.png") is None
    assert not list(tmp_path.iterdir())


def test_event_frames_polarity_and_subsampling(tmp_path):
    frames = np.zeros((40, 2, 8, 8))
    frames[:, 0, 2, 2] = 3
    path = plots.event_frames(frames, tmp_path / "e.png", max_frames=16)
    assert _png_size(path)[0] > 800

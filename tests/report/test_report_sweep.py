import csv

import pytest

from report_fixtures import make_run
from spikeflow.report import SweepError, expand, parse_set, run_sweep
from spikeflow.report.sweep import point_name, split_values


def test_parse_set_and_split():
    axis = parse_set("model.options.sizes=[1,2],[3],4")
    assert axis.key == "model.options.sizes"
    assert axis.raw == ("[1,2]", "[3]", "4") and axis.values == ([1, 2], [3], 4)
    assert parse_set("data.window_ms=1,5,10").values == (1, 5, 10)
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    for bad in ("nokey", "=1", "a.b=1,,2", "a b=1", "a=[1,2"):
        with pytest.raises(SweepError):
            parse_set(bad)


def test_expand_grid_and_zip():
    a, b = parse_set("x=1,2"), parse_set("y=a,b,c")
    grid = expand([a, b])
    pairs = [[(ax.key, ax.values[i]) for ax, i in p] for p in grid]
    assert pairs[:2] == [[("x", 1), ("y", "a")], [("x", 1), ("y", "b")]]
    assert len(grid) == 6
    assert len(expand([a, parse_set("z=3,4")], mode="zip")) == 2
    with pytest.raises(SweepError, match="same number"):
        expand([a, b], mode="zip")
    assert point_name(grid[0]) == "x=1,y=a"


def test_run_sweep_table_plot_failure_and_resume(tmp_path):
    calls = []

    def runner(overrides, run_dir):
        calls.append(overrides)
        values = dict(o.split("=", 1) for o in overrides)
        if values["model.name"] == "lstm" and values["data.window_ms"] == "10":
            raise RuntimeError("data not found")
        make_run(run_dir, epochs=2, tau=False, seed=int(values["data.window_ms"]) % 3)

    axes = [parse_set("model.name=snn,lstm"), parse_set("data.window_ms=1,10")]
    result = run_sweep(axes, ["train.epochs=2"], tmp_path, runner, echo=lambda s: None)
    assert calls[0] == ["train.epochs=2", "model.name=snn", "data.window_ms=1"]
    assert result.failed == ["name=lstm,window_ms=10"]
    assert result.plot is not None and result.plot.is_file()
    rows = list(csv.DictReader(result.table_csv.open()))
    assert [r["model.name"] for r in rows] == ["snn", "snn", "lstm", "lstm"]
    assert rows[3]["status"].startswith("failed: RuntimeError: data not found")
    assert float(rows[0]["ops"]) == pytest.approx(float(rows[0]["ac"]) + float(rows[0]["mac"]))
    assert "| snn | 1 |" in result.table_md.read_text()
    calls.clear()
    again = run_sweep(axes, ["train.epochs=2"], tmp_path, runner, echo=lambda s: None)
    assert len(calls) == 1                       # only the failed point runs again
    assert [r["status"] for r in again.rows][:3] == ["done", "done", "done"]

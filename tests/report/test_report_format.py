"""Issue 17 item 15: one number format (3 significant figures) in reports, sweeps and
reproduction tables; the comparison footnote explains only the columns that are there."""
import json

import numpy as np
import pytest

from spikeflow.report import load_run, parse_set, run_sweep, write_report
from spikeflow.report.reproduce import render_markdown
from spikeflow.report.tables import format_number, format_percent, format_value
from spikeflow.report.writer import column_notes
from spikeflow.utils import numfmt


def test_format_number_three_significant_figures():
    cases = {
        0.936: "0.936",
        0.9996: "1.00",        # was "1": the report said 1 uJ where the sweep said 0.936
        1.0: "1.00",
        0.05: "0.0500",
        0.1559: "0.156",       # NASFR was printed with 4 decimals ("0.1559")
        3.75: "3.75",
        100.0: "100",
        999.96: "1.00k",       # rounding crosses into the next suffix
        2950.4: "2.95k",
        79000.0: "79.0k",      # was "79k"
        35739.2: "35.7k",      # was "35,739"
        999999.0: "1.00M",
        1234567: "1.23M",
        2.5e9: "2.50G",
        -0.12: "-0.120",
        1e-5: "1.00e-05",
        0.0: "0",
    }
    assert {v: format_number(v) for v in cases} == cases
    # integers below 10,000 are counts: printed in full; larger ones take the suffix
    assert [format_number(v) for v in (0, 7, 7808, np.int64(7808), 15756)] == \
        ["0", "7", "7,808", "7,808", "15.8k"]
    assert [format_number(v) for v in (None, float("nan"), float("inf"))] == ["–"] * 3
    assert format_number(1.5e15) == "1.50e+15" and format_number(0.5, sig=2) == "0.50"
    assert format_number is numfmt.format_number      # one helper, importable below report
    # every numeric column kind goes through the same helper
    assert {format_value(0.9996, k) for k in ("number", "float", "rate", "si")} == {"1.00"}
    assert format_percent(0.91234) == "91.23" and format_percent(None) == "–"


def _fake_run(path, energy_pj, nasfr=0.15594):
    path.mkdir(parents=True)
    (path / "metrics_test.json").write_text(json.dumps(
        {"accuracy": 0.5, "nasfr": nasfr, "energy_pj": energy_pj, "params": 104010,
         "synops": {"ac": 7808.0, "mac": 79000.0}}))
    return path


def _cell(markdown: str, header: str, row: int = 0) -> str:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    return [c.strip() for c in lines[2 + row].strip("|").split("|")][cols.index(header)]


def test_report_and_sweep_print_the_same_numbers(tmp_path):
    files = write_report([load_run(_fake_run(tmp_path / "r", 999_600.0))], tmp_path / "out")
    md = files.markdown.read_text()
    assert _cell(md, "energy µJ/sample") == "1.00"
    assert _cell(md, "NASFR") == "0.156" and _cell(md, "params") == "104k"
    assert _cell(md, "ACs/sample") == "7.81k" and _cell(md, "MACs/sample") == "79.0k"

    def runner(overrides, run_dir):
        energy = {"data.T=4": 936_000.0, "data.T=8": 999_600.0}[overrides[-1]]
        _fake_run(run_dir, energy, nasfr=0.04263)

    result = run_sweep([parse_set("data.T=4,8")], [], tmp_path / "sweep", runner, echo=lambda s: None)
    sweep_md = result.table_md.read_text()
    assert [_cell(sweep_md, "energy µJ/sample", i) for i in (0, 1)] == ["0.936", "1.00"]
    for i, name in enumerate(("T=4", "T=8")):
        report_md = write_report([load_run(tmp_path / "sweep" / "runs" / name)],
                                 tmp_path / f"rep{i}").markdown.read_text()
        for header in ("energy µJ/sample", "NASFR", "ACs/sample", "params"):
            assert _cell(sweep_md, header, i) == _cell(report_md, header), header


def _history_run(path, acc_b):
    path.mkdir(parents=True)
    rows = [{"epoch": e, "test_acc": 0.5 + 0.1 * e, "acc_A": 0.5 + 0.1 * e, "acc_B": acc_b} for e in (1, 2)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_run(path)


def test_footnote_only_for_present_columns(tmp_path):
    assert "acc-B" not in column_notes(["run", "acc_A", "nasfr"])
    assert column_notes(["run", "model"]) == ""
    assert column_notes(["acc_B"]) == "acc-B: test accuracy at the best validation epoch."
    # no acc_B values: the column is dropped, and so is its note (the note used to stay)
    md = write_report([_history_run(tmp_path / "a", None)], tmp_path / "o1").markdown.read_text()
    assert "acc-B" not in md and "acc-A: best test accuracy over epochs." in md
    assert "NASFR" not in md and "energy" not in md
    md = write_report([_history_run(tmp_path / "b", 0.6)], tmp_path / "o2").markdown.read_text()
    assert "| acc-B % |" in md and "acc-B: test accuracy at the best validation epoch" in md


def test_reproduce_table_formats():
    rows = [{"experiment": "x", "metric": "acc_A", "paper": 99.72, "run": 99.5, "delta": -0.22,
             "params": 104010, "nasfr": 0.15594, "paper_nasfr": None, "seconds": 37.21, "status": "ok"},
            {"experiment": "y", "metric": "test_loss", "paper": 0.05, "run": 0.04321, "delta": -0.00679,
             "params": 650, "nasfr": None, "paper_nasfr": 0.2, "seconds": 1234.5, "status": "ok"}]
    md = render_markdown(rows)
    assert "| x | acc_A | 99.72 | 99.50 | -0.22 | 104k | 0.156 | – | 37.2 | ok |" in md
    assert "| y | test_loss | 0.0500 | 0.0432 | -0.00679 | 650 | – | 0.200 | 1.23k | ok |" in md


@pytest.mark.parametrize("value", [0.5, 12.0, 1234.0])
def test_positive_delta_keeps_its_sign(value):
    md = render_markdown([{"experiment": "z", "metric": "acc_B", "paper": 50.0, "run": 50.0 + value,
                           "delta": value, "status": "ok"}])
    assert f"| +{value:.2f} |" in md

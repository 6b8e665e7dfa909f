import pytest

from report_fixtures import make_run
from spikeflow.report import RunFolderError, comparison_row, load_run, markdown_table
from spikeflow.report.tables import format_number, format_value


def test_load_run_reads_every_file(tmp_path):
    run = load_run(make_run(tmp_path / "a", epochs=3))
    assert run.name == "a" and run.get("model.name") == "tiny" and run.get("optim.lr") == 0.01
    assert len(run.history) == 3 and run.series("test_acc")[0] == [1.0, 2.0, 3.0]
    assert run.columns("tau/") == ["tau/2", "tau/4"]
    assert run.test["samples"] == 6
    assert run.last("acc_B") is None


def test_csv_fallback_and_errors(tmp_path):
    (tmp_path / "csvrun").mkdir()
    (tmp_path / "csvrun" / "metrics.csv").write_text("epoch,test_acc,lr\n1,0.5,0.1\n2,0.75,\n")
    run = load_run(tmp_path / "csvrun")
    assert run.series("test_acc") == ([1.0, 2.0], [0.5, 0.75])
    assert run.series("lr") == ([1.0], [0.1])
    with pytest.raises(RunFolderError, match="no such run folder"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="not a run folder"):
        load_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.jsonl").write_text('{"epoch": 1}\n{oops\n')
    with pytest.raises(RunFolderError, match="line 2"):
        load_run(bad)
    (bad / "metrics.jsonl").unlink()
    (bad / "config.yaml").write_text("- a list\n")
    with pytest.raises(RunFolderError, match="config.yaml"):
        load_run(bad)


def test_comparison_row_values(tmp_path):
    run = load_run(make_run(tmp_path / "a"))
    row = comparison_row(run)
    assert row["acc_A"] == pytest.approx(1 - 0.6 / 4)
    assert row["nasfr"] == pytest.approx(run.test["nasfr"])
    assert row["energy_uj"] == pytest.approx(run.test["energy_pj"] / 1e6)
    assert row["params"] == run.test["params"] and row["epochs"] == 4 and row["T"] == 5


def test_formatting():
    assert [format_number(v) for v in (0, 3.75, 2950.4, 12345, 1234567, 2.5e9)] == \
        ["0", "3.75", "2.95k", "12.3k", "1.23M", "2.50G"]
    assert format_value(0.91234, "percent") == "91.23"
    assert format_value(None, "si") == "–"
    assert markdown_table(["a|b", "c"], [[1, "x|y"]]) == "| a\\|b | c |\n|---|---|\n| 1 | x\\|y |\n"

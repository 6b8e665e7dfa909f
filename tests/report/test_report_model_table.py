"""The "Model" table of a run in reports, from the run's model_summary.json."""
import json

import pytest

from report_fixtures import batches, make_run, tiny_net
from spikeflow.metrics import summary
from spikeflow.report import load_run, write_report
from spikeflow.report.model_table import SUMMARY_FILE, load_model_summary
from spikeflow.report.tables import markdown_table


def test_report_shows_the_model_table(tmp_path):
    run_a = make_run(tmp_path / "run_a")
    s = summary(tiny_net(), batches()[0][0], name="tiny")
    (run_a / SUMMARY_FILE).write_text(json.dumps(s.to_dict()))
    make_run(tmp_path / "run_b", seed=1)
    files = write_report([load_run(run_a), load_run(tmp_path / "run_b")], tmp_path / "out")
    md = files.markdown.read_text()
    assert md.count("### Model\n") == 1
    headers, rows = s.table()
    assert markdown_table(headers, rows) in md
    assert f"per sample over T=5: {rows[-1][7]} ACs" in md
    assert "<th>output shape</th>" in files.html.read_text()
    assert load_model_summary(run_a) == s and load_model_summary(tmp_path / "run_b") is None
    (run_a / SUMMARY_FILE).write_text("{}")
    with pytest.raises(ValueError, match=SUMMARY_FILE):
        load_model_summary(run_a)

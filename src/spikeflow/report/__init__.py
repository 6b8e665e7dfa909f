"""Reports from run folders: comparison tables, training/firing/tau figures, sweeps.

    >>> from spikeflow.report import load_run, write_report          # doctest: +SKIP
    >>> write_report([load_run("runs/a"), load_run("runs/b")], "reports/ab")  # doctest: +SKIP

The CLI front-ends are ``spikeflow report RUN_DIR [RUN_DIR ...]`` and
``spikeflow sweep CONFIG --set key=v1,v2``. Figures are drawn with matplotlib's Agg canvas.
"""
from spikeflow.report.activity import SampleActivity, sample_activity
from spikeflow.report.runs import Run, RunFolderError, load_run, read_history
from spikeflow.report.sweep import Axis, SweepError, SweepResult, expand, parse_set, run_sweep
from spikeflow.report.tables import comparison_row, comparison_table, markdown_table
from spikeflow.report.writer import ReportFiles, write_report

__all__ = [
    "Run", "RunFolderError", "load_run", "read_history",
    "SampleActivity", "sample_activity",
    "write_report", "ReportFiles",
    "comparison_row", "comparison_table", "markdown_table",
    "Axis", "SweepError", "SweepResult", "parse_set", "expand", "run_sweep",
]

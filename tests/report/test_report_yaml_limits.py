"""Every YAML that reports, reproductions and sweep configs read goes through the bounded loader (issue 17,
item 3): a small alias bomb fails fast with the module's own error type, naming the file."""
import time

import pytest

from spikeflow.commands.sweep import mini_config
from spikeflow.report import RunFolderError, load_run
from spikeflow.report.reproduce import PaperConfigError, find_experiments
from spikeflow.utils.safe_yaml import YAMLLimitError

# 9 levels of 10 aliases each: 10**9 nodes once expanded, under 1 kB of text
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10))


def _fails_fast(fn, error, match):
    start = time.perf_counter()
    with pytest.raises(error, match=match):
        fn()
    assert time.perf_counter() - start < 2.0


def test_run_folder_config_bomb(tmp_path):
    (tmp_path / "config.yaml").write_text(BOMB)
    _fails_fast(lambda: load_run(tmp_path), RunFolderError, "config.yaml: YAML document expands")


def test_paper_config_bomb(tmp_path):
    (tmp_path / "plif").mkdir()
    (tmp_path / "plif" / "row.yaml").write_text("paper: {value: 1}\n" + BOMB)
    _fails_fast(lambda: find_experiments("plif", root=tmp_path), PaperConfigError, "row.yaml")


def test_mini_config_bomb(tmp_path):
    path = tmp_path / "row.yaml"
    path.write_text(BOMB)
    _fails_fast(lambda: mini_config(str(path)), YAMLLimitError, "row.yaml")

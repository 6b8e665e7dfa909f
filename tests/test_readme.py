"""The README's Python example runs as printed, and its CLI examples name real sub-commands."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from spikeflow.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_make_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "train"], ["make", "test"]]


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has a Python example"
    scope: dict = {}
    torch.manual_seed(0)
    exec(compile(blocks[0], str(README), "exec"), scope)  # noqa: S102 - our own README
    assert scope["out"].shape == (8, 4, 10)
    assert tuple(scope["frames"].shape) == (2, 2, 2, 10)
    assert len(scope["digits"]) == 359
    assert sum(p.numel() for p in scope["model"].parameters()) == 2_322_891
    assert tuple(scope["xb"].shape) == (8, 4, 2, 34, 34) and tuple(scope["yb"].shape) == (4,)


def test_readme_cli_examples_name_real_subcommands():
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
    used = re.findall(r"^spikeflow (\w+)", README.read_text(), re.M)
    assert used and set(used) <= commands

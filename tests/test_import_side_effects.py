"""Importing spikeflow and every sub-package changes nothing in the process: no environment
variable, no thread count, no fork hook, no thread, no file (in the package or the cache folder).
Process tuning is the explicit ``spikeflow.runtime.configure`` (tests/test_runtime.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import spikeflow

PACKAGE = Path(spikeflow.__file__).resolve().parent
SUBPACKAGES = ("neurons", "layers", "models", "data", "train", "metrics", "events", "report", "ops",
               "cli", "functional", "surrogate", "registry", "utils", "runtime", "commands")

CHILD = """
import importlib, json, os, pkgutil, sys, threading
env = dict(os.environ)
fork_hooks = []
_register = os.register_at_fork
def _spy(**hooks):
    fork_hooks.append(sys._getframe(1).f_code.co_filename)
    return _register(**hooks)
os.register_at_fork = _spy
import torch
threads = torch.get_num_threads()
import spikeflow
modules = ["spikeflow." + name for name in SUBPACKAGES]
for name in modules:
    importlib.import_module(name)
import spikeflow.commands
for info in pkgutil.iter_modules(spikeflow.commands.__path__):
    importlib.import_module("spikeflow.commands." + info.name)
for name in ("neurons", "layers", "models"):  # lazy attribute access of the package
    getattr(spikeflow, name)
print(json.dumps({
    "file": spikeflow.__file__,
    "env": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
    "threads": [threads, torch.get_num_threads()],
    "fork_hooks": [f for f in fork_hooks if f.startswith(os.path.dirname(spikeflow.__file__))],
    "spikeflow_threads": [t.name for t in threading.enumerate() if "spikeflow" in t.name],
}))
"""


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(folder.rglob("*"))}


def test_importing_everything_changes_nothing(tmp_path):
    # a private copy of the package, as a fresh install: nothing else writes there meanwhile
    copy = tmp_path / "site" / "spikeflow"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    work = tmp_path / "cwd"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "NUMBA_CACHE_DIR",
                        "SPIKEFLOW_CACHE_DIR")}
    env.update(PYTHONPATH=str(copy.parent), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               MPLCONFIGDIR=str(tmp_path / "mpl"), PYTHONDONTWRITEBYTECODE="1")
    before = _snapshot(copy)
    code = CHILD.replace("SUBPACKAGES", repr(SUBPACKAGES))
    out = subprocess.run([sys.executable, "-B", "-c", code], env=env, cwd=work,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert Path(result["file"]).resolve().parent == copy.resolve()  # the copy was imported
    assert result["env"] == []  # no environment variable set or changed
    assert result["threads"][0] == result["threads"][1]
    assert result["fork_hooks"] == [] and result["spikeflow_threads"] == []
    assert _snapshot(copy) == before  # no file written, deleted or touched in the package
    assert not (tmp_path / "xdg" / "spikeflow").exists()  # nor in the user cache folder
    assert list(work.iterdir()) == []

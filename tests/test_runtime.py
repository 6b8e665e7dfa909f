"""spikeflow.runtime.configure: the one explicit call that tunes the process (OpenMP spin-wait,
threads, numba cache folder); the kernel thread pool of a forked child."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeflow import runtime
from spikeflow import _numba_cache
from spikeflow.ops._cpu import _runtime

OMP_VARS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")


@pytest.fixture
def rt(monkeypatch):
    """``runtime`` with its state restored afterwards, no OpenMP variables set, torch threads
    restored."""
    for name in ("_configured", "_omp_spin", "_omp_applied", "_omp_note", "_threads",
                 "_numba_cache", "_numba_cache_set", "_spin_set_by_us"):
        monkeypatch.setattr(runtime, name, getattr(runtime, name))
    for name in OMP_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_numba_cache, "_roots", set())  # no kernels loaded yet
    threads = torch.get_num_threads()
    yield runtime
    torch.set_num_threads(threads)


def _without_torch(monkeypatch):
    """As if torch were not imported yet (configure only looks at sys.modules)."""
    monkeypatch.delitem(sys.modules, "torch")


def test_before_torch_sets_a_short_spin(rt, monkeypatch):
    _without_torch(monkeypatch)
    s = rt.configure()
    assert os.environ["GOMP_SPINCOUNT"] == str(rt.SPIN_COUNT) == "30000"
    assert s.configured and s.omp_spin == "short" and s.omp_spin_applied
    assert s.gomp_spincount == "30000" and s.threads is None
    assert rt.settings() == s
    s = rt.configure(omp_spin=5000)  # a second call may change what it set itself
    assert os.environ["GOMP_SPINCOUNT"] == "5000" and s.omp_spin_applied


@pytest.mark.parametrize("name, value", [("GOMP_SPINCOUNT", "123"), ("OMP_WAIT_POLICY", "active")])
def test_user_settings_are_never_overridden(rt, monkeypatch, name, value):
    _without_torch(monkeypatch)
    monkeypatch.setenv(name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = rt.configure()
    assert os.environ.get("GOMP_SPINCOUNT") == (value if name == "GOMP_SPINCOUNT" else None)
    assert not s.omp_spin_applied and f"{name}={value}" in s.omp_spin_note


def test_after_torch_warns_and_sets_nothing(rt):
    assert "torch" in sys.modules
    with pytest.warns(RuntimeWarning, match="before `import torch`.*GOMP_SPINCOUNT=30000"):
        s = rt.configure()
    assert "GOMP_SPINCOUNT" not in os.environ
    assert s.configured and not s.omp_spin_applied and "torch was imported" in s.omp_spin_note


def test_after_torch_no_warning_when_nothing_differs(rt, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rt.configure(omp_spin="default").omp_spin_applied  # nothing requested
        monkeypatch.setenv("GOMP_SPINCOUNT", "30000")  # e.g. exported by the user
        assert rt.configure().omp_spin_applied


def test_threads(rt):
    s = rt.configure(threads=2, omp_spin="default")
    assert torch.get_num_threads() == 2 and s.threads == 2
    s = rt.configure(omp_spin="default")  # None: leaves the count alone
    assert torch.get_num_threads() == 2 and s.threads is None


@pytest.mark.parametrize("kwargs, match", [
    ({"threads": 0}, "threads must be an int >= 1"), ({"threads": True}, "threads must be"),
    ({"threads": 1.5}, "threads must be"), ({"omp_spin": "fast"}, "omp_spin must be"),
    ({"omp_spin": -1}, "omp_spin must be")])
def test_bad_arguments_change_nothing(rt, kwargs, match):
    before = rt.settings()
    with pytest.raises(ValueError, match=match):
        rt.configure(**kwargs)
    assert rt.settings() == before and "GOMP_SPINCOUNT" not in os.environ


def test_numba_cache_root(rt, monkeypatch, tmp_path):
    for name in ("NUMBA_CACHE_DIR", "SPIKEFLOW_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rt.settings().numba_cache == tmp_path / "home" / ".cache" / "spikeflow"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert rt.default_numba_cache() == tmp_path / "xdg" / "spikeflow"
    monkeypatch.setenv("SPIKEFLOW_CACHE_DIR", str(tmp_path / "sf"))
    assert rt.default_numba_cache() == tmp_path / "sf"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))  # the user's numba setting wins
    assert rt.default_numba_cache() == tmp_path / "nb" / "spikeflow"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (torch is imported)
        assert rt.configure(numba_cache=tmp_path / "mine").numba_cache == tmp_path / "mine"
        assert rt.configure(numba_cache=None).numba_cache is None
        assert rt.configure(numba_cache=rt.DEFAULT).numba_cache == tmp_path / "nb" / "spikeflow"
    assert not any((tmp_path / d).exists() for d in ("home", "xdg", "sf", "nb", "mine"))


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return env


def test_fresh_process_before_and_after_configure(tmp_path):
    code = ("import json, os, sys\n"
            "import spikeflow.runtime as rt\n"
            "before = rt.settings()\n"
            "assert 'torch' not in sys.modules and 'GOMP_SPINCOUNT' not in os.environ\n"
            "after = rt.configure(threads=1)\n"
            "import torch\n"
            "print(json.dumps([before.configured, after.configured, after.omp_spin_applied,\n"
            "                  os.environ.get('GOMP_SPINCOUNT'), torch.get_num_threads()]))\n")
    out = subprocess.run([sys.executable, "-B", "-c", code], env=_clean_env(tmp_path),
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == [False, True, True, "30000", 1]


def test_cli_configures_before_torch(tmp_path):
    code = ("import os, sys\n"
            "from spikeflow.cli import main\n"
            "code = main(['data', 'list', '--names-only'])\n"
            "import spikeflow.runtime as rt\n"
            "s = rt.settings()\n"
            "print(code, s.configured, s.omp_spin_applied, os.environ.get('GOMP_SPINCOUNT'))\n")
    out = subprocess.run([sys.executable, "-B", "-c", code], env=_clean_env(tmp_path),
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-4:] == ["0", "True", "True", "30000"]
    assert "RuntimeWarning" not in out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_makes_its_own_kernel_pool():
    """A child forked after the parent used the pool must not submit to the parent's (threadless)
    pool: it would wait forever. No at-fork hook: the pool remembers the pid that made it."""
    from spikeflow.ops._cpu.sparse_linear import count_rows

    x = (torch.rand(4096, 64, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    expected = (x != 0).sum(1).numpy()

    def slow_kernel(b0: int, b1: int, names: list) -> None:
        names.append(threading.current_thread().name)
        time.sleep(0.01)  # every thread gets chunks

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        counts, _ = count_rows(x)  # compiles, and uses the pool (128 blocks, 262,144 elements)
        assert np.array_equal(counts, expected)
        parent_pool = _runtime._pool
        assert parent_pool is not None and _runtime._pool_pid == os.getpid()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report on the pipe, never return into pytest
            try:
                os.close(r)
                torch.set_num_threads(2)
                counts, _ = count_rows(x)
                names: list = []
                _runtime.run_blocks(slow_kernel, 8, 1 << 20, names)
                ok = (np.array_equal(counts, expected) and _runtime._pool is not parent_pool
                      and _runtime._pool_pid == os.getpid()
                      and any(n.startswith("spikeflow-kernel") for n in names))
                os.write(w, b"ok" if ok else f"bad {names}".encode())
            except BaseException as err:  # noqa: BLE001 - reported to the parent
                os.write(w, repr(err).encode()[:500])
            finally:
                os._exit(0)
        os.close(w)
        deadline = time.monotonic() + 120
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung in the kernel thread pool")
            time.sleep(0.02)
        message = os.read(r, 1000).decode()
        os.close(r)
    finally:
        torch.set_num_threads(threads)
    assert message == "ok"
    assert _runtime._pool is parent_pool  # the parent keeps its pool

"""numba caches spikeflow's kernels in a user cache folder named after the kernels' sources, never
in the package (``spikeflow/_numba_cache.py``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import spikeflow
from spikeflow import runtime
from spikeflow import _numba_cache as nc
from spikeflow.ops._cpu import sparse_linear

PACKAGE = Path(spikeflow.__file__).resolve().parent


@pytest.fixture
def root(monkeypatch, tmp_path):
    """Kernels defined in this test cache under ``tmp_path / "cache"`` (as configure would set)."""
    monkeypatch.setattr(runtime, "_numba_cache", tmp_path / "cache")
    monkeypatch.setattr(runtime, "_numba_cache_set", True)
    monkeypatch.setattr(nc, "_roots", set())  # what this test's locators record
    return tmp_path / "cache"


def _locator_class():
    nc.ensure_numba_cache()
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    first = impl._locator_classes[0]
    assert first.__name__ == "SpikeflowCacheLocator"
    return first


def test_digest_covers_the_inlined_sources():
    names = {p.name for p in nc._source_files()}
    assert {"_blocks.py", "codes.py", "lif.py", "sparse_linear.py"} <= names
    assert all(p.is_file() for p in nc._source_files())
    digest = nc.inlined_sources_digest()
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_a_source_change_makes_a_new_folder(monkeypatch, tmp_path):
    kernels = tmp_path / "_cpu"
    kernels.mkdir()
    (kernels / "_blocks.py").write_text("ONE = 1\n")
    (tmp_path / "codes.py").write_text("SIGMOID = 0\n")
    monkeypatch.setattr(nc, "SOURCES", (kernels, tmp_path / "codes.py"))
    nc.inlined_sources_digest.cache_clear()
    try:
        first = nc.cache_folder(tmp_path / "root")
        nc.inlined_sources_digest.cache_clear()
        assert nc.cache_folder(tmp_path / "root") == first  # same sources, same folder
        (tmp_path / "codes.py").write_text("SIGMOID = 1\n")  # as after an edit of ops/codes.py
        nc.inlined_sources_digest.cache_clear()
        second = nc.cache_folder(tmp_path / "root")
        (kernels / "_drivers.py").write_text("")  # a new shared module counts too
        nc.inlined_sources_digest.cache_clear()
        third = nc.cache_folder(tmp_path / "root")
    finally:
        nc.inlined_sources_digest.cache_clear()
    assert len({first, second, third}) == 3
    assert first.parent == tmp_path / "root"
    assert first.name.startswith(f"numba-{spikeflow.__version__}-")
    assert not (tmp_path / "root").exists()  # naming a folder creates nothing


def test_locator_places_only_spikeflow_kernels(root):
    locator_cls = _locator_class()
    kernel = sparse_linear._count.py_func
    locator = locator_cls.from_function(kernel, sparse_linear.__file__)
    folder = nc.cache_folder(root)
    path = Path(locator.get_cache_path())
    assert path.parent == folder and path.name.startswith("_cpu_")
    assert not root.exists()  # created only when numba saves a kernel
    assert root in nc.roots_in_use()

    def user_function():  # not spikeflow's: numba's own locators decide
        return 1

    assert locator_cls.from_function(user_function, __file__) is None


def test_unwritable_or_no_root_falls_back_to_numba(monkeypatch, tmp_path, root):
    locator_cls = _locator_class()
    kernel = sparse_linear._count.py_func
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(runtime, "_numba_cache", blocker / "cache")  # cannot be created
    assert locator_cls.from_function(kernel, sparse_linear.__file__) is None
    assert nc.ensure_numba_cache() is None
    monkeypatch.setattr(runtime, "_numba_cache", None)  # configure(numba_cache=None)
    assert locator_cls.from_function(kernel, sparse_linear.__file__) is None
    assert nc.cache_folder() is None and nc.ensure_numba_cache() is None


def _numba_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_a_kernel_run_caches_in_the_user_folder_not_the_package(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "SPIKEFLOW_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    before = _numba_files(PACKAGE)
    code = ("import torch\n"
            "from spikeflow import _numba_cache\n"
            "from spikeflow.ops._cpu.sparse_linear import count_rows\n"
            "counts, binary = count_rows(torch.eye(3))\n"
            "assert counts.tolist() == [1, 1, 1] and binary\n"
            "print(_numba_cache.cache_folder())\n")
    out = subprocess.run([sys.executable, "-B", "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.split()[-1])
    assert folder.parent == tmp_path / "xdg" / "spikeflow"
    cached = _numba_files(folder)
    assert {p.name.split("-")[0] for p in cached} == {"sparse_linear._count"}
    assert {p.suffix for p in cached} == {".nbi", ".nbc"}
    new = _numba_files(PACKAGE) - before  # (other kernels may be compiled meanwhile)
    assert not [p for p in new if p.name.startswith("sparse_linear._count")]  # none in the package

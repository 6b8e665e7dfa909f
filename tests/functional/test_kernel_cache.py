"""Cached numba kernels are dropped when a source they inline changes."""
from pathlib import Path

from spikeflow.ops._cpu import _cache


def _fill(cache: Path) -> list[Path]:
    files = [cache / "lif._backward-1.py311.nbi", cache / "lif._backward-1.py311.1.nbc"]
    for f in files:
        f.write_bytes(b"x")
    return files


def test_stale_caches_are_dropped_once_per_change(tmp_path):
    files = _fill(tmp_path)
    keep = tmp_path / "other.txt"
    keep.write_text("not a numba cache")
    assert _cache.drop_stale_caches(tmp_path) is True  # no stamp yet: stale
    assert not any(f.exists() for f in files) and keep.exists()
    assert (tmp_path / _cache.STAMP).read_text().strip() == _cache.inlined_sources_digest()
    files = _fill(tmp_path)
    assert _cache.drop_stale_caches(tmp_path) is False  # same sources: caches kept
    assert all(f.exists() for f in files)
    (tmp_path / _cache.STAMP).write_text("0" * 64)  # as after an edit of _blocks.py
    assert _cache.drop_stale_caches(tmp_path) is True
    assert not any(f.exists() for f in files)
    assert not list(tmp_path.glob("*.tmp"))


def test_digest_covers_the_inlined_sources():
    names = {p.name for p in _cache.INLINED}
    assert names == {"_blocks.py", "surrogate.py"} and all(p.is_file() for p in _cache.INLINED)
    assert len(_cache.inlined_sources_digest()) == 64


def test_unwritable_cache_dir_is_left_alone(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _cache.drop_stale_caches(blocker / "__pycache__") is False

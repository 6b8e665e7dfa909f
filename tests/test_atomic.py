"""spikeflow.utils.atomic: all-or-nothing writes, permissions, cleanup on error, folders, fsync."""
import os

import pytest

from spikeflow.utils import atomic
from spikeflow.utils.atomic import atomic_open, atomic_path, atomic_write_bytes, atomic_write_text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _siblings(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_and_text_create_the_folder_with_plain_permissions(tmp_path):
    path = tmp_path / "a" / "b" / "f.bin"
    assert atomic_write_bytes(path, b"\x00\x01") == path
    assert path.read_bytes() == b"\x00\x01"
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()
    text = tmp_path / "t.txt"
    atomic_write_text(text, "é\nline\r\n")
    assert text.read_bytes() == "é\nline\r\n".encode("utf-8")  # no newline translation
    atomic_write_text(text, "new")  # replaces
    assert text.read_text() == "new"
    assert _siblings(tmp_path) == ["a", "t.txt"]  # no temporary file left


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_error_inside_leaves_the_old_file_and_no_temp(tmp_path, exc):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(exc):
        with atomic_open(path, "w") as fh:
            fh.write("partial")
            raise exc("stop")
    assert path.read_text() == "old"
    assert _siblings(tmp_path) == ["f.txt"]


def test_atomic_open_text_and_mode_check(tmp_path):
    with atomic_open(tmp_path / "x.txt", "w") as fh:
        fh.write("ü")
    assert (tmp_path / "x.txt").read_bytes() == "ü".encode("utf-8")
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic_open(tmp_path / "y", "a"):
            pass


def test_atomic_path_file_by_name(tmp_path):
    path = tmp_path / "f.dat"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and not tmp.exists() and tmp.name.startswith(".f.dat.tmp-")
        tmp.write_bytes(b"abc")
        assert not path.exists()  # not visible before the end of the block
    assert path.read_bytes() == b"abc"
    assert _siblings(tmp_path) == ["f.dat"]


def test_atomic_path_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "f"):
            pass
    assert _siblings(tmp_path) == []


def test_atomic_path_folder(tmp_path):
    out = tmp_path / "out"
    with atomic_path(out) as tmp:
        (tmp / "sub").mkdir(parents=True)
        (tmp / "sub" / "x").write_text("1")
    assert (out / "sub" / "x").read_text() == "1"
    with pytest.raises(FileExistsError, match="out exists"):  # a non-empty folder in the way
        with atomic_path(out) as tmp:
            tmp.mkdir()
            (tmp / "y").write_text("2")
    assert _siblings(out) == ["sub"] and _siblings(tmp_path) == ["out"]
    with pytest.raises(ValueError):  # an error while filling the folder removes it
        with atomic_path(tmp_path / "other") as tmp:
            (tmp / "deep").mkdir(parents=True)
            raise ValueError("stop")
    assert _siblings(tmp_path) == ["out"]


def test_fsync_on_by_default_off_on_request(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    atomic_write_bytes(tmp_path / "a", b"1")
    assert len(calls) == 2  # the file, then its folder
    calls.clear()
    atomic_write_bytes(tmp_path / "b", b"1", fsync=False)
    with atomic_path(tmp_path / "c", fsync=False) as tmp:
        tmp.write_bytes(b"1")
    assert calls == []
    with atomic_path(tmp_path / "d") as tmp:
        tmp.write_bytes(b"1")
    assert len(calls) == 2

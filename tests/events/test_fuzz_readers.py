"""Seeded mutation fuzzing of every file reader (issue 17): bit flips, truncation, insertion,
deletion, byte overwrites with boundary values and header edits of a small valid file.

Every outcome must be a correct read or the reader's documented error type, with the traced peak
memory bounded (a forged size must never be allocated):

* a successful read returns valid data (events: ``EVENT_DTYPE``, ``t >= 0`` sorted, ``p`` in
  {0, 1}, ``x, y >= 0``; labels/images in range); where the mutation left the bytes unchanged, or
  touched only header comments, it equals the original;
* for N-MNIST, AEDAT 2.0 and AEDAT 3.1 a successful read equals an independent per-record Python
  decoding of the mutated bytes (and that decoding fails exactly when the reader fails, for
  mutations that keep the header intact);
* the frame cache serves a mutated entry only when its content is unchanged (checksummed).

Deeper local runs: ``SPIKEFLOW_FUZZ_N=3000 SPIKEFLOW_FUZZ_SEED=7 pytest tests/events/test_fuzz_readers.py``
(mutations per reader; an offset added to every seed). The defaults keep each reader at a few
seconds on two cores.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from spikeflow.data import frame_cache as fc
from spikeflow.data.cifar10 import read_batch
from spikeflow.data.idx import IDXFormatError, encode_idx, read_idx
from spikeflow.events import EVENT_DTYPE, EventFormatError, make_events
from spikeflow.events.io import (
    encode_aedat2,
    encode_aedat3,
    encode_nmnist,
    load_object_array,
    read,
    read_aedat2,
    read_aedat3,
    read_dvs_gesture_trial,
    read_gesture_labels,
    read_hdf5_sample,
    read_nmnist,
    read_numpy,
    write_hdf5,
)
from spikeflow.events.io.gesture import LABEL_DTYPE

N_MUTATIONS = int(os.environ.get("SPIKEFLOW_FUZZ_N", 300))
SEED_OFFSET = int(os.environ.get("SPIKEFLOW_FUZZ_SEED", 0))
PEAK_LIMIT = 4 << 20  # bytes traced per read; the files are a few kB
BACKSTEP = 1_000_000  # the documented limit (spikeflow.events.io._checks.MAX_BACKSTEP_US)
SPECIAL = (0, 1, 0x0A, 0x0D, 0x23, 0x7F, 0x80, 0xFF)


class RefError(Exception):
    """The reference decoder rejects the bytes."""


# ---------------------------------------------------------------- mutations
def mutate(data: bytes, rng: np.random.Generator, header: int) -> tuple[bytes, str, int, bool]:
    """(mutated bytes, kind, first changed offset, length preserved)."""
    d = bytearray(data)
    n = len(d)
    kind = ("flip", "truncate", "insert", "delete", "overwrite", "header", "duplicate")[
        int(rng.integers(7))]
    at = int(rng.integers(max(n, 1)))
    if kind == "flip":
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(n))
            d[i] ^= 1 << int(rng.integers(8))
            at = min(at, i) if _ else i
    elif kind == "truncate":
        d = d[:at]
    elif kind == "insert":
        d[at:at] = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
    elif kind == "delete":
        del d[at:at + int(rng.integers(1, 17))]
    elif kind == "overwrite":
        k = int(rng.integers(1, 9))
        d[at:at + k] = bytes(int(v) for v in rng.choice(SPECIAL, min(k, n - at)))
    elif kind == "header":
        at = int(rng.integers(max(min(header, n), 1)))
        k = int(rng.integers(1, 5))
        d[at:at + k] = bytes(int(v) for v in rng.choice(SPECIAL, min(k, n - at)))
    else:
        k = int(rng.integers(1, 33))
        d[at:at] = d[at:at + k]
    return bytes(d), kind, at, len(d) == n


def assert_valid_events(ev: np.ndarray) -> None:
    assert isinstance(ev, np.ndarray) and ev.dtype == EVENT_DTYPE and ev.ndim == 1
    if ev.size:
        t = ev["t"]
        assert t.min() >= 0 and np.all(np.diff(t) >= 0)
        assert ev["x"].min() >= 0 and ev["y"].min() >= 0
        assert set(np.unique(ev["p"]).tolist()) <= {0, 1}


def fuzz(tmp_path: Path, name: str, data: bytes, read_fn: Callable[[Path], object],
         errors: tuple[type[BaseException], ...], check: Callable[[bytes, object, tuple], None],
         seed: int, header: int = 64, n: int = 300,
         on_error: Callable[[bytes], None] | None = None) -> dict[str, int]:
    """Run ``n`` mutations of ``data`` through ``read_fn``; ``check(mutated, result, info)``
    judges a successful read, ``on_error(mutated)`` a documented error. The traced peak memory
    of each read is bounded. Returns outcome counts (both outcomes must occur)."""
    rng = np.random.default_rng(seed + 1000 * SEED_OFFSET)
    n = n if N_MUTATIONS == 300 else max(n * N_MUTATIONS // 300, 1)
    path = tmp_path / name
    counts = {"ok": 0, "error": 0}
    for k in range(n):
        mutated, kind, at, same_len = mutate(data, rng, header)
        path.write_bytes(mutated)
        result, failed = None, False
        tracemalloc.start()
        try:
            result = read_fn(path)
        except errors:
            failed = True
        except Exception as err:  # noqa: BLE001 - report which mutation escaped
            raise AssertionError(f"{name} mutation {k} ({kind} at {at}) raised "
                                 f"{type(err).__name__}: {err}") from err
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < PEAK_LIMIT, f"{name} mutation {k} ({kind} at {at}): peak {peak} bytes"
        try:
            if failed:
                counts["error"] += 1
                if on_error is not None:
                    on_error(mutated)
            else:
                counts["ok"] += 1
                check(mutated, result, (kind, at, same_len))
        except (AssertionError, pytest.fail.Exception) as err:
            raise AssertionError(f"{name} mutation {k} ({kind} at {at}): {err}") from err
    assert counts["ok"] and counts["error"], counts
    return counts


def _events(rng, n, w=128, h=128, t_max=500_000):
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n))


def _rule(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """The documented timestamp rule on (x, y, t, p) rows in file order, as a plain loop."""
    for i, (_, _, t, _) in enumerate(rows):
        if t < 0:
            raise RefError(f"negative t at {i}")
        if i and rows[i - 1][2] - t > BACKSTEP:
            raise RefError(f"step back at {i}")
    ev = np.array([tuple(r) for r in sorted(rows, key=lambda r: r[2])],
                  dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    return ev.astype(EVENT_DTYPE)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    assert (got == want).all()


# ---------------------------------------------------------------- N-MNIST
def _nmnist_ref(data: bytes) -> np.ndarray:
    if len(data) % 5:
        raise RefError("partial record")
    rows, base = [], 0
    for i in range(0, len(data), 5):
        x, y, b2, b3, b4 = data[i:i + 5]
        if y == 240:
            base += 8192
            continue
        rows.append((x, y, base + (((b2 & 0x7F) << 16) | (b3 << 8) | b4), b2 >> 7))
    return _rule(rows)


def test_fuzz_nmnist(tmp_path):
    rng = np.random.default_rng(1)
    ev = _events(rng, 200, 34, 34, t_max=1 << 24)
    data = encode_nmnist(ev)

    def check(mutated, got, info):
        assert_valid_events(got)
        _same(got, _nmnist_ref(mutated))

    def on_error(mutated):
        with pytest.raises(RefError):  # the reference agrees that the bytes are bad
            _nmnist_ref(mutated)

    fuzz(tmp_path, "00001.bin", data, read_nmnist, (EventFormatError,), check, seed=11,
         on_error=on_error)


# ---------------------------------------------------------------- AEDAT 2.0
def _aedat2_ref(body: bytes, layout: str) -> np.ndarray:
    if len(body) % 8:
        raise RefError("partial record")
    rows, wraps, prev = [], 0, None
    for i in range(0, len(body), 8):
        addr, t = struct.unpack_from(">II", body, i)
        if prev is not None and t - prev < -(1 << 31):
            wraps += 1
        prev = t
        if layout == "davis346":
            if addr & ((1 << 31) | (1 << 10)):
                continue
            row = ((addr >> 12) & 0x3FF, (addr >> 22) & 0x1FF, t + (wraps << 32), (addr >> 11) & 1)
        else:
            row = ((addr >> 1) & 0x7F, (addr >> 8) & 0x7F, t + (wraps << 32), addr & 1)
        rows.append(row)
    return _rule(rows)


@pytest.mark.parametrize("layout", ["davis346", "dvs128"])
def test_fuzz_aedat2(tmp_path, layout):
    rng = np.random.default_rng(2)
    if layout == "davis346":
        ev = make_events(rng.integers(0, 346, 150), rng.integers(130, 150, 150),
                         np.sort(rng.integers(0, 3_000_000, 150)), rng.integers(0, 2, 150))
    else:
        ev = _events(rng, 150, t_max=3_000_000)
    header = ("# This is a raw AE data file - do not edit", "# AEChip: test")
    data = encode_aedat2(ev, layout, header=header)
    offset = data.index(b"#End Of ASCII Header\r\n") + 22
    text = set()  # byte positions of comment text (after '#', before CRLF)
    for line in header:
        start = data.index(line.encode()) + 1
        text |= set(range(start, start + len(line) - 1))

    def check(mutated, got, info):
        kind, at, same_len = info
        assert_valid_events(got)
        if mutated[:offset] == data[:offset]:
            _same(got, _aedat2_ref(mutated[offset:], layout))  # header intact: exact decode
        changed = {i for i in range(len(data)) if same_len and mutated[i] != data[i]}
        if same_len and changed <= text and all(0x20 <= mutated[i] < 0x7F for i in changed):
            _same(got, ev)  # comment edits (or none) never change the events

    def on_error(mutated):
        if mutated[:offset] == data[:offset]:
            with pytest.raises(RefError):
                _aedat2_ref(mutated[offset:], layout)

    fuzz(tmp_path, "rec.aedat", data, lambda p: read_aedat2(p, layout), (EventFormatError,),
         check, seed=12, header=offset, on_error=on_error)


def test_fuzz_aedat2_comment_edits_keep_the_events(tmp_path):
    """Header edits inside comment lines (any text) never change the events."""
    rng = np.random.default_rng(3)
    ev = make_events(rng.integers(0, 346, 50), np.full(50, 141), np.sort(rng.integers(0, 1e6, 50)),
                     rng.integers(0, 2, 50))
    path = tmp_path / "c.aedat"
    for k in range(100):
        text = bytes(rng.integers(0x20, 0x7F, int(rng.integers(0, 60)), dtype=np.uint8)).decode()
        path.write_bytes(encode_aedat2(ev, "davis346", header=("#" + text,)))
        _same(read_aedat2(path, "davis346"), ev)


# ---------------------------------------------------------------- AEDAT 3.1
def _aedat3_ref(body: bytes) -> np.ndarray:
    rows, pos = [], 0
    while pos < len(body):
        if len(body) - pos < 28:
            raise RefError("short packet header")
        etype, _, size, tso, ovf, cap, num, _ = struct.unpack_from("<hhiiiiii", body, pos)
        if size <= 0 or cap < 0 or not 0 <= num <= cap or pos + 28 + cap * size > len(body):
            raise RefError("bad packet header")
        if etype == 1:
            if size != 8 or tso != 4 or ovf < 0:
                raise RefError("bad polarity packet")
            for j in range(num):
                d, ts = struct.unpack_from("<Ii", body, pos + 28 + 8 * j)
                if d & 1:
                    if ts < 0:
                        raise RefError("negative ts")
                    rows.append(((d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (ovf << 31) | ts,
                                 (d >> 1) & 1))
        pos += 28 + cap * size
    return _rule(rows)


def test_fuzz_aedat3(tmp_path):
    rng = np.random.default_rng(4)
    ev = _events(rng, 120, t_max=5_000_000)
    data = encode_aedat3(ev, packet_events=40)
    offset = data.index(b"#!END-HEADER\r\n") + 14

    def check(mutated, got, info):
        assert_valid_events(got)
        if mutated[:offset] == data[:offset]:
            _same(got, _aedat3_ref(mutated[offset:]))
        if mutated == data:
            _same(got, ev)

    def on_error(mutated):
        if mutated[:offset] == data[:offset]:
            with pytest.raises(RefError):
                _aedat3_ref(mutated[offset:])

    fuzz(tmp_path, "user01_led.aedat", data, read_aedat3, (EventFormatError,), check, seed=13,
         header=offset + 28, on_error=on_error)


# ---------------------------------------------------------------- DVS Gesture trial + labels
def test_fuzz_gesture_labels_and_trial(tmp_path):
    csv = b"class,startTime_usec,endTime_usec\r\n3,1000,200000\r\n8,150000,400000\r\n11,0,5\r\n"

    def check_labels(mutated, got, info):
        assert got.dtype == LABEL_DTYPE
        assert np.all((got["label"] >= 0) & (got["label"] <= 10))
        assert np.all((got["start"] >= 0) & (got["end"] > got["start"]))
        if mutated == csv:
            assert got.tolist() == [(2, 1000, 200000), (7, 150000, 400000), (10, 0, 5)]

    fuzz(tmp_path, "user01_led_labels.csv", csv, read_gesture_labels, (EventFormatError,),
         check_labels, seed=14)

    rng = np.random.default_rng(5)
    ev = _events(rng, 100)
    aedat = encode_aedat3(ev, packet_events=30)
    (tmp_path / "user02_led_labels.csv").write_bytes(csv)

    def check_trial(mutated, got, info):
        assert [lab for _, lab in got] == [2, 7, 10]
        for (part, _), (lo, hi) in zip(got, [(1000, 200000), (150000, 400000), (0, 5)]):
            assert_valid_events(part)
            assert part.size == 0 or (part["t"].min() >= lo and part["t"].max() < hi)

    fuzz(tmp_path, "user02_led.aedat", aedat, read_dvs_gesture_trial, (EventFormatError,),
         check_trial, seed=15, n=150)


# ---------------------------------------------------------------- numpy .npy / .npz / object
def _npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _npy_ref(body: bytes, n: int = 100) -> np.ndarray:
    """``n`` EVENT_DTYPE records (x <i2, y <i2, t <i8, p <i1 = 13 bytes) decoded with struct."""
    if len(body) != 13 * n:
        raise RefError("size differs from the header's shape")
    rows = [struct.unpack_from("<hhqb", body, i) for i in range(0, len(body), 13)]
    if any(x < 0 or y < 0 or p not in (0, 1) for x, y, _, p in rows):
        raise RefError("field out of range")
    return _rule(rows)


def test_fuzz_npy(tmp_path):
    rng = np.random.default_rng(6)
    ev = _events(rng, 100)
    data = _npy_bytes(ev)
    hlen = data.index(b"\n") + 1

    def check(mutated, got, info):
        assert_valid_events(got)
        if mutated[:hlen] == data[:hlen]:  # header intact: the records, decoded by hand
            _same(got, _npy_ref(mutated[hlen:]))
        if mutated == data:
            _same(got, ev)

    def on_error(mutated):
        if mutated[:hlen] == data[:hlen]:
            with pytest.raises(RefError):
                _npy_ref(mutated[hlen:])

    fuzz(tmp_path, "ev.npy", data, read_numpy, (EventFormatError,), check, seed=16, header=hlen,
         on_error=on_error)
    fuzz(tmp_path, "ev2.npy", data, read, (EventFormatError,), check, seed=17, header=hlen,
         n=100)


@pytest.mark.parametrize("compressed", [True, False])
def test_fuzz_npz(tmp_path, compressed):
    rng = np.random.default_rng(7)
    ev = _events(rng, 100)
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **{k: ev[k] for k in "xytp"})
    data = buf.getvalue()

    def check(mutated, got, info):
        assert_valid_events(got)
        if mutated == data:
            _same(got, ev)

    fuzz(tmp_path, "ev.npz", data, read_numpy, (EventFormatError,), check,
         seed=18 + compressed, header=128)


@pytest.mark.parametrize("protocol", [4, 2])  # numpy writes 4 (MEMOIZE); older files BINPUT
def test_fuzz_object_array(tmp_path, protocol):
    rng = np.random.default_rng(8)
    arr = np.empty(3, dtype=object)
    for i in range(3):
        arr[i] = rng.integers(0, 1000, (20, 4))
    data = _object_npy(arr)
    if protocol == 2:
        data = data[:data.index(b"\n") + 1] + pickle.dumps(arr, protocol=2)

    def check(mutated, got, info):
        assert isinstance(got, np.ndarray)
        if mutated == data:
            assert all(np.array_equal(a, b) for a, b in zip(got, arr))

    fuzz(tmp_path, "train_data.npy", data, load_object_array, (EventFormatError,), check,
         seed=20 + protocol, n=150)


def _object_npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


# ---------------------------------------------------------------- HDF5
def test_fuzz_hdf5(tmp_path):
    rng = np.random.default_rng(9)
    ev = _events(rng, 60)
    write_hdf5(tmp_path / "orig.hdf5", ev, label=4)
    data = (tmp_path / "orig.hdf5").read_bytes()

    def check(mutated, got, info):
        events, label = got
        assert_valid_events(events)
        assert label is None or isinstance(label, int)
        if mutated == data:
            _same(events, ev)
            assert label == 4

    fuzz(tmp_path, "0.hdf5", data, read_hdf5_sample, (EventFormatError,), check, seed=21,
         header=1024, n=250)


# ---------------------------------------------------------------- data readers: IDX, CIFAR-10
def _idx_ref(raw: bytes) -> np.ndarray:
    if len(raw) < 4:
        raise RefError("short")
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise RefError("magic")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    count = 1
    for d in dims:
        count *= d
    if len(raw) - 4 - 4 * ndim != count:
        raise RefError("size")
    return np.frombuffer(raw[4 + 4 * ndim:], np.uint8).reshape(dims)


@pytest.mark.parametrize("gz", [False, True])
def test_fuzz_idx(tmp_path, gz):
    import gzip

    images = np.random.default_rng(10).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    raw = encode_idx(images)
    data = gzip.compress(raw, mtime=0) if gz else raw

    def check(mutated, got, info):
        if gz:
            try:
                plain = gzip.decompress(mutated)
            except Exception:  # noqa: BLE001 - trailing garbage etc. that gzip.open tolerates
                return
        else:
            plain = mutated
        want = _idx_ref(plain)
        assert got.dtype == np.uint8 and np.array_equal(got, want)
        if mutated == data:
            assert np.array_equal(got, images)

    fuzz(tmp_path, "t10k-images-idx3-ubyte" + (".gz" if gz else ""), data, read_idx,
         (IDXFormatError,), check, seed=22 + gz, header=16)


def test_fuzz_cifar10_batch(tmp_path):
    rng = np.random.default_rng(11)
    batch = {b"batch_label": b"testing batch 1 of 1",
             b"labels": [int(v) for v in rng.integers(0, 10, 4)],
             b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
             b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png"]}
    data = pickle.dumps(batch, protocol=2)

    def check(mutated, got, info):
        images, labels = got
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
        assert labels.shape == (images.shape[0],) and labels.min() >= 0 and labels.max() <= 9
        if mutated == data:
            assert labels.tolist() == batch[b"labels"]

    fuzz(tmp_path, "data_batch_1", data, read_batch, (ValueError, pickle.UnpicklingError),
         check, seed=24)


# ---------------------------------------------------------------- frame cache entries
def test_fuzz_frame_cache_entry(tmp_path):
    rng = np.random.default_rng(12)
    counts = rng.integers(0, 5, (4, 2, 16, 16)).astype(np.uint8)
    durations = np.array([10, 10, 10, 12], dtype=np.int64)
    cache = fc.FrameCache(tmp_path / "root", "fuzz", "frames", {"T": 4},
                          shapes={"counts": counts.shape})
    entry = cache.entry({"sample": 1})
    fc.atomic_savez(entry, counts=counts, durations=durations)
    data = entry.read_bytes()
    assert cache.load(entry) is not None

    def read_fn(path):  # the mutated bytes at the entry's own path; None = rebuilt
        entry.write_bytes(path.read_bytes())
        got = cache.load(entry)
        if got is None:
            assert not entry.exists()  # deleted for rebuilding
            raise LookupError("rebuilt")
        return got

    def check(mutated, got, info):
        assert np.array_equal(got["counts"], counts) and got["counts"].dtype == np.uint8
        assert np.array_equal(got["durations"], durations)

    fuzz(tmp_path, "mutated.npz", data, read_fn, (LookupError,), check, seed=25, header=200)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["__header__.npy", "counts.npy", "durations.npy"]


# ---------------------------------------------------------------- regressions found by fuzzing
def _memo_bomb(data: bytes) -> bytes:
    """The first BINPUT (1-byte memo index) replaced by LONG_BINPUT 2**26: CPython's unpickler
    sizes its memo table by the index (1 GB of pointers) before anything fails."""
    i = next(pos for op, _, pos in __import__("pickletools").genops(data) if op.name == "BINPUT")
    return data[:i] + b"r" + struct.pack("<I", 1 << 26) + data[i + 2:]


def test_pickle_memo_index_bomb_is_refused(tmp_path):
    batch = {b"labels": [1], b"data": np.zeros((1, 3072), np.uint8)}
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = np.arange(4), np.arange(3)
    npy = _object_npy(arr)
    start = npy.index(b"\n") + 1  # numpy writes protocol 4 (MEMOIZE); older files use BINPUT
    cases = [(tmp_path / "data_batch_1", _memo_bomb(pickle.dumps(batch, protocol=2)), read_batch),
             (tmp_path / "train_data.npy",
              npy[:start] + _memo_bomb(pickle.dumps(arr, protocol=2)), load_object_array)]
    for path, data, reader in cases:
        path.write_bytes(data)
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="memo index 67108864"):
                reader(path)  # read_batch used to return normally after a 1 GB peak
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_npy_header_length_bomb_is_refused(tmp_path):
    """Version byte 2 makes the header length 4 bytes wide: numpy read (and allocated) a
    662 MB 'header' before checking its size."""
    data = bytearray(_npy_bytes(make_events([1], [2], [3], [1])))
    data[6] = 2
    path = tmp_path / "h.npy"
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        for reader in (read_numpy, load_object_array):
            with pytest.raises(EventFormatError, match=r"h\.npy.*header length"):
                reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_object_array_state_longer_than_its_list_is_refused(tmp_path):
    """Found by fuzzing: the object array's state says shape (128,) but holds a 3-item list;
    numpy's own __setstate__ then read past the list (segmentation fault)."""
    arr = np.empty(3, dtype=object)
    for i in range(3):
        arr[i] = np.arange(4 * i, dtype=np.int64)
    data = _object_npy(arr)
    assert data.count(b"K\x01K\x03\x85") == 1  # state (version 1, shape (3,), ...)
    path = tmp_path / "train_data.npy"
    path.write_bytes(data)
    assert [a.tolist() for a in load_object_array(path)] == [a.tolist() for a in arr]
    path.write_bytes(data.replace(b"K\x01K\x03\x85", b"K\x01K\x80\x85"))
    with pytest.raises(EventFormatError, match=r"train_data\.npy.*does not match shape \(128,\)"):
        load_object_array(path)


def test_dtype_state_with_reference_flags_is_refused(tmp_path):
    """A pickled dtype state can mark uint8 as holding object references; numpy then builds an
    array whose bytes it treats as pointers. Refused for CIFAR-10 batches and object arrays."""
    from numpy._core.multiarray import _reconstruct

    class Dtype:
        def __reduce__(self):
            return np.dtype, ("u1", False, True), (3, "|", None, None, None, -1, -1, 63)

    class Array:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (0,), b"b"), (1, (3072,), Dtype(), False,
                                                           list(range(3072)))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Array(), b"labels": [1]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="dtype state"):
        read_batch(path)


def test_datetime_dtype_with_object_state_is_refused(tmp_path):
    """Found by fuzzing (protocol 2): one flipped bit turned 'O8' into 'M8', and numpy's dtype
    __setstate__ applied the object dtype's state to a datetime dtype (segmentation fault)."""
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = np.arange(3), np.arange(2)
    head = _object_npy(arr)
    head = head[:head.index(b"\n") + 1]
    body = pickle.dumps(arr, protocol=2)
    assert body.count(b"O8") == 1
    path = tmp_path / "train_data.npy"
    path.write_bytes(head + body)
    assert [a.tolist() for a in load_object_array(path)] == [[0, 1, 2], [0, 1]]
    path.write_bytes(head + body.replace(b"O8", b"M8"))
    with pytest.raises(EventFormatError, match=r"train_data\.npy.*dtype state"):
        load_object_array(path)


def test_python2_style_batch_still_loads(tmp_path):
    """Python 2 pickles (the official CIFAR-10 batches) name dtypes and byte orders with byte
    strings; the checked unpickler accepts them."""
    from numpy._core.multiarray import _reconstruct

    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)

    class Dtype:
        def __reduce__(self):
            return np.dtype, (b"u1", 0, 1), (3, b"|", None, None, None, -1, -1, 0)

    class Array:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (0,), b"b"), (1, (2, 3072), Dtype(), False,
                                                           data.tobytes())

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Array(), b"labels": [3, 9]}, protocol=2))
    images, labels = read_batch(path)
    assert labels.tolist() == [3, 9]
    np.testing.assert_array_equal(images, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))

"""Issue 17 items 4-7: each test reproduces a failure found by the red-team pass and shows the fix.

4. AEDAT 2.0 DAVIS data starting with '#' lost events (header parser ran into the data).
5. HDF5 files declaring 50M / 10^10 events allocated phantom zero events / raised MemoryError.
6. Negative or far out-of-order timestamps (AEDAT 3.1 sign bit, .npy, HDF5) passed silently.
7. Corrupt .npz files raised zlib.error / BadZipFile / NotImplementedError / TokenError.
(Frame-cache entries: tests/data/test_frame_cache_hardening.py.)
"""
from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from spikeflow.events import EventFormatError, make_events
from spikeflow.events.io import (
    encode_aedat2,
    load_object_array,
    read,
    read_aedat2,
    read_aedat3,
    read_hdf5,
    read_nmnist,
    read_numpy,
    write_aedat2,
    write_aedat3,
    write_npz,
)
from spikeflow.events.io._checks import MAX_BACKSTEP_US

h5py = pytest.importorskip("h5py")


def _davis(rng, n, first_y=None, t_max=1 << 31):
    y = rng.integers(0, 260, n)
    if first_y is not None and n:
        y[0] = first_y
    return make_events(rng.integers(0, 346, n), y, np.sort(rng.integers(0, t_max, n)),
                       rng.integers(0, 2, n))


# ---------------------------------------------------------------- item 4: AEDAT 2.0 header end
def test_aedat2_davis_data_starting_with_hash_round_trips(tmp_path):
    # y = 140 puts 0x23 ('#') in the first address byte; t = 10 ends the record with '\n'. The
    # old parser took the first record for a header line and lost it.
    ev = make_events(x=[5, 6, 7], y=[140, 3, 141], t=[10, 2570, 2571], p=[1, 0, 1])
    data = encode_aedat2(ev, "davis346")
    body = data[data.index(b"#End Of ASCII Header\r\n") + 22:]
    assert body[:1] == b"#" and body[7:8] == b"\n"
    path = tmp_path / "davis.aedat"
    write_aedat2(path, ev, "davis346")
    np.testing.assert_array_equal(read_aedat2(path, "davis346"), ev)
    np.testing.assert_array_equal(read(path, layout="davis346"), ev)


def test_aedat2_marker_less_header_stops_at_binary_or_misaligned_line(tmp_path):
    # Old jAER files have no end line: a '#' "line" holding non-text bytes is data, and so is a
    # '#' text line after which the rest is not a whole number of 8-byte records.
    head = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
    rec = np.array([(0x23000000 | (3 << 12), 0x0A), (0x23414243, 0x440D0A00)],
                   dtype=[("a", ">u4"), ("t", ">u4")])
    for records in (rec[:1], rec):  # binary first line; then a text line '#ABCD\r\n' (7 bytes)
        path = tmp_path / "legacy.aedat"
        path.write_bytes(head + records.tobytes())
        got = read_aedat2(path, "davis346", keep_special=True)
        assert got.size == records.size and got["t"].tolist() == sorted(records["t"].tolist())


def test_aedat2_round_trip_property_over_random_recordings(tmp_path):
    # 400 seeded recordings, a third starting with a '#' address byte and '\n' bytes in the data.
    path = tmp_path / "r.aedat"
    for seed in range(400):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(0, 40))
        layout = ("davis346", "dvs128")[seed % 2]
        if layout == "davis346":
            ev = _davis(rng, n, first_y=int(rng.integers(140, 144)) if seed % 3 == 0 else None)
            if seed % 6 == 0 and n:
                ev["t"][0] = int(rng.choice([10, 0x0A0A, 0x0D0A]))
                ev["t"] = np.maximum.accumulate(ev["t"])
        else:
            ev = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n),
                             np.sort(rng.integers(0, 1 << 32, n)), rng.integers(0, 2, n))
        header = tuple(f"# line {k} {rng.integers(1 << 30)}" for k in range(int(rng.integers(3))))
        write_aedat2(path, ev, layout, header=header, eol=("\r\n", "\n")[seed % 4 == 1])
        np.testing.assert_array_equal(read_aedat2(path, layout), ev, err_msg=f"seed {seed}")


def test_aedat2_writer_refuses_header_lines_that_would_break_the_header():
    ev = make_events([1], [1], [1], [1])
    for bad in ("no hash", "#two\r\nlines", "#End Of ASCII Header", "#\x00binary"):
        with pytest.raises(ValueError, match="header lines"):
            encode_aedat2(ev, header=(bad,))


# ---------------------------------------------------------------- item 5: HDF5 declared sizes
@pytest.mark.parametrize("n,chunks", [(50_000_000, None), (50_000_000, (4096,)),
                                      (10**10, None), (10**10, (4096,))])
def test_hdf5_declared_size_bomb_is_refused_before_allocating(tmp_path, n, chunks):
    path = tmp_path / "bomb.hdf5"
    with h5py.File(path, "w") as f:  # declared, never written: reads back as fill-value zeros
        f.create_dataset("times", shape=(n,), dtype="<i8", chunks=chunks)
        f.create_dataset("addrs", shape=(n, 3), dtype="<i2",
                         chunks=None if chunks is None else (chunks[0], 3))
        f.create_dataset("labels", data=np.int64(3))
    assert path.stat().st_size < 4096
    tracemalloc.start()
    try:
        with pytest.raises(EventFormatError, match=r"bomb\.hdf5.*'times'.*declares"):
            read_hdf5(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20  # the old reader peaked at 1.8 GB for 50M events


def test_hdf5_truncated_and_compressed_bombs(tmp_path):
    ev = make_events(np.arange(2000) % 128, np.arange(2000) % 100, np.arange(2000) * 10,
                     np.arange(2000) % 2)
    from spikeflow.events.io import write_hdf5
    good = tmp_path / "good.hdf5"
    write_hdf5(good, ev, label=1)
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(good.read_bytes()[:-20_000])  # contiguous data runs past the end of the file
    with pytest.raises(EventFormatError, match=r"cut\.hdf5"):
        read_hdf5(cut)
    comp = tmp_path / "gz.hdf5"  # one written chunk out of 12,000: the rest would be fill values
    with h5py.File(comp, "w") as f:
        t = f.create_dataset("times", shape=(12_000_000,), dtype="<i8", chunks=(1000,),
                             compression="gzip")
        t[:1000] = np.arange(1000)
        f.create_dataset("addrs", shape=(12_000_000, 3), dtype="<i2", chunks=(1000, 3),
                         compression="gzip")
    with pytest.raises(EventFormatError, match=r"'times'.*compressed"):
        read_hdf5(comp)


# ---------------------------------------------------------------- item 6: timestamps
def test_aedat3_flipped_sign_bit_is_an_error_naming_the_event(tmp_path):
    ev = make_events(np.arange(1000) % 128, np.arange(1000) % 64, np.arange(1000) * 100,
                     np.arange(1000) % 2)
    path = tmp_path / "user01_led.aedat"
    write_aedat3(path, ev)
    data = bytearray(path.read_bytes())
    at = data.index(b"#!END-HEADER\r\n") + 14 + 28 + 8 * 500 + 7  # top byte of event 500's ts
    data[at] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(EventFormatError, match=rf"user01_led\.aedat at byte {at - 7}: .*event "
                                               rf"500 .*negative"):
        read_aedat3(path)


def test_aedat3_overflow_counter_going_back_is_an_error_small_jitter_is_sorted(tmp_path):
    ev = make_events([1, 2, 3, 4], [0, 0, 0, 0], [5, (1 << 31) + 7, (1 << 31) + 9, (1 << 31) + 20],
                     [0, 1, 0, 1])
    from spikeflow.events.io import encode_aedat3
    data = bytearray(encode_aedat3(ev, packet_events=2))
    # packets: [ev0] (epoch 0), [ev1, ev2] (epoch 1), [ev3]; set the third packet's epoch to 0
    head = data.index(b"#!END-HEADER\r\n") + 14
    third = head + (28 + 8) + (28 + 16)
    struct.pack_into("<i", data, third + 12, 0)
    path = tmp_path / "back.aedat"
    path.write_bytes(bytes(data))
    with pytest.raises(EventFormatError, match=r"event 3 .*step back"):
        read_aedat3(path)
    jitter = make_events([1, 2, 3], [0, 0, 0], [100, 200, 300], [0, 1, 0])
    raw = bytearray(encode_aedat3(jitter))
    struct.pack_into("<i", raw, head + 28 + 8 + 4, 350)  # event 1 at 350 > event 2 at 300
    path.write_bytes(bytes(raw))
    assert read_aedat3(path)["t"].tolist() == [100, 300, 350]


def _npy(path, t):
    ev = np.zeros(len(t), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
    ev["t"] = t
    np.save(path, ev)


def _h5(path, t):
    with h5py.File(path, "w") as f:
        f.create_dataset("times", data=np.asarray(t, np.int64))
        f.create_dataset("addrs", data=np.zeros((len(t), 3), np.int16))


@pytest.mark.parametrize("writer,reader,name", [(_npy, read_numpy, "e.npy"),
                                                (_h5, read_hdf5, "e.hdf5")])
def test_container_timestamps_negative_unsorted(tmp_path, writer, reader, name):
    path = tmp_path / name
    writer(path, [0, 10, -5, 20])
    with pytest.raises(EventFormatError, match=r"event 2 .*negative timestamp t = -5"):
        reader(path)
    writer(path, [0, 10, 5 + 2 * MAX_BACKSTEP_US, 7])
    with pytest.raises(EventFormatError, match=r"event 3 .*step back"):
        reader(path)
    writer(path, [0, 30, 20, 40])  # jitter below the limit: sorted (documented)
    assert reader(path)["t"].tolist() == [0, 20, 30, 40]


def test_container_columns_out_of_range_or_fractional(tmp_path):
    path = tmp_path / "c.npz"
    base = {"x": np.array([1, 2]), "y": np.array([1, 2]), "t": np.array([1, 2]),
            "p": np.array([0, 1])}
    for key, bad, what in [("x", [1, 70000], "outside"), ("p", [-1, 1], "polarities"),
                           ("t", [1.5, 2.0], "whole number"), ("y", [np.nan, 1], "finite")]:
        np.savez(path, **{**base, key: np.array(bad)})
        with pytest.raises(EventFormatError, match=what):
            read_numpy(path)
    np.savez(path, **{**base, "t": np.array([1.0, 2.0])})
    assert read_numpy(path)["t"].tolist() == [1, 2]


def test_nmnist_large_step_back_is_an_error(tmp_path):
    path = tmp_path / "n.bin"
    rec = lambda t: bytes([1, 1, (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])  # noqa: E731
    path.write_bytes(rec(100) + rec(0x7FFFFF) + rec(200))  # a flipped high timestamp bit
    with pytest.raises(EventFormatError, match=r"n\.bin at byte 10: event 2 "):
        read_nmnist(path)


# ---------------------------------------------------------------- item 7: corrupt .npz / .npy
def _npz_bytes(compressed=True):
    ev = make_events(np.arange(300) % 34, np.arange(300) % 30, np.arange(300) * 7,
                     np.arange(300) % 2)
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(
        buf, **{k: np.asarray(ev[k]) for k in "xytp"})
    return ev, buf.getvalue()


def _corrupt_deflate(data):  # flip bytes in the middle of the first member's deflate stream
    out = bytearray(data)
    name_len, extra_len = struct.unpack_from("<HH", out, 26)
    start = 30 + name_len + extra_len
    for k in range(start + 10, start + 30):
        out[k] ^= 0x5A
    return bytes(out)


def _method(data, method):  # unknown compression method in both local and central headers
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = out.find(sig)
        while at >= 0:
            struct.pack_into("<H", out, at + off, method)
            at = out.find(sig, at + 4)
    return bytes(out)


def _encrypted(data):  # the "encrypted" flag bit set in every header: RuntimeError in zipfile
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(sig)
        while at >= 0:
            out[at + off] |= 1
            at = out.find(sig, at + 4)
    return bytes(out)


def _npy_header_garbage(data):  # an unterminated string in the first member's .npy header
    return data.replace(b"'descr': '", b"'descr': \"", 1)


@pytest.mark.parametrize("mutate,raised_before", [
    (_corrupt_deflate, "zlib.error"), (lambda d: d[:-30], "BadZipFile"),
    (lambda d: _method(d, 99), "NotImplementedError"), (_encrypted, "RuntimeError"),
    (_npy_header_garbage, "tokenize.TokenError / SyntaxError"),
])
def test_corrupt_npz_raises_event_format_error(tmp_path, mutate, raised_before):
    ev, data = _npz_bytes(compressed=mutate is not _npy_header_garbage)
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_numpy(path), ev)
    path.write_bytes(mutate(data))
    with pytest.raises(EventFormatError, match=r"bad\.npz"):
        read_numpy(path)


def test_npy_declared_shape_bomb(tmp_path):
    path = tmp_path / "bomb.npy"
    ev = np.zeros(4, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
    buf = io.BytesIO()
    np.save(buf, ev)
    path.write_bytes(_with_shape(buf.getvalue(), 10**10))
    tracemalloc.start()
    try:
        for reader in (read_numpy, load_object_array):
            with pytest.raises(EventFormatError, match=r"bomb\.npy.*declares shape"):
                reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def _with_shape(npy: bytes, n: int) -> bytes:
    """The .npy bytes with the shape in the header replaced (header re-padded to its length)."""
    hlen = struct.unpack_from("<H", npy, 8)[0]
    header = npy[10:10 + hlen].decode("latin-1")
    start = header.index("'shape': (") + len("'shape': (")
    end = header.index(")", start)
    new = (header[:start] + f"{n}," + header[end:]).rstrip()
    new = new.ljust(hlen - 1) + "\n"
    assert len(new) == hlen
    return npy[:10] + new.encode("latin-1") + npy[10 + hlen:]


def test_npz_member_declaring_more_than_deflate_can_hold(tmp_path):
    ev, data = _npz_bytes()
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")  # central directory of the first member: uncompressed size
    struct.pack_into("<I", out, at + 24, 4_000_000_000)
    path = tmp_path / "big.npz"
    path.write_bytes(bytes(out))
    with pytest.raises(EventFormatError, match=r"big\.npz.*declares 4000000000 bytes"):
        read_numpy(path)


def test_write_npz_round_trip_still_exact(tmp_path):
    ev = make_events([1, 2], [3, 4], [5, 6], [0, 1])
    write_npz(tmp_path / "a.npz", ev)
    np.testing.assert_array_equal(read_numpy(tmp_path / "a.npz"), ev)
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        assert sorted(zf.namelist()) == ["p.npy", "t.npy", "x.npy", "y.npy"]

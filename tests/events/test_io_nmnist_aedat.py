"""Known-answer and round-trip tests for the N-MNIST, AEDAT 3.1 and AEDAT 2.0 readers/writers."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from spikeflow.events import EventFormatError, make_events
from spikeflow.events.io import (
    read,
    read_aedat2,
    read_aedat3,
    read_nmnist,
    write_aedat2,
    write_aedat3,
    write_nmnist,
)


def _random_events(rng, n, w=128, h=128, t_max=1_000_000):
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n))


# ---------------------------------------------------------------- N-MNIST (ATIS .bin)
def _atis(x, y, p, ts):
    return bytes([x, y, (p << 7) | (ts >> 16), (ts >> 8) & 0xFF, ts & 0xFF])


def test_nmnist_known_bytes(tmp_path):
    path = tmp_path / "00001.bin"
    path.write_bytes(_atis(3, 4, 1, 0x12345) + _atis(33, 0, 0, (1 << 23) - 1))
    ev = read_nmnist(path)
    assert ev.tolist() == [(3, 4, 0x12345, 1), (33, 0, (1 << 23) - 1, 0)]


def test_nmnist_overflow_records_add_2_pow_13(tmp_path):
    path = tmp_path / "o.bin"
    marker = _atis(0, 240, 0, 0)
    path.write_bytes(_atis(1, 1, 1, 100) + marker + marker + _atis(2, 2, 0, 5))
    ev = read_nmnist(path)
    assert ev["t"].tolist() == [100, 2 * 8192 + 5]
    assert ev["x"].tolist() == [1, 2]


def test_nmnist_round_trip_with_overflow(tmp_path, rng):
    ev = _random_events(rng, 500, 34, 34, t_max=3 * (1 << 23))
    path = tmp_path / "r.bin"
    write_nmnist(path, ev)
    assert path.stat().st_size % 5 == 0 and path.stat().st_size > 5 * 500  # markers inserted
    np.testing.assert_array_equal(read_nmnist(path), ev)
    np.testing.assert_array_equal(read(path), ev)


def test_nmnist_truncated_raises(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(_atis(1, 1, 1, 1) + b"\x01\x02")
    with pytest.raises(EventFormatError, match=r"bad\.bin at byte 5.*multiple of 5"):
        read_nmnist(path)


# ---------------------------------------------------------------- AEDAT 3.1
def _packet(etype, events, overflow=0, size=8, ts_offset=4, capacity=None, number=None):
    capacity = len(events) if capacity is None else capacity
    number = len(events) if number is None else number
    hdr = struct.pack("<hhiiiiii", etype, 1, size, ts_offset, overflow, capacity, number, number)
    return hdr + b"".join(struct.pack("<Ii", d, ts) for d, ts in events)


def _pol(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def _header(eol=b"\r\n"):
    return eol.join([b"#!AER-DAT3.1", b"#Format: RAW", b"#Source 1: DVS128", b"#!END-HEADER"]) + eol


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_aedat3_known_bytes(tmp_path, eol):
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 0xFFFFFFFF, 1)
    body = (_packet(1, [(_pol(5, 6, 1), 10), (_pol(7, 8, 0, valid=0), 11)])
            + special
            + _packet(1, [(_pol(127, 0, 0), 3)], overflow=1))
    path = tmp_path / "user01_led.aedat"
    path.write_bytes(_header(eol) + body)
    ev = read_aedat3(path)
    # the invalid event and the special packet are dropped; overflow 1 -> t = 2**31 + 3
    assert ev.tolist() == [(5, 6, 10, 1), (127, 0, (1 << 31) + 3, 0)]
    np.testing.assert_array_equal(read(path), ev)


def test_aedat3_round_trip_past_2_pow_31(tmp_path, rng):
    ev = _random_events(rng, 3000, t_max=(1 << 32) + 12345)
    path = tmp_path / "r.aedat"
    write_aedat3(path, ev, packet_events=512, eol="\n")
    np.testing.assert_array_equal(read_aedat3(path), ev)


def test_aedat3_capacity_larger_than_number(tmp_path):
    body = _packet(1, [(_pol(1, 2, 1), 5), (_pol(3, 4, 1), 6)], number=1)
    path = tmp_path / "c.aedat"
    path.write_bytes(_header() + body)
    assert read_aedat3(path).tolist() == [(1, 2, 5, 1)]


def test_aedat3_missing_end_header(tmp_path):
    path = tmp_path / "h.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n" + _packet(1, [(_pol(1, 1, 1), 1)]))
    with pytest.raises(EventFormatError, match=r"h\.aedat at byte 28: .*END-HEADER"):
        read_aedat3(path)


def test_aedat3_packet_past_end(tmp_path):
    head = _header()
    pkt = _packet(1, [(_pol(1, 1, 1), 1), (_pol(2, 2, 1), 2)])
    path = tmp_path / "t.aedat"
    path.write_bytes(head + pkt[:-3])
    with pytest.raises(EventFormatError, match=rf"at byte {len(head)}: .*only 13 bytes remain"):
        read_aedat3(path)


def test_aedat3_truncated_packet_header(tmp_path):
    head = _header()
    path = tmp_path / "t.aedat"
    path.write_bytes(head + _packet(1, [(_pol(1, 1, 1), 1)]) + b"\x01\x00\x01")
    with pytest.raises(EventFormatError, match=rf"at byte {len(head) + 36}: truncated packet"):
        read_aedat3(path)


def test_aedat3_bad_polarity_event_size(tmp_path):
    path = tmp_path / "s.aedat"
    path.write_bytes(_header() + _packet(1, [(_pol(1, 1, 1), 1)], size=8, ts_offset=0))
    with pytest.raises(EventFormatError, match="eventTSOffset=0"):
        read_aedat3(path)


# ---------------------------------------------------------------- AEDAT 2.0
def _aedat2(records, header=b"#!AER-DAT2.0\r\n# created by hand\r\n"):
    return header + b"".join(struct.pack(">II", a, t) for a, t in records)


def test_aedat2_dvs128_known_bytes(tmp_path):
    # DVS128: polarity bit 0, x bits 1-7, y bits 8-14 -> raw fields
    recs = [((9 << 8) | (100 << 1) | 1, 50), ((127 << 8) | (0 << 1) | 0, 60)]
    path = tmp_path / "cifar10_cat_0.aedat"
    path.write_bytes(_aedat2(recs))
    ev = read_aedat2(path)
    assert ev.tolist() == [(100, 9, 50, 1), (0, 127, 60, 0)]
    np.testing.assert_array_equal(read(path), ev)


def test_aedat2_davis346_known_bytes(tmp_path):
    # DAVIS: polarity bit 11, x bits 12-21, y bits 22-30; bit 31 (APS/IMU) and bit 10 dropped
    recs = [((259 << 22) | (345 << 12) | (1 << 11), 7),
            ((1 << 31) | (3 << 12), 8),
            ((5 << 22) | (6 << 12) | (1 << 10), 9),
            ((1 << 22) | (2 << 12), 10)]
    path = tmp_path / "a.aedat"
    path.write_bytes(_aedat2(recs))
    assert read_aedat2(path, layout="davis346").tolist() == [(345, 259, 7, 1), (2, 1, 10, 0)]
    assert len(read_aedat2(path, layout="davis346", keep_special=True)) == 4


@pytest.mark.parametrize("layout,w,h", [("dvs128", 128, 128), ("davis346", 346, 260)])
def test_aedat2_round_trip(tmp_path, rng, layout, w, h):
    ev = _random_events(rng, 2000, w, h, t_max=(1 << 32) - 1)
    path = tmp_path / "r.aedat"
    write_aedat2(path, ev, layout=layout)
    np.testing.assert_array_equal(read_aedat2(path, layout=layout), ev)


def test_aedat2_timestamp_rollover_unwrapped(tmp_path):
    path = tmp_path / "w.aedat"
    path.write_bytes(_aedat2([(0, (1 << 32) - 10), (2, 5)]))
    assert read_aedat2(path)["t"].tolist() == [(1 << 32) - 10, (1 << 32) + 5]


def test_aedat2_odd_word_count(tmp_path):
    head = b"#!AER-DAT2.0\r\n"
    path = tmp_path / "odd.aedat"
    path.write_bytes(_aedat2([(1, 2)], header=head) + struct.pack(">I", 3))
    with pytest.raises(EventFormatError, match=rf"odd\.aedat at byte {len(head) + 8}: odd number"):
        read_aedat2(path)


def test_aedat2_unknown_layout():
    with pytest.raises(ValueError, match="unknown AEDAT 2.0 layout"):
        read_aedat2("whatever.aedat", layout="dvs640")


def test_read_dispatch_rejects_unknown(tmp_path):
    path = tmp_path / "x.aedat"
    path.write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(EventFormatError, match="not supported"):
        read(path)
    other = tmp_path / "x.txt"
    other.write_bytes(b"hello")
    with pytest.raises(EventFormatError, match="unknown event file type"):
        read(other)

"""IDX reader: round trips (raw and gzip), and clear errors on corrupt files."""
import gzip

import numpy as np
import pytest

from spikeflow.data.idx import (IMAGES_MAGIC, LABELS_MAGIC, IDXFormatError, encode_idx, idx_md5,
                                read_idx, write_idx)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_images(tmp_path, rng, name):
    a = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, a)
    b = read_idx(tmp_path / name, expect_magic=IMAGES_MAGIC)
    assert b.dtype == np.uint8 and np.array_equal(a, b)
    assert idx_md5(tmp_path / name) == __import__("hashlib").md5(encode_idx(a)).hexdigest()


def test_header_bytes_are_mnist_layout():
    raw = encode_idx(np.array([9, 0, 0, 3], dtype=np.uint8))
    assert raw[:8] == (2049).to_bytes(4, "big") + (4).to_bytes(4, "big") and raw[8:] == bytes([9, 0, 0, 3])


def test_gzip_detected_by_content_not_name(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"  # no .gz suffix but gzipped content
    path.write_bytes(gzip.compress(encode_idx(np.arange(7, dtype=np.uint8))))
    assert read_idx(path).tolist() == list(range(7))


def test_wrong_magic_names_file_and_expectation(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    write_idx(path, np.zeros(3, np.uint8))
    with pytest.raises(IDXFormatError, match=r"t10k-labels-idx1-ubyte.*2049.*expected 2051"):
        read_idx(path, expect_magic=IMAGES_MAGIC)


def test_truncated_data(tmp_path):
    path = tmp_path / "img-idx3-ubyte"
    path.write_bytes(encode_idx(np.zeros((2, 4, 4), np.uint8))[:-5])
    with pytest.raises(IDXFormatError, match=r"img-idx3-ubyte.*truncated"):
        read_idx(path)


def test_trailing_bytes_and_short_header(tmp_path):
    (tmp_path / "a").write_bytes(encode_idx(np.zeros(3, np.uint8)) + b"\x00")
    with pytest.raises(IDXFormatError, match="trailing"):
        read_idx(tmp_path / "a", LABELS_MAGIC)
    (tmp_path / "b").write_bytes(b"\x00\x00")
    with pytest.raises(IDXFormatError, match="too short"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes((2051).to_bytes(4, "big") + b"\x00\x00")
    with pytest.raises(IDXFormatError, match="truncated header"):
        read_idx(tmp_path / "c")


def test_not_ubyte_magic(tmp_path):
    (tmp_path / "f").write_bytes((0x0D01).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"\x00" * 4)
    with pytest.raises(IDXFormatError, match="unsigned-byte"):
        read_idx(tmp_path / "f")


def test_truncated_gzip(tmp_path):
    data = gzip.compress(encode_idx(np.arange(200, dtype=np.uint8)))
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IDXFormatError, match=r"x\.gz.*gzip"):
        read_idx(tmp_path / "x.gz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_idx(tmp_path / "nothere")

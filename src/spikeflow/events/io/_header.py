"""ASCII ``#`` header lines shared by the jAER AEDAT 2.0 and cAER AEDAT 3.1 formats.

Both formats start with text lines beginning with ``#`` (CRLF in files written by jAER/cAER; LF is
accepted too). AEDAT 3.1 ends the header with ``#!END-HEADER``; AEDAT 2.0 simply stops writing
``#`` lines, so its binary data starts at the first line that does not begin with ``#``.
"""
from __future__ import annotations

import os
from pathlib import Path

from spikeflow.events.types import EventFormatError

MAX_HEADER_BYTES = 1 << 20  # a header longer than 1 MiB is not an AEDAT header


def read_prefix(path: str | os.PathLike, n: int = MAX_HEADER_BYTES) -> bytes:
    """The first ``n`` bytes of a file (fewer if the file is shorter)."""
    with open(path, "rb") as f:
        return f.read(n)


def sniff_version(prefix: bytes) -> str | None:
    """The AEDAT version in the first line (``"2.0"``, ``"3.1"``, ...), or None if not AEDAT."""
    if not prefix.startswith(b"#!AER-DAT"):
        return None
    first = prefix.split(b"\n", 1)[0].strip()
    return first[len(b"#!AER-DAT"):].decode("ascii", "replace")


def split_header(prefix: bytes, path: str | os.PathLike | Path, *, end_marker: bytes | None
                 ) -> tuple[list[str], int]:
    """Parse ``#`` lines from ``prefix``; return ``(lines without EOL, byte offset of the data)``.

    With ``end_marker`` (AEDAT 3.1: ``b"#!END-HEADER"``) the header must contain that line and the
    data starts right after it; otherwise the data starts at the first line not beginning with ``#``.
    """
    lines: list[str] = []
    pos = 0
    while pos < len(prefix):
        if prefix[pos:pos + 1] != b"#":
            if end_marker is not None:
                raise EventFormatError(
                    path, pos, f"expected a '#' header line or {end_marker.decode()!r} "
                    f"(AEDAT header), found byte {prefix[pos:pos + 1]!r}")
            return lines, pos
        eol = prefix.find(b"\n", pos)
        if eol < 0:
            break
        line = prefix[pos:eol].rstrip(b"\r")
        lines.append(line.decode("latin-1"))
        pos = eol + 1
        if end_marker is not None and line == end_marker:
            return lines, pos
    if end_marker is not None:
        raise EventFormatError(path, pos, f"missing end-of-header line {end_marker.decode()!r} "
                               f"(searched the first {len(prefix)} bytes)")
    return lines, pos

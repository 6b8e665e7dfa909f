"""ASCII ``#`` header lines shared by the jAER AEDAT 2.0 and cAER AEDAT 3.1 formats.

Both formats start with text lines beginning with ``#`` (CRLF in files written by jAER/cAER; LF is
accepted too). AEDAT 3.1 ends the header with ``#!END-HEADER``. AEDAT 2.0 (jAER) ends it with the
line ``#End Of ASCII Header`` in newer files (spikeflow's writer always writes it); older files
simply stop writing ``#`` lines. Binary data may itself start with the byte ``#`` (0x23, e.g. a
DAVIS346 address with y = 140..143), so without the end line the AEDAT 2.0 header is:

* the run of lines that start with ``#``, hold only text (printable ASCII, tab, bytes >= 0x80)
  and end with ``\n`` (at most :data:`MAX_LINE_BYTES` each);
* cut back to the last such line after which the rest of the file is a whole number of 8-byte
  records, when the whole run leaves a partial record (a binary "line" swallowed by the run);
  the ``#!AER-DAT`` version line always stays header.

Files with the end line are always split exactly. Without it, data starting with a ``#`` text
"line" whose length is a multiple of 8 bytes is still taken for header (not decidable from
the bytes alone).
"""
from __future__ import annotations

import os
from pathlib import Path

from spikeflow.events.types import EventFormatError

MAX_HEADER_BYTES = 1 << 20  # a header longer than 1 MiB is not an AEDAT header
MAX_LINE_BYTES = 4096  # a longer '#' "line" is binary data, not an AEDAT 2.0 header line
AEDAT2_END = b"#End Of ASCII Header"
_TEXT = bytes(sorted(set(range(0x20, 0x7F)) | {0x09} | set(range(0x80, 0x100))))


def _is_end_line(line: bytes) -> bool:
    """``#End Of ASCII Header`` in any case / spacing (jAER and tools differ)."""
    return line.startswith(b"#") and b" ".join(line[1:].split()).lower() == b"end of ascii header"


def _is_text(line: bytes) -> bool:
    return not line.translate(None, _TEXT)


def split_aedat2_header(prefix: bytes, path: str | os.PathLike | Path, file_size: int,
                        record_bytes: int = 8) -> tuple[list[str], int]:
    """AEDAT 2.0 header lines and the byte offset of the data (rule in the module doc)."""
    lines: list[str] = []
    ends = [0]
    pos = 0
    while pos < len(prefix) and prefix[pos:pos + 1] == b"#":
        eol = prefix.find(b"\n", pos, pos + MAX_LINE_BYTES)
        if eol < 0:
            break
        line = prefix[pos:eol].rstrip(b"\r")
        if not _is_text(line):
            break
        lines.append(line.decode("latin-1"))
        pos = eol + 1
        ends.append(pos)
        if _is_end_line(line):
            return lines, pos
    keep_first = int(bool(lines) and lines[0].startswith("#!AER-DAT"))  # never data
    for k in range(len(ends) - 1, keep_first - 1, -1):
        if (file_size - ends[k]) % record_bytes == 0:
            return lines[:k], ends[k]
    return lines, pos


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

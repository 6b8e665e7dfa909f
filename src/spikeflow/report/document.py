"""A tiny document model rendered to Markdown and to a self-contained HTML page.

Blocks are headings, paragraphs, tables (header + already formatted cells) and images (PNG files,
linked relatively from Markdown and embedded as data URIs in HTML so the page can be moved alone).
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

from spikeflow.report.tables import markdown_table


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass
class Image:
    path: Path
    alt: str


Block = Union[Heading, Paragraph, Table, Image]

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code { background: #f6f6f6; padding: 0 0.2em; }
"""


@dataclass
class Document:
    """An ordered list of blocks with a title."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Heading(text, level))

    def paragraph(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(Table(list(headers), [list(r) for r in rows]))

    def image(self, path: Path | None, alt: str) -> None:
        if path is not None:
            self.blocks.append(Image(Path(path), alt))

    def images(self) -> list[Path]:
        return [b.path for b in self.blocks if isinstance(b, Image)]

    def to_markdown(self, base: Path) -> str:
        """Markdown with image links relative to ``base`` (the folder of report.md)."""
        out = [f"# {self.title}\n"]
        for b in self.blocks:
            if isinstance(b, Heading):
                out.append(f"{'#' * b.level} {b.text}\n")
            elif isinstance(b, Paragraph):
                out.append(f"{b.text}\n")
            elif isinstance(b, Table):
                out.append(markdown_table(b.headers, b.rows))
            else:
                out.append(f"![{b.alt}]({_relative(b.path, base)})\n")
        return "\n".join(out)

    def to_html(self) -> str:
        """A standalone HTML page (images embedded)."""
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
               f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            if isinstance(b, Heading):
                level = min(max(b.level, 1), 6)
                out.append(f"<h{level}>{html.escape(b.text)}</h{level}>")
            elif isinstance(b, Paragraph):
                out.append(f"<p>{_inline(b.text)}</p>")
            elif isinstance(b, Table):
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b.headers)
                body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                               for row in b.rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                data = base64.b64encode(b.path.read_bytes()).decode("ascii")
                out.append(f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(b.alt)}</figcaption></figure>")
        out.append("</body></html>\n")
        return "\n".join(out)


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _inline(text: str) -> str:
    """Escape text and turn Markdown ``code`` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


__all__ = ["Document", "Heading", "Paragraph", "Table", "Image"]

"""Progress of a run: tqdm bars on a terminal, one plain line per epoch everywhere.

Bars (an epoch bar and a per-epoch batch bar with live loss/accuracy/samples per second) are
drawn on stderr only when it is a terminal and ``train.quiet`` is off. The per-epoch line
(:func:`format_row`) is always passed to ``echo`` (stdout by default), also with ``--quiet`` and
when the output is piped to a file (then it is the only progress output: no escape codes).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from tqdm.auto import tqdm


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "-"


def format_row(row: dict[str, Any], epochs: int) -> str:
    """``epoch 3/10 | train loss 0.0412 acc 91.20% | val ... | test loss 0.05 acc 90.10% | lr ... | 4.2s``."""
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for split in ("train", "val", "test"):
        if f"{split}_loss" in row:
            text = f"{split} loss {row[f'{split}_loss']:.4g}"
            if f"{split}_acc" in row:
                text += f" acc {_pct(row[f'{split}_acc'])}"
            parts.append(text)
    parts.append(f"lr {row['lr']:.3g}")
    if "epoch_seconds" in row:
        parts.append(f"{row['epoch_seconds']:.1f}s")
    return " | ".join(parts)


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stderr``, where the bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Bars when ``bars`` (see the module docstring); every finished epoch's line to ``echo``."""

    def __init__(self, epochs: int, start: int, batches: int, bars: bool,
                 echo: Callable[[str], None] = print) -> None:
        self.bars = bars
        self.echo = echo
        self.batches = batches
        self.epoch_bar = None if not bars else tqdm(
            total=epochs, initial=start, desc="epochs", unit="ep", position=0, dynamic_ncols=True)
        self.batch_bar = None

    def start_epoch(self, epoch: int) -> None:
        if not self.bars:
            return
        self.batch_bar = tqdm(total=self.batches, desc=f"epoch {epoch + 1}", unit="batch",
                              leave=False, position=1, dynamic_ncols=True)

    def batch(self, info: dict[str, float]) -> None:
        if self.batch_bar is None:
            return
        post = {"loss": f"{info['loss']:.4g}", "samples/s": f"{info['samples_per_s']:.0f}"}
        if "acc" in info:
            post["acc"] = _pct(info["acc"])
        self.batch_bar.set_postfix(post, refresh=False)
        self.batch_bar.update(int(info.get("batches", 1)))  # batches since the last host read

    def end_epoch(self, line: str) -> None:
        if self.batch_bar is not None:
            self.batch_bar.close()
            self.batch_bar = None
        if self.epoch_bar is not None:
            with tqdm.external_write_mode():
                self.echo(line)
            self.epoch_bar.update(1)
        else:
            self.echo(line)
            flush = getattr(sys.stdout, "flush", None)
            if flush is not None:
                flush()

    def close(self) -> None:
        for bar in (self.batch_bar, self.epoch_bar):
            if bar is not None:
                bar.close()
        self.batch_bar = self.epoch_bar = None


__all__ = ["Progress", "format_row", "is_terminal"]

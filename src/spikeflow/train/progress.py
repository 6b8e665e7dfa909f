"""tqdm progress bars (epochs and batches, live loss/accuracy/samples per second) and epoch lines.

Quiet mode (``train.quiet``, CI) shows nothing; bars go to stderr, the epoch lines to stdout.
"""
from __future__ import annotations

from typing import Any

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


class Progress:
    """An epoch bar and a per-epoch batch bar; all methods are no-ops when ``quiet``."""

    def __init__(self, epochs: int, start: int, batches: int, quiet: bool) -> None:
        self.quiet = quiet
        self.batches = batches
        self.epoch_bar = None if quiet else tqdm(
            total=epochs, initial=start, desc="epochs", unit="ep", position=0, dynamic_ncols=True)
        self.batch_bar = None
        self._n = 0

    def start_epoch(self, epoch: int) -> None:
        if self.quiet:
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
        if self.quiet:
            return
        if self.batch_bar is not None:
            self.batch_bar.close()
            self.batch_bar = None
        tqdm.write(line)
        self.epoch_bar.update(1)

    def close(self) -> None:
        for bar in (self.batch_bar, self.epoch_bar):
            if bar is not None:
                bar.close()
        self.batch_bar = self.epoch_bar = None


__all__ = ["Progress", "format_row"]

"""Options shared by every event dataset factory: frames, augmentation, roots, missing-data errors.

Frame options (flat keys, as in configs: ``data.T``, ``data.split_by``...):

* ``representation``: ``"frames"`` (default, float32 ``[T, P, H, W]``) or ``"events"`` (the raw
  ``EVENT_DTYPE`` array after ``transform``).
* ``frames``: a ready :class:`~spikeflow.events.FrameSpec` (overrides the keys below), or
* ``T`` (alias ``n_frames``), ``split_by`` (``number|time|window|iir``), ``accumulate``
  (``sum|or|or_ms``), ``normalization``, ``window_us`` (or ``dt_ms``; giving one selects
  ``split_by="window"`` unless set), ``start_us``, ``ds``, ``merge_polarity``.

Augmentation (training split only): ``rcs=True`` (ASA random consecutive slice of
``T * window_us``), ``random_start=True`` (DCLL's training windows as He et al. 2020 used them:
``T * window_us`` from a start uniform in ``[t_first, t_last - 2 T window_us)``; without it windows
start at the first event), ``event_drop=True`` (ASA EventDrop); any ``transform(events, rng)``
applies to every split. ``clips=K`` returns ``[K, T, P, H, W]`` per sample (ASA multi-clip test windows of
``clip_length_us``, default ``T * window_us``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeflow.events import FrameSpec, SensorSize
from spikeflow.events import transforms as T

FRAME_KEYS = ("frames", "T", "n_frames", "split_by", "accumulate", "normalization", "window_us",
              "dt_ms", "start_us", "ds", "merge_polarity", "representation")


class MissingDataError(FileNotFoundError):
    """Dataset files are missing: says what, the expected layout and where it is published."""

    def __init__(self, dataset: str, missing: list[str], layout: str, source: str,
                 hint: str = "") -> None:
        shown = "\n".join(f"  - {m}" for m in missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        super().__init__(f"{dataset}: missing files or folders:\n{shown}{more}\n"
                         f"Expected layout:\n{layout}\nPublished at: {source}\n{hint}".rstrip())
        self.missing = missing


def resolve_root(root: str | os.PathLike | None, *, dataset: str, env: str, dirname: str,
                 layout: str, source: str) -> Path:
    """``root`` > ``$env`` > ``$SPIKEFLOW_DATA/dirname``; the folder must exist."""
    if root is not None:
        path = Path(root).expanduser()
    elif os.environ.get(env):
        path = Path(os.environ[env]).expanduser()
    elif os.environ.get("SPIKEFLOW_DATA"):
        path = Path(os.environ["SPIKEFLOW_DATA"]).expanduser() / dirname
    else:
        raise MissingDataError(dataset, [f"no root given (root=None, ${env} and $SPIKEFLOW_DATA "
                                         "unset)"], layout, source,
                               f"Pass root=<folder>, set ${env}, or put it at "
                               f"$SPIKEFLOW_DATA/{dirname}.")
    if not path.is_dir():
        raise MissingDataError(dataset, [f"root folder {path}"], layout, source,
                               f"Pass root=<folder> or set ${env}.")
    return path


def pop_frame_spec(options: dict[str, Any], default_T: int) -> FrameSpec | None:
    """Remove the frame keys from ``options``; the spec, or None for ``representation="events"``."""
    rep = options.pop("representation", "frames")
    if rep not in ("frames", "events"):
        raise ValueError(f"representation must be 'frames' or 'events', got {rep!r}")
    spec = options.pop("frames", None)
    T_ = options.pop("T", None)
    n_frames = options.pop("n_frames", None)
    keys = {k: options.pop(k) for k in ("split_by", "accumulate", "normalization", "window_us",
                                        "dt_ms", "start_us", "ds", "merge_polarity") if k in options}
    if rep == "events":
        return None
    if spec is not None:
        if not isinstance(spec, FrameSpec):
            raise TypeError(f"frames must be a FrameSpec, got {type(spec).__name__}")
        return spec
    dt_ms = keys.pop("dt_ms", None)
    if dt_ms is not None:
        keys.setdefault("window_us", int(round(float(dt_ms) * 1000)))
    if keys.get("window_us") is not None:
        keys.setdefault("split_by", "window")
        keys["window_us"] = int(keys["window_us"])
    n = T_ if T_ is not None else (n_frames if n_frames is not None else default_T)
    return FrameSpec(int(n), **keys)


def build_transform(split: str, sensor: SensorSize, spec: FrameSpec | None, *,
                    transform: Any = None, rcs: bool = False, event_drop: bool = False,
                    random_start: bool = False) -> Any:
    """The events transform of a split: ASA's RCS or DCLL's random start, ASA's EventDrop (train
    only), then ``transform``."""
    steps = []
    if rcs and random_start:
        raise ValueError("rcs=True and random_start=True are two training crops; choose one")
    if split == "train" and random_start:
        if spec is None or spec.split_by != "window":
            raise ValueError("random_start=True needs window frames (window_us or dt_ms): the window is "
                             "T * window_us long")
        length = spec.n_frames * spec.window_us
        steps.append(T.RandomWindowStart(length, 2 * length))
    if split == "train" and rcs:
        if spec is None or spec.split_by != "window":
            raise ValueError("rcs=True needs window frames (window_us or dt_ms): the slice is "
                             "T * window_us long")
        steps.append(T.RandomConsecutiveSlice(spec.n_frames * spec.window_us))
    if split == "train" and event_drop:
        steps.append(T.EventDrop(sensor))
    if transform is not None:
        steps.append(transform)
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else T.Compose(tuple(steps))


def clip_length(spec: FrameSpec | None, clips: int | None, clip_length_us: int | None
                ) -> int | None:
    """Length of each test clip: ``clip_length_us`` or ``T * window_us``."""
    if not clips:
        return None
    if clip_length_us is not None:
        return int(clip_length_us)
    if spec is None or spec.split_by != "window":
        raise ValueError("clips needs clip_length_us, or window frames (window_us / dt_ms) so "
                         "that a clip is T * window_us long")
    return spec.n_frames * spec.window_us

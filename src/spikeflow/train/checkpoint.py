"""Checkpoints: atomic ``torch.save``, safe ``torch.load(weights_only=True)``, compatibility checks.

A checkpoint is a plain dict (nanoGPT-like, nothing executable)::

    format       "spikeflow-checkpoint", version 1
    model_name   config's model.name
    config       the resolved config (nested dict)
    model        model.state_dict() (of the unwrapped module)
    optimizer, scheduler, scaler   their state_dicts (scaler None without AMP)
    epoch        number of completed epochs
    history      one metrics row (dict) per completed epoch
    rng          RNG states (tensors / lists, see spikeflow.train.seed)
    split        identity of the train/val split (sha256 of the index lists and sizes) or None
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeflow.utils.atomic import atomic_open

FORMAT = "spikeflow-checkpoint"
VERSION = 1

#: config keys that may change when a run is resumed (everything else must match)
RESUMABLE_KEYS = (
    "data.root", "data.eval_options", "data.on_device", "data.on_device_max_gb", "train.epochs",
    "train.quiet", "train.device", "train.amp", "train.num_workers", "train.eval_batch_size",
    "train.threads", "train.compile", "train.compile_options", "train.cuda_graphs",
    "train.log_interval", "train.pack_saved", "train.channels_last",
    "run.name", "run.dir", "run.imports", "run.tensorboard", "run.log_firing_rates",
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the model/config."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically and durably (:mod:`spikeflow.utils.atomic`: temp file, fsync,
    ``os.replace``)."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a spikeflow checkpoint with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a spikeflow checkpoint (no format={FORMAT!r} entry)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported "
                              f"(this spikeflow writes version {VERSION})")
    return ckpt


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict -> ``{"a.b": value}`` (dict-valued option fields stay whole)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and not key.endswith("options"):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def config_mismatches(saved: dict[str, Any], current: dict[str, Any],
                      ignore: tuple[str, ...] = RESUMABLE_KEYS) -> list[str]:
    """Lines ``key: checkpoint=<a>, config=<b>`` for every key that differs and must not."""
    a, b = flatten(saved), flatten(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key in ignore:
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"  {key}: checkpoint={a.get(key, '<absent>')!r}, "
                         f"config={b.get(key, '<absent>')!r}")
    return lines


def check_compatible(ckpt: dict[str, Any], config: dict[str, Any], path: str | Path) -> None:
    """Raise :class:`CheckpointError` naming every incompatible key between ``ckpt`` and ``config``."""
    lines = config_mismatches(ckpt["config"], config)
    if lines:
        raise CheckpointError(
            f"checkpoint {path} was written by an incompatible config; differing keys:\n"
            + "\n".join(lines)
            + "\nuse a new --out folder, or the checkpoint's own config (config.yaml of its run)")


def load_model_state(model: nn.Module, state: dict[str, Any], path: str | Path,
                     model_name: str | None = None, expected_name: str | None = None) -> None:
    """``model.load_state_dict(state)`` with a clear error naming the missing/unexpected/mis-shaped keys."""
    if model_name is not None and expected_name is not None and model_name != expected_name:
        raise CheckpointError(f"checkpoint {path} holds model {model_name!r}, not {expected_name!r}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and hasattr(state[k], "shape")
              and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing in checkpoint: " + ", ".join(missing[:10]))
        if unexpected:
            parts.append("not in model: " + ", ".join(unexpected[:10]))
        if shapes:
            parts.append("shape mismatch: " + "; ".join(shapes[:10]))
        raise CheckpointError(f"checkpoint {path} does not fit the model "
                              f"({model_name or 'unknown'}): " + " | ".join(parts))
    model.load_state_dict(state)


__all__ = ["FORMAT", "VERSION", "RESUMABLE_KEYS", "CheckpointError", "atomic_save",
           "load_checkpoint", "check_compatible", "config_mismatches", "load_model_state", "flatten"]

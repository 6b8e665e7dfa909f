"""Checkpoints: atomic ``torch.save``, safe ``torch.load(weights_only=True)``, compatibility checks.

A checkpoint is a plain dict (nanoGPT-like, nothing executable)::

    format       "spikeflow-checkpoint", version 2 (1: the same without checksum; still read)
    model_name   config's model.name
    config       the resolved config (nested dict)
    model        model.state_dict() (of the unwrapped module)
    optimizer, scheduler, scaler   their state_dicts (scaler None without AMP)
    epoch        number of completed epochs
    history      one metrics row (dict) per completed epoch
    rng          RNG states (tensors / lists, see spikeflow.train.seed)
    split        identity of the train/val split (sha256 of the index lists and sizes) or None
    checksum     sha256 of everything above (:func:`state_checksum`), verified on every load

The checksum walks the dict in a fixed order (keys sorted) and hashes each tensor's dtype, shape
and raw bytes and each plain value's type and ``repr``, so any flipped byte of a weight, an
optimizer moment or a history value is detected (``torch.load`` itself does not verify its
zip records). Checkpoints made by hand need ``format``, ``version``, ``model`` and ``config``
(and the rest, plus a checksum, to be resumed).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeflow.utils.atomic import atomic_open

FORMAT = "spikeflow-checkpoint"
VERSION = 2
#: versions this spikeflow reads (1 has no checksum)
READ_VERSIONS = (1, 2)
#: entry types every checkpoint needs (``spikeflow test``, reports) ...
REQUIRED = {"model": dict, "config": dict}
#: ... and the entries a resume needs on top
RESUME_REQUIRED = {"optimizer": dict, "scheduler": dict, "epoch": int, "history": list,
                   "rng": dict}

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


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, bytes):
        h.update(f"B{len(obj)};".encode())
        h.update(obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)};".encode())
        h.update(data)
    else:  # None, bool, int, float (repr round-trips exactly), anything else by type and repr
        h.update(f"{type(obj).__module__}.{type(obj).__qualname__}:{obj!r};".encode())


def state_checksum(state: dict[str, Any]) -> str:
    """sha256 (hex) of ``state`` without its ``checksum`` entry: tensors by dtype, shape and
    bytes, containers in a fixed order (dict keys sorted), other values by type and ``repr``."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "checksum"})
    return h.hexdigest()


def atomic_save(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` atomically and durably (:mod:`spikeflow.utils.atomic`: temp file, fsync,
    ``os.replace``), with ``checksum`` = :func:`state_checksum` of ``obj`` added."""
    obj = {**obj, "checksum": state_checksum(obj)}
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
    if ckpt.get("version") not in READ_VERSIONS:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r} is not supported "
                              f"(this spikeflow writes version {VERSION})")
    if "checksum" in ckpt or ckpt["version"] >= 2:
        if not isinstance(ckpt.get("checksum"), str):
            raise CheckpointError(f"{path}: version {ckpt['version']} checkpoint without a "
                                  "checksum entry (corrupt, or made by hand without "
                                  "spikeflow.train.checkpoint.atomic_save)")
        if state_checksum(ckpt) != ckpt["checksum"]:
            raise CheckpointError(f"{path}: checksum mismatch, the file is corrupt (its contents "
                                  "changed after it was written); use another checkpoint")
    _check_entries(ckpt, REQUIRED, path)
    return ckpt


def _check_entries(ckpt: dict[str, Any], required: dict[str, type], path: Path) -> None:
    bad = [f"{key} ({'missing' if key not in ckpt else type(ckpt[key]).__name__})"
           for key, tp in required.items()
           if not isinstance(ckpt.get(key), tp) or (tp is int and isinstance(ckpt[key], bool))]
    if bad:
        want = ", ".join(f"{k}: {t.__name__}" for k, t in required.items())
        raise CheckpointError(f"{path}: checkpoint entries missing or of the wrong type: "
                              f"{', '.join(bad)} (expected {want})")


def check_resumable(ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise :class:`CheckpointError` unless ``ckpt`` holds what a resume needs
    (:data:`RESUME_REQUIRED`: optimizer/scheduler states, epoch, history, RNG states)."""
    _check_entries(ckpt, RESUME_REQUIRED, Path(path))


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


__all__ = ["FORMAT", "VERSION", "READ_VERSIONS", "RESUMABLE_KEYS", "CheckpointError", "atomic_save",
           "state_checksum", "check_resumable",
           "load_checkpoint", "check_compatible", "config_mismatches", "load_model_state", "flatten"]

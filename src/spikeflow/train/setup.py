"""Setup shared by ``spikeflow train`` and ``spikeflow test``: plugins, device, run folder, model.

Run folder rules (``runs/<name>/``):

* ``--out DIR`` names the folder; otherwise ``<run.dir>/<run.name>`` when ``run.name`` is set,
  else ``<run.dir>/<data.name>-<model.name>-<YYYYmmdd-HHMMSS>``;
* ``--resume`` without ``--out``/``run.name`` picks the newest ``<data>-<model>-*`` folder
  that holds a ``checkpoint_last.pt``;
* a folder that already holds ``checkpoint_last.pt`` is continued (re-running into it resumes);
* an existing folder must be empty or a run folder (it holds ``checkpoint_last.pt``, or
  ``config.yaml`` and ``versions.json``, which a run writes first): anything else is refused
  rather than overwritten, as is a path that is a file.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeflow.train.config import Config, ConfigError

LAST = "checkpoint_last.pt"
BEST = "checkpoint_best.pt"


def import_plugins(items: list[str]) -> None:
    """Import modules (dotted names) or ``.py`` files that register models/datasets."""
    for item in items:
        if item.endswith(".py"):
            path = Path(item).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(f"run.imports: file not found: {item}")
            name = f"spikeflow_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            try:
                importlib.import_module(item)
            except ImportError as err:
                raise ConfigError(f"run.imports: cannot import module {item!r}: {err}") from None


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when ``torch.cuda.is_available()``, else ``cpu``;
    ``cuda`` -> ``cuda:<local_rank>`` (one GPU per ``torchrun`` process); ``cuda:N`` as given.
    The chosen GPU becomes the current CUDA device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name} but CUDA is not available (torch "
                              f"{torch.__version__}, torch.version.cuda={torch.version.cuda}); "
                              "use train.device=cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else local_rank
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(f"train.device={name}: GPU index {index} does not exist ({count} "
                              f"visible{'; LOCAL_RANK=' + str(local_rank) if ':' not in name else ''})")
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(setting: str | bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` on ``device`` (None = full precision).

    ``auto`` -> bfloat16 on CUDA (float16 on GPUs without bfloat16), None on CPU; ``bf16`` /
    ``fp16`` -> that dtype on CUDA; ``off`` -> None. Autocast is never used on CPU (the CPU
    kernels compute in float32), so every setting gives None there.
    """
    if isinstance(setting, bool):
        setting = "auto" if setting else "off"
    if setting not in ("auto", "off", "bf16", "fp16"):
        raise ConfigError(f"train.amp must be auto, off, bf16 or fp16, got {setting!r}")
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return AMP_DTYPES[setting]


def _base_name(cfg: Config) -> str:
    return f"{cfg.data.name}-{cfg.model.name}"


def latest_run(cfg: Config) -> Path | None:
    """The newest ``<run.dir>/<data>-<model>-*`` folder holding a last checkpoint."""
    root = Path(cfg.run.dir)
    found = [p for p in root.glob(_base_name(cfg) + "-*") if (p / LAST).is_file()]
    return max(found, key=lambda p: (p / LAST).stat().st_mtime) if found else None


def resolve_run_dir(cfg: Config, out: str | Path | None, resume: bool) -> Path:
    """The run folder for ``cfg`` (see the module docstring)."""
    if out is not None:
        return Path(out)
    if cfg.run.name:
        return Path(cfg.run.dir) / cfg.run.name
    if resume:
        found = latest_run(cfg)
        if found is None:
            raise ConfigError(f"--resume: no run of {_base_name(cfg)} with a {LAST} under "
                              f"{cfg.run.dir}/; pass --out RUN_DIR")
        return found
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(cfg.run.dir) / f"{_base_name(cfg)}-{stamp}"
    i = 1
    while path.exists():
        path = Path(cfg.run.dir) / f"{_base_name(cfg)}-{stamp}-{i}"
        i += 1
    return path


#: files that mark a folder as a run folder (a run writes config.yaml and versions.json first)
RUN_MARKERS = ("config.yaml", "versions.json")


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a spikeflow run folder (see the module docstring)."""
    return (path / LAST).is_file() or all((path / name).is_file() for name in RUN_MARKERS)


def check_run_folder(path: Path) -> None:
    """Refuse a run folder path that is a file or a non-empty folder that is not a run folder."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path}: this is a file, not a run folder; choose a folder path")
    if path.is_dir() and not is_run_folder(path) and any(path.iterdir()):
        raise ConfigError(f"--out {path}: the folder is not empty and is not a spikeflow run folder "
                          f"(no {LAST}, {' or '.join(RUN_MARKERS)}); refusing to write into it "
                          "(choose a new or empty folder)")


def build_model(cfg: Config) -> nn.Module:
    """``create_model(model.name, **model.options)`` with errors naming the config keys."""
    from spikeflow.models import create_model  # noqa: PLC0415

    try:
        model = create_model(cfg.model.name, **cfg.model.options)
    except TypeError as err:
        raise ConfigError(f"model.options do not fit model {cfg.model.name!r}: {err}") from None
    except ValueError as err:
        if "unknown model" in str(err):
            raise ConfigError(f"model.name: {err}") from None
        raise
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {cfg.model.name!r} did not build an nn.Module")
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def format_seconds(seconds: float) -> str:
    """``83.2`` -> ``'1m23s'``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s"


def summarize(history: list[dict[str, Any]]) -> dict[str, Any]:
    """accuracy-A (max test acc), accuracy-B (test acc at the best val epoch, ties -> later) and
    the best epoch (by val when present, else test; lowest loss when there is no accuracy)."""
    if not history:
        return {"acc_A": None, "acc_B": None, "best_epoch": None}
    has_acc = "test_acc" in history[0]
    has_val = any(k.startswith("val_") for k in history[0])
    key = ("val" if has_val else "test") + ("_acc" if has_acc else "_loss")
    sign = 1.0 if has_acc else -1.0
    best = None
    for row in history:
        if best is None or sign * row[key] >= sign * best[key]:
            best = row
    out: dict[str, Any] = {"best_epoch": best["epoch"], "acc_A": None, "acc_B": None}
    if has_acc:
        out["acc_A"] = max(r["test_acc"] for r in history)
        if has_val:
            out["acc_B"] = best["test_acc"]
    else:
        out["best_test_loss"] = best["test_loss"]
    return out


__all__ = ["LAST", "BEST", "is_run_folder", "check_run_folder", "import_plugins", "resolve_device", "resolve_amp", "AMP_DTYPES", "resolve_run_dir", "latest_run",
           "build_model", "count_params", "format_seconds", "summarize"]

"""Evaluating a finished run: ``spikeflow test RUN_DIR_OR_CHECKPOINT`` and ``metrics_test.json``.

:func:`write_test_metrics` is the one call site of :mod:`spikeflow.metrics` at the end of training
and in ``spikeflow test``: ``spikeflow.metrics.evaluate_metrics(model, loader, device,
prepare=...)`` collects accuracy, NASFR, per-layer rates, synaptic operations and energy, and
``spikeflow.metrics.write_metrics_json`` writes them to ``<run>/metrics_test.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from spikeflow.train import checkpoint as ck
from spikeflow.train.config import Config, ConfigError, apply_overrides, config_from_dict
from spikeflow.train.data import (EVAL_SEED, BatchEncoder, create_configured, dataset_options,
                                  make_holdout, make_run_loader)
from spikeflow.train.distributed import DistInfo
from spikeflow.train.loop import Step, evaluate
from spikeflow.train.losses import build_loss
from spikeflow.train.setup import (BEST, LAST, build_model, import_plugins, resolve_amp,
                                   resolve_device)
from spikeflow.utils.numfmt import format_energy_pj, format_number

SPLITS = ("train", "val", "test")


def write_test_metrics(model: nn.Module, loader: Any, step: Step, run_dir: Path,
                       is_main: bool = True, name: str = "metrics_test.json") -> dict[str, Any] | None:
    """Every metric of ``model`` on ``loader`` via :mod:`spikeflow.metrics`, written to
    ``run_dir/name`` by the main process (all processes must call it under DDP)."""
    from spikeflow import metrics  # noqa: PLC0415

    clips = getattr(loader, "clips", 0)

    def prepare(batch: Any, device: Any) -> tuple[Any, Any]:
        y = batch[1].repeat_interleave(clips, dim=0) if clips else batch[1]
        return step.encode(batch[0]), y.to(device)

    result = metrics.evaluate_metrics(model, loader, step.device, prepare=prepare,
                                      accuracy=step.accuracy)
    if clips and step.accuracy != "none":
        # metrics see every clip as a sample; the reported accuracy follows ASA's clip rule
        result["clips"] = clips
        result["clip_accuracy"] = result.get("accuracy")
        result["accuracy"] = evaluate(model, loader, step)["acc"]
    if is_main:
        metrics.write_metrics_json(Path(run_dir) / name, result)
    return result


def resolve_checkpoint(target: str | Path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoint_best.pt`` (else ``checkpoint_last.pt``)."""
    target = Path(target)
    if target.is_dir():
        for name in (BEST, LAST):
            if (target / name).is_file():
                return target / name
        raise ck.CheckpointError(f"{target} holds no {BEST} or {LAST}")
    if not target.exists():
        raise ck.CheckpointError(f"no such run folder or checkpoint: {target}")
    return target


def _dataset(cfg: Config, split: str, run_dir: Path) -> Any:
    opts = dataset_options(cfg)
    if split == "test":
        return create_configured(cfg, cfg.data.test_split, {**opts, **cfg.data.eval_options},
                                 "data.options/data.eval_options")
    full = create_configured(cfg, cfg.data.train_split, opts)
    if not cfg.data.has_val:
        if split == "val":
            raise ConfigError("--split val: this run has no validation split (data.val_split=0)")
        return full
    if not (run_dir / "split.json").is_file():
        raise ck.CheckpointError(f"--split {split}: the run's split file {run_dir}/split.json "
                                 "is missing")
    train, val, _ = make_holdout(full, cfg, run_dir)
    return val if split == "val" else train


def evaluate_checkpoint(target: str | Path, split: str = "test", overrides: list[str] | None = None,
                    imports: list[str] | None = None, metrics: bool = True,
                    echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate the checkpoint (or run folder) ``target`` on ``split``; returns loss/accuracy.

    The model and data come from the checkpoint's own config (``overrides`` may change e.g.
    ``data.root`` or ``train.device``). Plugins listed in the checkpoint are NOT imported (a
    checkpoint is data, not code): pass them as ``imports``.
    """
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = resolve_checkpoint(target)
    ckpt = ck.load_checkpoint(path)
    data = apply_overrides(ckpt["config"], list(overrides or []))
    data.setdefault("run", {})["imports"] = list(imports or [])
    cfg = config_from_dict(data)
    import_plugins(cfg.run.imports)
    device = resolve_device(cfg.train.device)
    model = build_model(cfg)
    ck.load_model_state(model, ckpt["model"], path, ckpt.get("model_name"), cfg.model.name)
    model.to(device)
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    ds = _dataset(cfg, split, path.parent)
    loader = make_run_loader(ds, cfg, DistInfo(), False, device)
    encoder = BatchEncoder(cfg.data.encoding, cfg.data.T, device, cfg.train.channels_last)
    encoder.reseed(EVAL_SEED)
    step = Step(build_loss(cfg.train.loss, cfg.train.loss_options), encoder, device,
                cfg.train.accuracy, resolve_amp(cfg.train.amp, device))
    res = evaluate(model, loader, step)
    out = {"checkpoint": str(path), "epoch": ckpt.get("epoch"), "split": split, **res}
    acc = f" acc {100 * res['acc']:.2f}%" if "acc" in res else ""
    echo(f"{path} (epoch {ckpt.get('epoch')}) on {split} ({res['samples']} samples): "
         f"loss {res['loss']:.5g}{acc}")
    if metrics:
        name = "metrics_test.json" if split == "test" else f"metrics_{split}.json"
        encoder.reseed(EVAL_SEED)
        out["metrics"] = write_test_metrics(model, loader, step, path.parent, True, name)
        out.update(headline_metrics(out["metrics"]))
        for line in metrics_lines(out["metrics"]):
            echo(line)
        echo(f"metrics written to {path.parent / name}")
    return out


def headline_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """The keys ``spikeflow test`` reports (``--json`` too): ``nasfr``, ``firing_rates``
    ({layer: rate}), ``synops`` ({``ac``, ``mac``} per sample over all T steps), ``energy_pj``
    (per sample) and ``energy_model`` (pJ per AC / MAC)."""
    ops = m.get("synops") or {}
    return {"nasfr": m.get("nasfr"), "firing_rates": dict(m.get("firing_rates") or {}),
            "synops": {"ac": ops.get("ac"), "mac": ops.get("mac")},
            "energy_pj": m.get("energy_pj"), "energy_model": m.get("energy_model")}


def _count(value: float | None) -> str:
    return "-" if value is None else format_number(float(value))


def metrics_lines(m: dict[str, Any]) -> list[str]:
    """Printable lines: NASFR and per-layer firing rates; ACs/MACs and energy per sample."""
    h = headline_metrics(m)
    nasfr = "-" if h["nasfr"] is None else f"{h['nasfr']:.4f}"
    rates = ", ".join(f"{k} {v:.4f}" for k, v in h["firing_rates"].items()) or "no spiking layers"
    model = h["energy_model"] or {}
    return [f"NASFR {nasfr} | firing rates: {rates}",
            f"synaptic operations per sample: ACs {_count(h['synops']['ac'])}, MACs "
            f"{_count(h['synops']['mac'])} | energy {format_energy_pj(h['energy_pj'])} per sample "
            f"({model.get('e_ac_pj', '?')} pJ/AC, {model.get('e_mac_pj', '?')} pJ/MAC)"]


__all__ = ["write_test_metrics", "evaluate_checkpoint", "resolve_checkpoint", "headline_metrics",
           "metrics_lines", "SPLITS"]

"""Datasets, the train/val hold-out and data loaders of a run.

Batches reach the model time-first ``[T, B, ...]``:

* sequence items ``[T, ...]`` (``data.encoding: none``) are stacked along dim 1 by
  :func:`spikeflow.data.collate_time_first` (one contiguous copy, no transpose); with ``data.T``
  set, every batch must have ``data.T`` steps in dim 0 (:class:`BatchEncoder` raises otherwise,
  naming a swapped ``[B, T, ...]`` layout);
* static items ``[C, H, W]`` are stacked batch-first and encoded on the device by
  :class:`BatchEncoder` (``repeat`` is a view; ``poisson`` draws from a seeded generator).

Targets stay batch-first: ``[B]`` class indices or ``[B, ...]`` tensors.

:func:`make_run_loader` picks how batches reach the device (:mod:`spikeflow.train.device_data`):
a dataset held on the device (``data.on_device``), or a DataLoader, on CUDA with pinned memory
and event counts as uint8.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from spikeflow.data.loader import check_time_first, collate_time_first, stack_targets
from spikeflow.train.config import Config, ConfigError
from spikeflow.train.distributed import DistInfo, EpochSampler
from spikeflow.train.seed import derive_seed, seed_worker

SPLIT_FILE = "split.json"
EVAL_SEED = 977  # fixed seed of evaluation-time randomness (Poisson encoding)


def collate_clips(batch: Sequence[tuple[Any, Any]]) -> tuple[Tensor, Tensor]:
    """Multi-clip items ``([K, T, ...], y)`` -> ``([T, B*K, ...], targets [B])``; the clips of a
    sample are adjacent in the batch (index ``b * K + k``)."""
    xs, ys = zip(*batch)
    x = torch.stack([torch.as_tensor(v) for v in xs], 0)      # [B, K, T, ...]
    return x.movedim(2, 0).flatten(1, 2).contiguous(), stack_targets(ys)


def dataset_clips(ds: Any) -> int:
    """``K`` when items hold ``K`` test clips (event datasets built with ``clips=K``), else 0."""
    clips = getattr(ds, "clips", None)
    return int(clips) if isinstance(clips, int) and clips > 0 else 0


def collate_batch_first(batch: Sequence[tuple[Any, Any]]) -> tuple[Tensor, Tensor]:
    """Items ``([C, H, W], y)`` -> ``([B, C, H, W], targets)`` (encoded to time later)."""
    xs, ys = zip(*batch)
    return torch.stack([torch.as_tensor(x) for x in xs], 0), stack_targets(ys)


class BatchEncoder:
    """Turns a batch into the model input ``[T, B, ...]`` on ``device``.

    ``encoding="none"``: the batch is already time-first. ``repeat``/``poisson``: the static batch
    ``[B, ...]`` is encoded with :mod:`spikeflow.data.encoders`; Poisson spikes come from
    ``generator`` (re-seeded per epoch by the loop; evaluation uses a fixed seed).
    uint8 batches (exact event counts, :mod:`spikeflow.train.device_data`) become float32 on the
    device. ``channels_last``: every step of a 5-D ``[T, B, C, H, W]`` result is made
    channels-last. ``deterministic``: the encoding draws no random numbers (``none``/``repeat``).
    """

    def __init__(self, encoding: str, T: int | None, device: torch.device,
                 channels_last: bool = False) -> None:
        self.encoding, self.T, self.device = encoding, T, device
        self.channels_last = channels_last
        self.generator: torch.Generator | None = None
        self.encoder: Callable[..., Tensor] | None = None
        if encoding != "none":
            from spikeflow.data.encoders import create_encoder  # noqa: PLC0415

            self.encoder = create_encoder(encoding, T)
            if getattr(self.encoder, "random", True):  # unknown: give it a generator
                self.generator = torch.Generator(device=device)

    def reseed(self, seed: int) -> None:
        if self.generator is not None:
            self.generator.manual_seed(seed)

    @property
    def deterministic(self) -> bool:
        return self.generator is None

    def __call__(self, x: Tensor) -> Tensor:
        if self.encoder is None and self.T is not None and x.shape[0] != self.T:
            self._wrong_steps(x)
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = x.float()
        x = self._encode(x)
        return steps_channels_last(x) if self.channels_last else x

    def _wrong_steps(self, x: Tensor) -> None:
        """Raise for a time-first batch whose dim 0 is not ``data.T`` (swapped or wrong T)."""
        if x.dim() < 2 or x.shape[1] == self.T:
            check_time_first(x, self.T, "a batch")     # says time and batch look swapped
        raise ValueError(f"a batch has {x.shape[0]} steps in dim 0 (shape {tuple(x.shape)}) but "
                         f"data.T={self.T}: the dataset's items have {x.shape[0]} steps; make "
                         "data.T match the dataset (or the dataset option that sets its T)")

    def _encode(self, x: Tensor) -> Tensor:
        return x if self.encoder is None else self.encoder(x, self.generator)


def steps_channels_last(x: Tensor) -> Tensor:
    """``[T, B, C, H, W]`` with every step a channels-last batch; other ranks are returned as is.
    An input repeated over time (a stride-0 view, the ``repeat`` encoding) stays a view of one
    channels-last step, so models can still compute its static part once."""
    if x.dim() != 5:
        return x
    if x.stride(0) == 0:
        return x[0].contiguous(memory_format=torch.channels_last).unsqueeze(0).expand(x.shape)
    return x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, x.shape[:2])


@dataclass
class Datasets:
    """The datasets of a run; ``val`` is None without a hold-out; ``split_id`` identifies it."""

    train: Dataset
    val: Dataset | None
    test: Dataset
    split_id: str | None


def dataset_options(cfg: Config) -> dict[str, Any]:
    """Keyword options for ``create_dataset``: ``data.options`` (+ ``T`` for sequence data)."""
    opts = dict(cfg.data.options)
    if cfg.data.encoding == "none" and cfg.data.T is not None:
        opts.setdefault("T", cfg.data.T)
    return opts


def _targets(ds: Any) -> np.ndarray:
    targets = getattr(ds, "targets", None)
    if targets is None:
        raise ValueError(f"data.val_method=accuracy_b needs dataset labels, but "
                         f"{type(ds).__name__} has no `targets` attribute; use "
                         "data.val_method=random")
    return np.asarray(targets)


def split_identity(path: Path) -> str:
    """sha256 of the saved split file (stored in checkpoints, checked on resume)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_holdout(full: Any, cfg: Config, run_dir: Path | None) -> tuple[Any, Any, str]:
    """(train part, val part, split identity); the split is loaded from/saved to ``run_dir``."""
    from spikeflow.data.splits import (  # noqa: PLC0415
        SubsetDataset, load_split, make_split, random_split_indices, save_split)

    path = run_dir / SPLIT_FILE if run_dir is not None else None
    if path is not None and path.is_file():
        split = load_split(path)
        if split.n != len(full):
            raise ValueError(f"{path}: the saved split is for {split.n} samples but the dataset "
                             f"{cfg.data.name} has {len(full)}; use a new run folder")
    else:
        d = cfg.data
        if d.val_method == "random":
            size = d.val_size if d.val_size is not None else round(d.val_split * len(full))
            split = random_split_indices(len(full), size, d.split_seed)
        else:
            split = make_split("accuracy_b", _targets(full), val_ratio=d.val_split)
        if path is not None:
            save_split(path, split)
    if len(split.val) == 0 or len(split.train) == 0:
        raise ValueError(f"the hold-out leaves an empty part (train {len(split.train)}, val "
                         f"{len(split.val)}); change data.val_split / data.val_size")
    ident = split_identity(path) if path is not None else hashlib.sha256(
        json.dumps([split.train.tolist(), split.val.tolist()]).encode()).hexdigest()
    return SubsetDataset(full, split.train), SubsetDataset(full, split.val), ident


def check_dataset_options(cfg: Config, options: dict[str, Any],
                          where: str = "data.options") -> None:
    """Raise :class:`ConfigError` naming ``where`` if ``options`` has a key the factory of
    ``data.name`` does not take (when its signature lists them all; factories with ``**options``
    check their options themselves, see :func:`create_configured`)."""
    import inspect  # noqa: PLC0415

    from spikeflow.data import DATASETS, list_datasets  # noqa: PLC0415

    name = cfg.data.name
    list_datasets()  # imports the dataset modules (registers the built-in datasets)
    try:
        factory = DATASETS.get(name)
    except ValueError as err:
        raise ConfigError(f"data.name: {err}") from None
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return
    if not params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [k for k, p in params.items() if k not in ("root", "split")
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown {where} key {unknown[0]!r} for dataset {name!r}; "
                          f"allowed: {', '.join(allowed) or 'none'}")


def create_configured(cfg: Config, split: str, options: dict[str, Any],
                      where: str = "data.options") -> Any:
    """``create_dataset(data.name, root=data.root, split=split, **options)`` with the option
    names checked against what the dataset accepts: the factory's keyword parameters when it
    lists them all (:func:`check_dataset_options`), else the factory's own "unknown option"
    ``TypeError``; both become a :class:`ConfigError` naming ``where`` and the dataset."""
    from spikeflow.data import create_dataset  # noqa: PLC0415

    check_dataset_options(cfg, options, where)
    try:
        return create_dataset(cfg.data.name, root=cfg.data.root, split=split, **options)
    except TypeError as err:
        text = str(err)
        if "unexpected keyword argument" in text or "unknown option" in text:
            raise ConfigError(f"{where} for dataset {cfg.data.name!r}: {text}") from None
        raise


def build_datasets(cfg: Config, run_dir: Path | None) -> Datasets:
    """Create train/test (and the hold-out val) datasets named by ``cfg.data``."""
    opts = dataset_options(cfg)
    train = create_configured(cfg, cfg.data.train_split, opts)
    test = create_configured(cfg, cfg.data.test_split, {**opts, **cfg.data.eval_options},
                             "data.options/data.eval_options")
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"dataset {cfg.data.name}: empty split (train {len(train)}, "
                         f"test {len(test)})")
    val, split_id = None, None
    if cfg.data.has_val:
        train, val, split_id = make_holdout(train, cfg, run_dir)
    return Datasets(train, val, test, split_id)


def per_rank_batch(batch_size: int, info: DistInfo) -> int:
    """The global ``train.batch_size`` divided over ranks (must divide evenly)."""
    if batch_size % info.world:
        raise ValueError(f"train.batch_size={batch_size} is the global batch and must be divisible "
                         f"by the number of processes ({info.world})")
    return batch_size // info.world


def _batch_and_sampler(n: int, cfg: Config, info: DistInfo, train: bool) -> tuple[int, EpochSampler]:
    t = cfg.train
    batch = per_rank_batch(t.batch_size if train else (t.eval_batch_size or t.batch_size), info)
    return batch, EpochSampler(n, info.rank, info.world, shuffle=train, seed=t.seed, pad=train)


def make_loader(ds: Dataset, cfg: Config, info: DistInfo, train: bool,
                pin_memory: bool = False, compact: bool = False) -> DataLoader:
    """A loader with an :class:`EpochSampler` (shuffled + padded for training, sharded for eval)
    and a generator re-seeded every epoch (worker seeds). Call ``sampler.set_epoch`` each epoch.

    ``compact``: event datasets whose items are exact counts yield them as uint8
    (:class:`~spikeflow.train.device_data.CountFrames`; the encoder makes them float32)."""
    t = cfg.train
    batch, sampler = _batch_and_sampler(len(ds), cfg, info, train)
    clips = dataset_clips(ds)
    if clips and train:
        raise ValueError("multi-clip items ([K, T, ...]) are a test protocol: set `clips` in "
                         "data.eval_options, not data.options")
    if compact:
        from spikeflow.train.device_data import count_view  # noqa: PLC0415

        ds = count_view(ds) or ds
    collate = collate_time_first if cfg.data.encoding == "none" else collate_batch_first
    gen = torch.Generator()
    gen.manual_seed(derive_seed(t.seed, info.rank))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=t.num_workers,
                        collate_fn=collate_clips if clips else collate, worker_init_fn=seed_worker,
                        generator=gen, drop_last=train and t.drop_last, pin_memory=pin_memory)
    loader.clips = clips  # read by evaluate(): K clips per sample, 0 for plain items
    return loader


def make_run_loader(ds: Dataset, cfg: Config, info: DistInfo, train: bool,
                    device: torch.device) -> Any:
    """The loader of a run on ``device``: a :class:`~spikeflow.train.device_data.DeviceLoader`
    when ``data.on_device`` holds ``ds`` there (same batches, same order), else
    :func:`make_loader` (on CUDA with pinned memory and uint8 event counts)."""
    from spikeflow.train.device_data import (DeviceLoader, hold_on_device,  # noqa: PLC0415
                                             host_tensors)

    d = cfg.data
    if hold_on_device(ds, d.on_device, device, d.on_device_max_gb, train):
        batch, sampler = _batch_and_sampler(len(ds), cfg, info, train)
        return DeviceLoader(host_tensors(ds), device, sampler, batch,
                            train and cfg.train.drop_last, d.encoding == "none", ds)
    cuda = device.type == "cuda"
    return make_loader(ds, cfg, info, train, pin_memory=cuda, compact=cuda)


def set_loader_epoch(loader: DataLoader, epoch: int, seed: int, rank: int) -> None:
    """Seed the loader's order, worker seeds and the dataset's per-item augmentation
    (``set_epoch`` of event datasets) for ``epoch``: only ``seed``/``epoch``/``rank`` matter."""
    loader.sampler.set_epoch(epoch)
    loader.generator.manual_seed(derive_seed(seed, epoch, rank, 7))
    set_epoch = getattr(loader.dataset, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


__all__ = ["SPLIT_FILE", "EVAL_SEED", "collate_time_first", "collate_batch_first", "collate_clips",
           "dataset_clips", "BatchEncoder", "Datasets", "dataset_options", "make_holdout",
           "build_datasets", "create_configured", "check_dataset_options", "make_loader",
           "make_run_loader", "set_loader_epoch", "per_rank_batch", "split_identity"]

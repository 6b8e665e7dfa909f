"""Getting batches onto the training device: datasets held there, uint8 event counts, prefetch.

* :class:`DeviceLoader`: a whole dataset held on the device as one tensor and batched there by
  index (``index_select``), in exactly the order of the regular loader (the same
  :class:`~spikeflow.train.distributed.EpochSampler` permutation of ``(seed, epoch)``, the same
  rank shard and ``drop_last``), so a run sees the same batches with ``data.on_device`` on or
  off. Static images with a deterministic transform (none or normalisation) are stored as their
  float32 items, bit-identical to ``ds[i]``; cached event frames without normalisation as their
  integer counts in uint8 (1 byte per value; float32 when some count exceeds 255).
* :class:`CountFrames`: the loader view of an event dataset whose items are exact counts; items
  travel as uint8 from the frame cache through (pinned) host memory.
* uint8 batches become float32 on the device (:class:`spikeflow.train.data.BatchEncoder`).
* :func:`device_batches`: on CUDA, DataLoader batches are copied on a side stream with
  ``non_blocking`` copies, batch ``i + 1`` issued before step ``i`` is handed out.

Sequence batches are time-first ``[T, B, ...]`` (held as ``[T, N, ...]`` and selected along
dim 1), static batches ``[B, C, H, W]`` (encoded to time on the device afterwards).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from spikeflow.train.distributed import EpochSampler
from spikeflow.train.typed import ConfigError

GIB = 1 << 30


@dataclass
class HostTensors:
    """A dataset as tensors in host memory: ``x`` the stacked items ``[N, ...]``, ``y`` the
    targets ``[N]`` (int64 class indices)."""

    x: Tensor
    y: Tensor


def _base(ds: Any) -> tuple[Any, np.ndarray | None]:
    """The dataset under any :class:`~spikeflow.data.splits.SubsetDataset` layers and the
    indices into it (None = all, in order)."""
    from spikeflow.data.splits import SubsetDataset  # noqa: PLC0415

    indices: np.ndarray | None = None
    while isinstance(ds, SubsetDataset):
        indices = ds.indices if indices is None else ds.indices[indices]
        ds = ds.dataset
    return ds, indices


def _deterministic(transform: Any) -> bool:
    from spikeflow.data.transforms import Compose, Normalize  # noqa: PLC0415

    if transform is None or isinstance(transform, Normalize):
        return True
    return isinstance(transform, Compose) and all(_deterministic(t) for t in transform.transforms)


def _event_counts_exact(ds: Any) -> bool:
    """An event dataset whose items are exactly its cached counts as float32."""
    return ds.frame_cache is not None and ds.frames.normalization is None


def unholdable_reason(ds: Any) -> str | None:
    """Why ``ds`` cannot be held on the device as tensors (None when it can)."""
    from spikeflow.data.event_dataset import EventDataset  # noqa: PLC0415
    from spikeflow.data.static import ImageDataset  # noqa: PLC0415

    base, _ = _base(ds)
    if isinstance(base, ImageDataset):
        if not _deterministic(base.transform):
            return (f"its transform {type(base.transform).__name__} is random per item "
                    "(augmentation); set the dataset option augment=false to hold it")
        return None
    if isinstance(base, EventDataset):
        if base.clips:
            return "its items hold several clips (multi-clip test protocol)"
        if not _event_counts_exact(base):
            return ("its frames are not exact cached counts (a random event transform, raw "
                    "events, cache=false, or a frame normalisation)")
        return None
    return (f"{type(base).__name__} is neither an in-memory image dataset (mnist, "
            "fashion_mnist, cifar10, digits) nor a cached event-frame dataset")


def resident_nbytes(ds: Any) -> int:
    """Bytes ``ds`` takes on the device (float32 images, uint8 event counts)."""
    from spikeflow.data.static import ImageDataset  # noqa: PLC0415

    base, _ = _base(ds)
    if isinstance(base, ImageDataset):
        return len(ds) * math.prod(base.images.shape[1:]) * 4
    return len(ds) * math.prod(base.frame_shape())


def host_tensors(ds: Any) -> HostTensors:
    """All items of a holdable dataset (:func:`unholdable_reason` is None) stacked in host
    memory; ``x[i]`` equals ``ds[i][0]`` exactly (after ``.float()`` for uint8 counts)."""
    from spikeflow.data.static import ImageDataset  # noqa: PLC0415

    why = unholdable_reason(ds)
    if why is not None:
        raise ValueError(f"{type(ds).__name__} cannot be held as tensors: {why}")
    base, idx = _base(ds)
    idx = np.arange(len(base)) if idx is None else np.asarray(idx, dtype=np.int64)
    y = torch.from_numpy(np.asarray(base.targets)[idx].astype(np.int64))
    if isinstance(base, ImageDataset):
        # the same float32 arithmetic as ImageDataset.image(i), on all images at once
        x = torch.from_numpy(np.asarray(base.images[idx], dtype=np.float32) / base.scale)
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()
        if base.transform is not None:
            x = base.transform(x)  # normalisation: elementwise, the same per item or batched
        return HostTensors(x.contiguous(), y)
    out = np.empty((len(idx), *base.frame_shape()), dtype=np.uint8)
    for j, i in enumerate(idx):
        counts = base.frame_counts(int(i))
        if counts.dtype != out.dtype:
            out = out.astype(np.float32)  # a count above 255 (or non-integer frames): exact float
        out[j] = counts
    return HostTensors(torch.from_numpy(out), y)


def hold_on_device(ds: Any, setting: str | bool, device: torch.device, max_gb: float,
                   train: bool) -> bool:
    """Whether ``data.on_device`` (``setting``) holds ``ds`` on ``device``.

    ``auto``: on CUDA when ``ds`` can be held and takes at most ``max_gb`` GiB and half of the
    free device memory. ``true``: whenever it can be held (an error for the training set when
    it cannot). ``false``: never.
    """
    if setting is False:
        return False
    why = unholdable_reason(ds)
    if setting is True:
        if why is not None and train:
            raise ConfigError(f"data.on_device=true: the training set cannot be held on the "
                              f"device: {why}; use data.on_device=auto or false")
        return why is None
    if device.type != "cuda" or why is not None:
        return False
    need = resident_nbytes(ds)
    free = torch.cuda.mem_get_info(device)[0]
    return need <= max_gb * GIB and need <= free // 2


class DeviceLoader:
    """Batches ``(x, y)`` of a dataset held on ``device``, in the order of ``sampler``.

    ``time_first``: items are sequences ``[T, ...]``, held as ``[T, N, ...]``; batches are
    ``[T, B, ...]`` (as :func:`~spikeflow.train.data.collate_time_first`). Otherwise batches
    are ``[B, ...]``. Per epoch one index tensor goes to the device; every batch is one
    ``index_select`` of ``x`` and of ``y`` there (no host work, no synchronisation).
    """

    on_device = True
    clips = 0

    def __init__(self, data: HostTensors, device: torch.device, sampler: EpochSampler,
                 batch_size: int, drop_last: bool, time_first: bool, dataset: Any = None) -> None:
        x = data.x.movedim(0, 1).contiguous() if time_first else data.x
        self.x = x.to(device)
        self.y = data.y.to(device)
        self.dim = 1 if time_first else 0
        self.device = device
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.dataset = dataset
        self.generator = torch.Generator()  # re-seeded by set_loader_epoch like a DataLoader's

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def nbytes(self) -> int:
        return self.x.numel() * self.x.element_size() + self.y.numel() * self.y.element_size()

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.tensor(list(self.sampler), dtype=torch.long)
        if self.device.type == "cuda":
            order = order.pin_memory()
        order = order.to(self.device, non_blocking=True)
        b = self.batch_size
        for k in range(len(self)):
            sel = order[k * b:(k + 1) * b]
            yield self.x.index_select(self.dim, sel), self.y.index_select(0, sel)


class CountFrames(Dataset):
    """An event dataset whose items are exact counts, with the counts as items: uint8 tensors
    when the cached counts fit, else float32 (then equal to ``dataset[i][0]``). Attributes
    (``targets``, ``clips``, ``set_epoch``, ...) are the dataset's."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        counts = self.dataset.frame_counts(i)
        x = counts if counts.dtype == np.uint8 else counts.astype(np.float32)
        return torch.from_numpy(x), int(self.dataset.targets[i])

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def count_view(ds: Any) -> Any | None:
    """``ds`` with its items as uint8 counts (:class:`CountFrames`, through subsets), or None
    when its items are not exact counts."""
    from spikeflow.data.event_dataset import EventDataset  # noqa: PLC0415
    from spikeflow.data.splits import SubsetDataset  # noqa: PLC0415

    if isinstance(ds, SubsetDataset):
        inner = count_view(ds.dataset)
        return None if inner is None else SubsetDataset(inner, ds.indices)
    if isinstance(ds, EventDataset) and _event_counts_exact(ds):
        return CountFrames(ds)
    return None


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def _record(batch: Any, stream: torch.cuda.Stream) -> None:
    if isinstance(batch, Tensor):
        batch.record_stream(stream)
    elif isinstance(batch, (tuple, list)):
        for b in batch:
            _record(b, stream)


def _prefetch_cuda(loader: Iterable, device: torch.device) -> Iterator[Any]:
    copy_stream = torch.cuda.Stream(device)

    def issue(batch: Any) -> tuple[Any, torch.cuda.Event]:
        with torch.cuda.stream(copy_stream):
            moved = _to_device(batch, device)
            done = torch.cuda.Event()
            done.record(copy_stream)
        return moved, done

    it = iter(loader)
    first = next(it, None)
    pending = None if first is None else issue(first)
    while pending is not None:
        batch, done = pending
        following = next(it, None)
        pending = None if following is None else issue(following)  # copy of i+1 before step i
        main = torch.cuda.current_stream(device)
        main.wait_event(done)
        _record(batch, main)  # the allocator must not reuse these blocks before step i is done
        yield batch


def device_batches(loader: Iterable, device: torch.device) -> Iterable:
    """The batches of ``loader`` for ``device``: as they come on CPU or from a
    :class:`DeviceLoader`; on CUDA copied ahead on a side stream (pinned memory makes the copy
    asynchronous; batch ``i + 1`` is in flight while step ``i`` runs)."""
    if device.type != "cuda" or getattr(loader, "on_device", False):
        return loader
    return _prefetch_cuda(loader, device)


__all__ = ["HostTensors", "DeviceLoader", "CountFrames", "count_view", "device_batches",
           "hold_on_device", "host_tensors", "resident_nbytes", "unholdable_reason"]

"""Multi-process training helpers (``torchrun``): process group, rank info, sum-reduction, samplers.

Launch: ``torchrun --nproc_per_node N -m spikeflow train CONFIG`` (NCCL on GPUs, Gloo on CPU).
``train.batch_size`` is the global batch; each of the N ranks takes ``batch_size / N``.

:class:`EpochSampler` gives every rank a strided shard of one permutation that depends only on
``(seed, epoch)``. With ``world`` ranks and a per-rank batch ``b``, global batch ``k`` (the union of
every rank's batch ``k``) is the same sample set as batch ``k`` of a single process with batch
``world * b``, which is what makes DDP and single-process training agree.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    """Rank of this process, number of processes, its local (per-node) rank, and whether it was
    launched by ``torchrun`` (then it joins a process group even alone: ``--nproc_per_node 1``
    runs the DDP code path, e.g. to check NCCL on one GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    launched: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1 or self.launched


def env_dist_info() -> DistInfo:
    """Rank/world from the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``;
    ``MASTER_ADDR``/``MASTER_PORT`` mark a launch, the rendezvous of ``init_process_group``)."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    launched = all(k in env for k in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"))
    return DistInfo(int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0")), launched)


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by ``torchrun`` (no-op for a plain single process);
    NCCL on CUDA (bound to ``device``), Gloo on CPU."""
    info = env_dist_info()
    if info.enabled and not dist.is_initialized():
        backend = backend_for(device)
        if backend == "nccl":
            dist.init_process_group(backend=backend, device_id=device)
        else:
            dist.init_process_group(backend=backend)
    return info


def shutdown_distributed(meet: bool = False) -> None:
    """Leave the process group; with ``meet`` (a normal end) all ranks meet at a barrier first: a
    Gloo rank that tears down while a peer is still at work can abort with "terminate called
    without an active exception" (seen once in a few runs of the two-process test under load).
    After an error there is no barrier (the peers may never reach it)."""
    if dist.is_available() and dist.is_initialized():
        try:
            if meet:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Sum a list of numbers over all ranks (float64; identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on any rank (e.g. a non-finite loss)."""
    return all_reduce_sum([1.0 if flag else 0.0], device)[0] > 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class EpochSampler(Sampler[int]):
    """Indices of one rank for one epoch.

    ``shuffle``: a permutation from a generator seeded with ``seed + epoch`` (set with
    :meth:`set_epoch`); otherwise ``0..n-1``. ``pad``: repeat leading indices so every rank gets
    the same count (training, so every rank takes the same number of steps); without it the
    shards are disjoint and uneven (evaluation: every sample counted exactly once).
    """

    def __init__(self, n: int, rank: int = 0, world: int = 1, shuffle: bool = True,
                 seed: int = 0, pad: bool = True) -> None:
        self.n, self.rank, self.world = n, rank, world
        self.shuffle, self.seed, self.pad = shuffle, seed, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.pad and self.world > 1:
            total = math.ceil(self.n / self.world) * self.world
            order += order[: total - len(order)]
        return order[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.n / self.world)
        return len(range(self.rank, self.n, self.world))


__all__ = ["DistInfo", "env_dist_info", "backend_for", "init_distributed", "shutdown_distributed",
           "all_reduce_sum", "broadcast_flag", "barrier", "EpochSampler"]

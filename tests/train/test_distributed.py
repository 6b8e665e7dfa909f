"""EpochSampler: order depends only on (seed, epoch); rank shards compose single-process batches."""
from __future__ import annotations

from spikeflow.train.distributed import EpochSampler, all_reduce_sum


def test_order_depends_on_seed_and_epoch_only():
    a, b = EpochSampler(20, seed=3), EpochSampler(20, seed=3)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b) and sorted(a) == list(range(20))
    b.set_epoch(5)
    assert list(a) != list(b)


def test_rank_batches_union_equals_global_batch():
    n, world, per_rank = 24, 2, 3
    single = list(EpochSampler(n, seed=1))
    shards = []
    for rank in range(world):
        s = EpochSampler(n, rank, world, seed=1)
        shards.append(list(s))
    for k in range(n // (world * per_rank)):
        union = sorted(i for sh in shards for i in sh[k * per_rank:(k + 1) * per_rank])
        assert union == sorted(single[k * world * per_rank:(k + 1) * world * per_rank])


def test_eval_shards_are_disjoint_and_cover():
    shards = [list(EpochSampler(11, r, 3, shuffle=False, pad=False)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))
    assert [len(EpochSampler(11, r, 3, shuffle=False, pad=False)) for r in range(3)] == [4, 4, 3]
    padded = [list(EpochSampler(11, r, 3, seed=0)) for r in range(3)]
    assert {len(p) for p in padded} == {4}


def test_all_reduce_is_identity_without_process_group():
    import torch
    assert all_reduce_sum([1, 2.5], torch.device("cpu")) == [1.0, 2.5]

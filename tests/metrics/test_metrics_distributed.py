"""Two Gloo processes on CPU: reduced counts equal one process seeing all the data."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from metrics_nets import conv_snn
from spikeflow.metrics import SpikeRecorder, SynOpCounter, nasfr


def _data(rank):
    g = torch.Generator().manual_seed(rank)
    return torch.rand(3 + rank, 2 + rank, 1, 8, 8, generator=g)    # ranks differ in T and B


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    net = conv_snn()
    with torch.no_grad(), SpikeRecorder(net) as rec, SynOpCounter(net) as ops:
        net(_data(rank))
    rec.all_reduce()
    ops.all_reduce()
    if rank == 0:
        torch.save({"nasfr": nasfr(rec), "sums": [r.sums for r in rec], "totals": ops.totals(),
                    "samples": [r.samples for r in rec]}, out)
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_all_reduce_equals_single_process(tmp_path):
    out = tmp_path / "rank0.pt"
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=2, start_method="spawn")
    reduced = torch.load(out, weights_only=True)
    torch.manual_seed(0)
    net = conv_snn()
    with torch.no_grad(), SpikeRecorder(net) as rec, SynOpCounter(net) as ops:
        net(_data(0))
        net(_data(1))
    assert reduced["nasfr"] == pytest.approx(nasfr(rec), rel=1e-12)
    for got, r in zip(reduced["sums"], rec):
        assert torch.equal(got, r.sums)
    assert reduced["samples"][0].tolist() == [5, 5, 5, 3]
    assert reduced["totals"] == pytest.approx(ops.totals(), rel=1e-12)

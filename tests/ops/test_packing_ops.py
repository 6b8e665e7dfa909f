"""``spikeflow::pack_bits`` / ``unpack_bits``: opcheck, CPU impl (numba) == reference impl, exact
round trips (bit patterns included), rejections."""
import importlib

import pytest
import torch
from _device import DEVICE, cuda_only  # the op tests' device (tests/ops/_device.py)
from torch.library import opcheck

from spikeflow import ops

P = importlib.import_module("spikeflow.ops.packing")
PACK = torch.ops.spikeflow.pack_bits.default
UNPACK = torch.ops.spikeflow.unpack_bits.default
INT = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16,
       torch.bfloat16: torch.int16}


def spikes(n, dtype=torch.float32, value=1.0, density=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, generator=g) < density
    return torch.where(mask, torch.tensor(value, dtype=dtype), torch.zeros((), dtype=dtype))


def same_bits(a, b):
    return a.dtype == b.dtype and torch.equal(a.view(INT[a.dtype]), b.view(INT[b.dtype]))


@pytest.mark.parametrize("x", [spikes(77), spikes(64, torch.float64, 2.5), torch.zeros(9),
                               torch.tensor([0.0, 3.0, 5.0])])
def test_opcheck(x):
    opcheck(PACK, (x,))
    bits, value, _ = PACK(x)
    opcheck(UNPACK, (bits, value, x.numel()))


@pytest.mark.parametrize("n", [1, 8, 13, 8192 * 8 + 5, 100_003])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [1.0, 2.5, -0.75])
def test_cpu_impl_equals_reference_impl(n, dtype, value):
    x = spikes(n, dtype, value, seed=n)
    got, want = P.pack_impl(x), P.reference_pack(x)
    assert bool(got[2]) and bool(want[2])
    assert torch.equal(got[0], want[0]) and got[0].numel() == -(-n // 8)
    assert same_bits(got[1], want[1]) and float(got[1]) == (value if x.any() else 1.0)
    for impl in (P.unpack_impl, P.reference_unpack):
        assert same_bits(impl(got[0], got[1], n), x)  # +0.0 stays +0.0 for negative constants


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reference_packs_half_types(dtype):
    x = spikes(1000, dtype, 0.5).view(10, 100)
    bits, value, ok = ops.pack_bits(x)
    assert bool(ok) and same_bits(ops.unpack_bits(bits, value, x.shape), x)


@pytest.mark.parametrize("bad", [-0.0, float("nan"), 0.5, float("inf")])
@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_rejects_a_third_bit_pattern(bad, impl):
    x = spikes(50_000)
    x[49_999] = bad
    pack = P.pack_impl if impl == "cpu" else P.reference_pack
    assert not bool(pack(x)[2])
    y = torch.zeros(200_000)
    y[10], y[150_000] = 1.0, 2.0  # two constants in different work blocks
    assert not bool(pack(y)[2])


def test_minus_zero_or_nan_as_the_only_value_round_trips_exactly():
    for special in (-0.0, float("nan")):
        x = torch.zeros(40)
        x[[3, 17, 39]] = special
        bits, value, ok = ops.pack_bits(x)
        assert bool(ok) and same_bits(ops.unpack_bits(bits, value, numel=40), x)
        assert torch.equal(bits, P.reference_pack(x)[0])


def test_unpack_checks_its_arguments():
    bits, value, _ = ops.pack_bits(spikes(20))
    with pytest.raises(ValueError, match="shape"):
        ops.unpack_bits(bits, value)
    with pytest.raises(ValueError, match=r"uint8 \[2\]"):
        ops.unpack_bits(bits, value, numel=9)
    with pytest.raises(ValueError, match="float"):
        ops.pack_bits(torch.arange(10))


def test_compile_traces_both_ops():
    def round_trip(x):
        bits, value, ok = ops.pack_bits(x)
        return ops.unpack_bits(bits, value, x.shape), ok

    x = spikes(100, value=3.0).view(4, 25)
    y, ok = torch.compile(round_trip, backend="aot_eager", fullgraph=True)(x)
    assert bool(ok) and same_bits(y, x)


@cuda_only
def test_cuda_runs_the_reference():  # pragma: no cover - GPU only
    x = spikes(1000, value=2.0).view(10, 100)
    bits, value, ok = ops.pack_bits(x.to(DEVICE))
    assert bits.device == DEVICE and bool(ok)
    assert torch.equal(bits.cpu(), P.pack_impl(x)[0])
    assert same_bits(ops.unpack_bits(bits, value, x.shape).cpu(), x)

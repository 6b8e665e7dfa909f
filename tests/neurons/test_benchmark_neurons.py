"""benchmarks/neurons.py runs end to end on tiny sizes; the memory held for backward (deterministic,
unlike time) is below half of the reference loop's."""
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "neurons.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_neurons", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_returns_rows_and_fused_memory_is_below_half_the_reference(bench, capsys):
    rows = bench.main(["--steps", "4", "--batch", "2", "--neurons", "3000", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "speed x" in out and "memory" in out
    by = {(r["neuron"], r["impl"]): r for r in rows}
    for kind in ("LIF", "PLIF", "DecayLIF"):
        fused, ref = by[(kind, "fused")], by[(kind, "reference")]
        assert fused["T"] == 4 and fused["ms"] > 0 and fused["median_ms"] >= fused["ms"]
        assert fused["saved_mb"] <= 0.5 * ref["saved_mb"]
        # the fused path saves the membrane before the spike [T, N] only (PLIF: plus the initial
        # state [N]), and two 0-dim parameters (k, the surrogate's alpha: <= 16 bytes)
        expected = (4 + (kind == "PLIF")) * 2 * 3000 * 4
        assert 0 <= fused["saved_mb"] * 2**20 - expected <= 16

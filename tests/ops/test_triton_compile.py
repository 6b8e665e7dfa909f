"""Every Triton kernel builds for the GPU, without a GPU (scripts/triton_aot.py).

The interpreter tests run the kernels' Python on CPU; they never compile them. This test runs
``scripts/triton_aot.py`` in a clean process (no ``TRITON_INTERPRET``, an empty Triton cache, so
nothing is reused): it records the launches of every host wrapper over a matrix of flags, dtypes
and sizes, specialises them as Triton's launcher does, and compiles a covering set (every
constexpr value, argument type, alignment and dtype of every kernel at least once) through
Triton's front end, LLVM and ptxas for sm_90 (H100/H200), with no register spills.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton")

REPO = Path(__file__).resolve().parents[2]
PTXAS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
KERNELS = {"_lif_forward_kernel", "_lif_backward_kernel", "_decay_lif_forward_kernel",
           "_decay_lif_backward_kernel", "_iir_forward_kernel", "_iir_backward_kernel",
           "_iir2_forward_kernel", "_iir2_backward_kernel"}


@pytest.mark.slow
@pytest.mark.skipif(not PTXAS.is_file(), reason="the triton wheel has no bundled ptxas")
def test_every_kernel_compiles_for_sm90_without_spills(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    out = tmp_path / "aot.json"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "triton_aot.py"), "--arch", "90",
                           "--json", str(out)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = json.loads(out.read_text())
    assert {r["kernel"] for r in rows} == KERNELS
    assert all(r["ok"] and r["arch"] == "sm_90" for r in rows)
    # really built: a cubin with its resource usage, no local memory (spills)
    assert all(r["registers"] > 0 and r["local"] == 0 for r in rows), rows
    # the covering set holds every storage dtype, both alignments and every surrogate code
    sigs = [json.dumps(r["signature"]) for r in rows]
    for ty in ("*fp32", "*bf16", "*fp16"):
        assert any(ty in s for s in sigs), ty
    # the ops pass a fixed surrogate parameter (and IF/LIF's stand-in k) as a float64 scalar
    assert any(r["signature"].get("a_ptr") == "*fp64" for r in rows
               if r["kernel"] == "_lif_backward_kernel")
    n_aligned = {"N" in r["divisible_by_16"] for r in rows if r["kernel"] == "_lif_forward_kernel"}
    assert n_aligned == {True, False}
    # bandwidth: with 1024 neurons per program and aligned rows the LIF kernels move their
    # [T, N] streams with 128-bit vector loads and stores
    big = [r for r in rows if r["kernel"] in ("_lif_forward_kernel", "_lif_backward_kernel")
           and r["constexprs"]["BLOCK"] == 1024 and "N" in r["divisible_by_16"]]
    assert {r["kernel"] for r in big} == {"_lif_forward_kernel", "_lif_backward_kernel"}
    for r in big:
        kinds = r["global_access"]
        assert any(k.startswith("ld.global.v4") for k in kinds), kinds
        assert any(k.startswith("st.global.v4") for k in kinds), kinds
    codes = {r["constexprs"].get("CODE") for r in rows if r["kernel"] == "_lif_backward_kernel"}
    assert codes == {0, 1, 2, 3, 4}
    leaks = {r["constexprs"].get("LEAK") for r in rows if r["kernel"] == "_lif_forward_kernel"}
    assert leaks == {0, 1, 2, 3}


def test_script_refuses_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "triton_aot.py"), "--list"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode != 0 and "unset TRITON_INTERPRET" in done.stderr

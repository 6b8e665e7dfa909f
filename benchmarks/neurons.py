"""Neuron benchmark: forward+backward time and memory held for backward, fused vs reference loop vs
SpikingJelly (multi-step, when installed), measured in one run.

    python benchmarks/neurons.py            # T in {8, 32, 128}, 16 x 16384 neurons, float32
    python benchmarks/neurons.py --quick    # T in {8, 32}, fewer repeats

Time: best and median over repeats of ``neuron(x)`` + ``backward`` with a fixed random output
gradient; the implementations take turns within each repeat so background load hits them alike.
Ratios use the best time (the least disturbed by other processes; the median is printed too).
``--clock cpu`` times process CPU time instead of wall time: on a machine shared with other jobs
this is the stable choice with ``--threads 1`` (with more threads it also counts spin-waiting).
Memory: bytes of the distinct tensor storages autograd saves for backward (recorded with
``torch.autograd.graph.saved_tensors_hooks`` during the forward). The input counts when it is
saved (the reference loop saves it; the fused kernels save only the membrane before the spike, one
``[T, N]`` tensor, plus PLIF's initial state), parameters do not. This is the memory a training step holds per neuron layer between forward and backward.

On a GPU (``--device cuda``; defaults T=32, 16 x 65,536 neurons, LIF and PLIF):

    python benchmarks/neurons.py --device cuda --dtype float32 bfloat16 --json neurons.json

times spikeflow's default dispatch (``backend="auto"``: the CUDA implementation of the ops),
the reference loop and SpikingJelly 2.0 (multi-step; it picks its own CUDA implementation, Triton
for the pure-Python wheel: the row names it) in one run, do_bench style (``benchmarks/_gpu.py``:
warm-up, L2 flushed before each call, CUDA events, median of the repeats). It also reports the peak
memory one fwd+bwd allocates (``torch.cuda.max_memory_allocated`` delta), the saved-for-backward
bytes as above, whether the spikes equal the reference loop's and the largest gradient difference
relative to it, and the memory-traffic floor of the op: the time of a copy of one ``[T, B, N]``
tensor of the dtype (which reads and writes it) times 3, since forward + backward move at least six
such tensors (forward reads X, writes S and one state; backward reads dL/dS and that state, writes
dL/dX). ``--mode gpu`` runs this protocol on any device (the CPU dry run of
``scripts/gpu_check.sh``); ``--json PATH`` writes the rows.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import spikeflow.runtime

spikeflow.runtime.configure()  # before torch: short OpenMP spin-wait, numba cache (docs/runtime.md)
import torch

import spikeflow as sf

try:  # SpikingJelly is an optional peer ([peers] extra)
    from spikingjelly.activation_based import functional as sj_functional
    from spikingjelly.activation_based import neuron as sj_neuron
except ImportError:  # pragma: no cover - depends on the environment
    sj_neuron = None

if str(Path(__file__).resolve().parent) not in sys.path:  # benchmarks/_gpu.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gpu  # noqa: E402

__all__ = ["main", "measure", "measure_device", "build"]

DEVICE_IMPLS = ("spikeflow", "reference", "spikingjelly")  # --mode gpu: "spikeflow" = backend auto


def build(kind: str, impl: str) -> Optional[torch.nn.Module]:
    """The neuron ``kind`` ("LIF", "PLIF", "DecayLIF") of implementation ``impl``
    ("fused", "reference", "spikingjelly", or "spikeflow" for the default dispatch
    ``backend="auto"``); ``None`` when unavailable."""
    if impl == "spikeflow":
        impl = "auto"
    if impl == "spikingjelly":
        if sj_neuron is None or kind == "DecayLIF":
            return None
        if kind == "LIF":
            return sj_neuron.LIFNode(tau=2.0, step_mode="m")
        return sj_neuron.ParametricLIFNode(init_tau=2.0, step_mode="m")
    cls = {"LIF": sf.neurons.LIF, "PLIF": sf.neurons.PLIF, "DecayLIF": sf.neurons.DecayLIF}[kind]
    return cls(backend=impl)


def _saved_bytes(step: Callable[[], torch.Tensor], exclude: list[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    skip = {t.untyped_storage().data_ptr() for t in exclude}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    del out
    return sum(seen.values())


def measure(kind: str, T: int, batch: int, neurons: int, repeats: int,
            impls: tuple[str, ...] = ("fused", "reference", "spikingjelly"),
            clock: Callable[[], float] = time.perf_counter) -> list[dict]:
    """Rows ``{neuron, T, impl, ms (best), median_ms, saved_mb}`` for the available implementations."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(T, batch, neurons, generator=gen) * 0.5 + 0.6).requires_grad_()
    grad = torch.randn(T, batch, neurons, generator=gen)
    modules = {impl: m for impl in impls if (m := build(kind, impl)) is not None}

    def step(impl: str) -> torch.Tensor:
        module = modules[impl]
        if impl == "spikingjelly":
            sj_functional.reset_net(module)
        return module(x)

    def fwd_bwd(impl: str) -> None:
        step(impl).backward(grad)
        x.grad = None
        for p in modules[impl].parameters():
            p.grad = None

    times: dict[str, list[float]] = {impl: [] for impl in modules}
    for impl in modules:  # warm-up: numba load/compile, allocator
        fwd_bwd(impl)
    for _ in range(repeats):
        for impl in modules:
            start = clock()
            fwd_bwd(impl)
            times[impl].append(clock() - start)
    rows = []
    for impl, module in modules.items():
        saved = _saved_bytes(lambda: step(impl), list(module.parameters()))
        rows.append(dict(neuron=kind, T=T, impl=impl, ms=1e3 * min(times[impl]),
                         median_ms=1e3 * statistics.median(times[impl]), saved_mb=saved / 2**20))
    return rows


def _ratios(rows: list[dict]) -> list[str]:
    lines = []
    by = {(r["neuron"], r["T"], r["impl"]): r for r in rows}
    for (kind, T, impl), r in by.items():
        if impl != "fused":
            continue
        parts = [f"{kind:8s} T={T:<4d}"]
        ref = by.get((kind, T, "reference"))
        if ref:
            parts.append(f"speed x{ref['ms'] / r['ms']:5.1f} vs reference")
            parts.append(f"memory {r['saved_mb'] / ref['saved_mb']:.2f}x reference")
        sj = by.get((kind, T, "spikingjelly"))
        if sj:
            parts.append(f"speed x{sj['ms'] / r['ms']:4.1f} vs SpikingJelly")
            parts.append(f"memory {r['saved_mb'] / sj['saved_mb']:.2f}x SpikingJelly")
        lines.append(", ".join(parts))
    return lines


# ----------------------------------------------------------------------------- device protocol
def copy_floor(T: int, batch: int, neurons: int, dtype: torch.dtype, device: torch.device,
               rep_ms: float = 100.0) -> dict:
    """``{copy_ms, floor_ms}``: median time of copying one ``[T, batch, neurons]`` tensor of
    ``dtype`` (read + write), and the fwd+bwd traffic floor ``3 * copy_ms`` (six tensor passes)."""
    src = torch.empty(T, batch, neurons, dtype=dtype, device=device).fill_(0.5)
    dst = torch.empty_like(src)
    copy = _gpu.summary(_gpu.time_ms(lambda: dst.copy_(src), device, rep_ms=rep_ms))["ms"]
    return dict(copy_ms=copy, floor_ms=3 * copy)


def _oracle(kind: str, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and dL/dX of the reference loop in float32 on the values ``x`` and ``grad`` hold
    (bf16 inputs are exact in float32): what a kernel with float32 state arithmetic computes."""
    module = build(kind, "reference").to(x.device)
    x32 = x.detach().float().requires_grad_()
    out = module(x32)
    out.backward(grad.float())
    return out.detach(), x32.grad


def measure_device(kind: str, T: int, batch: int, neurons: int, dtype: torch.dtype,
                   device: torch.device, impls: tuple[str, ...] = DEVICE_IMPLS,
                   rep_ms: float = 100.0) -> list[dict]:
    """Rows ``{neuron, T, dtype, impl, ms (median), min_ms, reps, peak_mb, saved_mb,
    spikes_equal, grad_rel_err}`` for the available implementations on ``device``; an
    implementation that fails gets a row with ``error``. ``spikes_equal`` is the fraction of spikes
    equal to those of the float32 reference loop on the same input values (:func:`_oracle`) and
    ``grad_rel_err`` ``max|dX - dX_ref| / max|dX_ref|`` against its gradient."""
    gen = torch.Generator(device=device).manual_seed(0)
    x = (torch.randn(T, batch, neurons, generator=gen, device=device) * 0.5 + 0.6).to(dtype)
    x.requires_grad_()
    grad = torch.randn(T, batch, neurons, generator=gen, device=device).to(dtype)
    rows: list[dict] = []
    ref_out = _oracle(kind, x, grad)
    for impl in impls:
        base = dict(neuron=kind, T=T, batch=batch, neurons=neurons, dtype=str(dtype).split(".")[-1],
                    impl=impl, device=str(device))
        try:
            module = build(kind, impl)
        except Exception as err:  # noqa: BLE001 - report and go on
            rows.append({**base, "error": f"{type(err).__name__}: {err}"})
            continue
        if module is None:
            continue
        module = module.to(device)

        def step(module: torch.nn.Module = module, impl: str = impl) -> torch.Tensor:
            if impl == "spikingjelly":
                sj_functional.reset_net(module)
            return module(x)

        def fwd_bwd(module: torch.nn.Module = module, step: Callable = step) -> None:
            step().backward(grad)
            x.grad = None
            for p in module.parameters():
                p.grad = None

        try:
            out = step()
            out.backward(grad)
            spikes, dx = out.detach(), x.grad.detach().clone()
            x.grad = None
            for p in module.parameters():
                p.grad = None
            del out
            row = {**base, **_gpu.summary(_gpu.time_ms(fwd_bwd, device, rep_ms=rep_ms))}
            row["peak_mb"] = _gpu.peak_mb(fwd_bwd, device)
            row["saved_mb"] = _saved_bytes(step, list(module.parameters())) / 2**20
            if impl == "spikingjelly":
                row["sj_impl"] = _gpu.sj_implementations().get(kind.lower())
        except Exception as err:  # noqa: BLE001 - report and go on
            x.grad = None
            rows.append({**base, "error": f"{type(err).__name__}: {err}"})
            continue
        rows.append(row)
        row["_out"] = (spikes, dx)
    for row in rows:
        out = row.pop("_out", None)
        if out is not None:
            spikes, dx = out
            row["spikes_equal"] = float((spikes == ref_out[0]).float().mean())
            scale = float(ref_out[1].float().abs().max()) or 1.0
            row["grad_rel_err"] = float((dx.float() - ref_out[1].float()).abs().max()) / scale
    return rows


def _device_lines(rows: list[dict], floors: dict) -> list[str]:
    lines = []
    by = {(r["neuron"], r["dtype"], r["T"], r["impl"]): r for r in rows if "ms" in r}
    for (kind, dtype, T, impl), r in by.items():
        if impl != "spikeflow":
            continue
        parts = [f"{kind:5s} {dtype:8s} T={T} spikeflow {r['ms']:.3f} ms"]
        sj = by.get((kind, dtype, T, "spikingjelly"))
        if sj:
            parts.append(f"x{sj['ms'] / r['ms']:.2f} vs SpikingJelly ({sj['ms']:.3f} ms)")
            if r.get("peak_mb") is not None and sj.get("peak_mb"):
                parts.append(f"peak memory {r['peak_mb'] / sj['peak_mb']:.2f}x SpikingJelly")
        ref = by.get((kind, dtype, T, "reference"))
        if ref:
            parts.append(f"x{ref['ms'] / r['ms']:.1f} vs reference")
        floor = floors.get(f"{dtype}/T{T}")
        if floor:
            parts.append(f"{r['ms'] / floor['floor_ms']:.2f}x the traffic floor "
                         f"({floor['floor_ms']:.3f} ms)")
        lines.append(", ".join(parts))
    return lines


def main_device(args: argparse.Namespace) -> list[dict]:
    """``--device cuda`` / ``--mode gpu``: the device protocol over kinds x dtypes x T."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    steps = args.steps or [32]
    batch = args.batch or 16
    neurons = args.neurons or 65536
    kinds = args.neuron or ["LIF", "PLIF"]
    impls = tuple(args.impls or DEVICE_IMPLS)
    info = _gpu.device_info(device)
    print(f"device: {info.get('gpu', info['cpu'])}, torch {info['torch']} (CUDA {info['cuda']}), "
          f"triton {info['triton']}, SpikingJelly {info['spikingjelly'] or 'not installed'}; "
          f"{batch} x {neurons} neurons, median of repeats in {args.rep_ms:g} ms", flush=True)
    rows: list[dict] = []
    floors: dict[str, dict] = {}
    print(f"{'neuron':6s} {'dtype':8s} {'T':>4s} {'impl':>12s} {'ms':>9s} {'min ms':>9s} "
          f"{'peak MB':>8s} {'saved MB':>9s} {'spk eq':>7s} {'grad err':>9s}")
    for name in args.dtype:
        dtype = _gpu.DTYPES[name]
        for T in steps:
            floor = copy_floor(T, batch, neurons, dtype, device, args.rep_ms)
            floors[f"{name}/T{T}"] = {**floor, "dtype": name, "T": T}
            print(f"{'copy':6s} {name:8s} {T:4d} {'(floor)':>12s} {floor['copy_ms']:9.3f}  "
                  f"traffic floor 3 x copy = {floor['floor_ms']:.3f} ms", flush=True)
            for kind in kinds:
                for row in measure_device(kind, T, batch, neurons, dtype, device, impls,
                                          args.rep_ms):
                    rows.append(row)
                    if "error" in row:
                        print(f"{kind:6s} {name:8s} {T:4d} {row['impl']:>12s}  ERROR {row['error']}",
                              flush=True)
                        continue

                    def fmt(v: Optional[float], spec: str) -> str:
                        return "-" if v is None else format(v, spec)
                    print(f"{kind:6s} {name:8s} {T:4d} {row['impl']:>12s} {row['ms']:9.3f} "
                          f"{row['min_ms']:9.3f} {fmt(row['peak_mb'], '8.1f')} "
                          f"{row['saved_mb']:9.1f} {fmt(row.get('spikes_equal'), '7.4f')} "
                          f"{fmt(row.get('grad_rel_err'), '9.2e')}"
                          + (f"  [{row['sj_impl']}]" if row.get("sj_impl") else ""), flush=True)
    print()
    lines = _device_lines(rows, floors)
    for line in lines:
        print(line)
    _gpu.write_json(args.json, dict(benchmark="neurons", info=info, batch=batch, neurons=neurons,
                                    steps=steps, floors=floors, rows=rows, lines=lines))
    return rows


def main(argv: Optional[list[str]] = None) -> list[dict]:
    """Run the benchmark, print a table and the ratios, return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T in {8, 32}, 3 repeats")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="values of T")
    parser.add_argument("--batch", type=int, default=None, help="batch (default 16)")
    parser.add_argument("--neurons", type=int, default=None,
                        help="neurons per sample (default 16384 on CPU, 65536 with --device cuda)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--neuron", nargs="+", default=None,
                        help="kinds (default LIF PLIF DecayLIF on CPU, LIF PLIF with --device cuda)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time (default) or process CPU time")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--mode", choices=["auto", "cpu", "gpu"], default="auto",
                        help="protocol: cpu (best of turns, --clock) or gpu (do_bench style, peak "
                             "memory, floor); auto: gpu on CUDA, cpu otherwise")
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=list(_gpu.DTYPES),
                        help="input dtypes (gpu protocol)")
    parser.add_argument("--impls", nargs="+", default=None, choices=list(DEVICE_IMPLS),
                        help="implementations (gpu protocol)")
    parser.add_argument("--rep-ms", type=float, default=100.0,
                        help="gpu protocol: time budget of the timed repeats per implementation")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this path")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "gpu" or (args.mode == "auto" and args.device.startswith("cuda")):
        return main_device(args)
    steps = args.steps or ([8, 32] if args.quick else [8, 32, 128])
    repeats = args.repeats or (3 if args.quick else 7)
    batch, neurons = args.batch or 16, args.neurons or 16384
    kinds = args.neuron or ["LIF", "PLIF", "DecayLIF"]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {batch} x {neurons} neurons, float32, "
          f"{repeats} repeats, {args.clock} clock; "
          f"SpikingJelly: {'yes' if sj_neuron is not None else 'not installed'}")
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows: list[dict] = []
    print(f"{'neuron':8s} {'T':>4s} {'impl':>12s} {'best ms':>9s} {'median ms':>10s} {'saved MB':>9s}")
    for kind in kinds:
        for T in steps:
            for row in measure(kind, T, batch, neurons, repeats, clock=clock):
                rows.append(row)
                print(f"{row['neuron']:8s} {row['T']:4d} {row['impl']:>12s} {row['ms']:9.1f} "
                      f"{row['median_ms']:10.1f} {row['saved_mb']:9.1f}", flush=True)
    print()
    lines = _ratios(rows)
    for line in lines:
        print(line)
    if args.json:
        _gpu.write_json(args.json, dict(benchmark="neurons", info=_gpu.device_info(torch.device("cpu")),
                                        batch=batch, neurons=neurons, steps=steps, rows=rows,
                                        lines=lines))
    return rows


if __name__ == "__main__":
    main()

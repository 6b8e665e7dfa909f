"""Compile every Triton kernel of ``spikeflow.ops._triton`` for an NVIDIA GPU, without a GPU.

The Triton interpreter (``TRITON_INTERPRET=1``, the CPU tests) runs a kernel's Python; it never
builds it, so a kernel can pass every interpreter test and still fail to compile for the GPU
(a loop-carried value that changes type, a constexpr branch that only the compiler sees, an
unsupported cast). This script builds the real thing ahead of time: Triton's front end, its
MLIR passes, LLVM and ``ptxas`` (bundled with the ``triton`` wheel) for a target such as sm_90
(H100/H200), exactly as the first launch on that GPU would.

How: the host wrappers (``lif_forward``, ``iir2_backward`` ...) are called on CPU tensors over a
matrix of flags, dtypes and sizes while every kernel's ``kernel[grid](...)`` is replaced by a
recorder (nothing runs; outputs stay uninitialised). Each recorded launch is specialised the way
Triton's launcher does it (argument types, 16-byte alignment and divisibility, constexprs,
``num_warps``, ``enable_fp_fusion``), distinct specialisations are compiled with
``triton.compile(..., target=GPUTarget("cuda", ARCH, 32))`` and the cubin's resource usage
(registers, local memory = spills) is read with the bundled ``cuobjdump``.

    python scripts/triton_aot.py                 # a covering set (every constexpr value, dtype)
    python scripts/triton_aot.py --all --arch 80 90 --json aot.json    # every specialisation
    python scripts/triton_aot.py --list          # record only: the specialisations, no compile

Exit status 1 when a specialisation fails to compile or spills (``--allow-spills`` to accept).
Uses Triton internals of its launcher (``create_function_from_signature``, ``_pack_args``);
checked with triton 3.6 (pyproject pins ``triton < 3.7``). Must run without ``TRITON_INTERPRET``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
    sys.exit("triton_aot.py: unset TRITON_INTERPRET (the interpreter builds nothing to compile)")

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, make_backend  # noqa: E402
from triton.runtime.jit import JITFunction, create_function_from_signature  # noqa: E402

from spikeflow.ops._triton import decay_lif as tdl  # noqa: E402
from spikeflow.ops._triton import iir_neuron as tiir  # noqa: E402
from spikeflow.ops._triton import lif as tlif  # noqa: E402
from spikeflow.ops._triton import synapse as tsyn  # noqa: E402

MODULES = (tlif, tdl, tiir, tsyn)
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
CODES = range(5)  # surrogate codes of spikeflow.ops.codes


# ----------------------------------------------------------------------------- recording
@dataclass
class Launch:
    """One recorded ``kernel[grid](*args, **kwargs)``."""

    kernel: JITFunction
    grid: tuple
    args: tuple
    kwargs: dict


@contextmanager
def recording() -> Iterator[list[Launch]]:
    """Replace every kernel of :data:`MODULES` by a recorder for the duration of the block."""
    launches: list[Launch] = []
    saved: list[tuple[Any, str, JITFunction]] = []

    class _Recorder:
        def __init__(self, kernel: JITFunction) -> None:
            self.kernel = kernel

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append(Launch(self.kernel, tuple(grid), args, dict(kwargs)))
            return launch

    for mod in MODULES:
        for name, obj in list(vars(mod).items()):
            if isinstance(obj, JITFunction) and name.endswith("_kernel"):
                saved.append((mod, name, obj))
                setattr(mod, name, _Recorder(obj))
    try:
        yield launches
    finally:
        for mod, name, obj in saved:
            setattr(mod, name, obj)


# ----------------------------------------------------------------------------- the calls
def _scalar(value: float, dtype: torch.dtype) -> torch.Tensor:
    return torch.full((), value, dtype=dtype)


def _calls(sizes: tuple[tuple[int, int], ...]) -> Iterator[tuple[str, Callable[[], Any]]]:
    """``(description, call)`` for every host-wrapper call of the matrix (CPU tensors)."""
    for (T, N), dt in itertools.product(sizes, DTYPES):
        x, v0, r0 = torch.zeros(T, N, dtype=dt), torch.zeros(N, dtype=dt), torch.zeros(N, dtype=dt)
        saved = torch.zeros(T, N)
        # PLIF's k and the surrogate's alpha: float64 as the ops pass a fixed value, float32 as
        # a learnable parameter is (one of the two per storage dtype keeps the matrix small)
        sdt = torch.float64 if dt == torch.float32 else torch.float32
        k, a = _scalar(0.5, sdt), _scalar(4.0, sdt)
        # LIF family: mode 0 IF, 1 LIF (tau 2: multiply, tau 3: IEEE division), 2 PLIF
        for (mode, tau), decay, hard, strict in itertools.product(
                [(0, 2.0), (1, 2.0), (1, 3.0), (2, 2.0)], (0, 1), (0, 1), (0, 1)):
            params = [tau, 1.0, 0.0]
            for keep in (False, True):
                flags = [mode, decay, hard, strict, 0, 0]
                yield (f"lif_forward T={T} N={N} {dt} flags={flags} tau={tau} keep={keep}",
                       lambda x=x, v0=v0, p=params, f=flags, kp=keep:
                       tlif.lif_forward(x, v0, k, a, p, f, kp))
            for detach, code, need_k, need_a in itertools.product((0, 1), CODES, (0, 1), (0, 1)):
                flags = [mode, decay, hard, strict, detach, code]
                yield (f"lif_backward T={T} N={N} {dt} flags={flags} need_k={need_k} "
                       f"need_a={need_a}",
                       lambda x=x, v0=v0, p=params, f=flags, nk=need_k, na=need_a:
                       tlif.lif_backward(saved, x, v0, v0, k, a, p, f, nk, na))
        # DecayLIF: params [decay, v_threshold], flags [strict, detach_reset, code]
        for strict, keep in itertools.product((0, 1), (False, True)):
            yield (f"decay_lif_forward T={T} N={N} {dt} strict={strict} keep={keep}",
                   lambda x=x, v0=v0, s=strict, kp=keep:
                   tdl.decay_lif_forward(x, v0, a, [0.5, 1.0], [s, 0, 0], kp))
            for detach, code, need_a in itertools.product((0, 1), CODES, (0, 1)):
                yield (f"decay_lif_backward T={T} N={N} {dt} strict={strict} detach={detach} "
                       f"code={code} need_a={need_a}",
                       lambda x=x, v0=v0, s=strict, d=detach, c=code, na=need_a:
                       tdl.decay_lif_backward(saved, x, v0, a, [0.5, 1.0], [s, d, c], na))
        # IIR neuron: params [m, a, v_threshold, reset_v], flags [strict, detach_reset, code]
        for strict, keep in itertools.product((0, 1), (False, True)):
            yield (f"iir_neuron_forward T={T} N={N} {dt} strict={strict} keep={keep}",
                   lambda x=x, v0=v0, r0=r0, s=strict, kp=keep:
                   tiir.iir_neuron_forward(x, v0, r0, a, [0.8, 0.5, 1.0, 0.0], [s, 0, 0], kp))
            for detach, code, need_a in itertools.product((0, 1), CODES, (0, 1)):
                yield (f"iir_neuron_backward T={T} N={N} {dt} strict={strict} detach={detach} "
                       f"code={code} need_a={need_a}",
                       lambda x=x, v0=v0, r0=r0, s=strict, d=detach, c=code, na=need_a:
                       tiir.iir_neuron_backward(saved, x, v0, r0, a, [0.8, 0.5, 1.0, 0.0],
                                                [s, d, c], na))
        # second-order IIR synapse filter: x [T, B, N] with B = 2
        xs = torch.zeros(T, 2, N, dtype=dt)
        coef = [torch.zeros(N, dtype=dt) for _ in range(3)]
        st = [torch.zeros(2, N, dtype=dt) for _ in range(2)]
        yield (f"iir2_forward T={T} B=2 N={N} {dt}", lambda xs=xs, c=coef, s=st:
               tsyn.iir2_forward(xs, *c, *s))
        for need in (False, True):
            yield (f"iir2_backward T={T} B=2 N={N} {dt} need_coef={need}",
                   lambda xs=xs, c=coef, s=st, nc=need: tsyn.iir2_backward(xs, xs, *c, *s, nc))


def _check_wrappers_exist() -> None:
    """Fail clearly when a wrapper signature no longer matches this script."""
    for mod, names in ((tlif, ("lif_forward", "lif_backward")),
                       (tdl, ("decay_lif_forward", "decay_lif_backward")),
                       (tiir, ("iir_neuron_forward", "iir_neuron_backward")),
                       (tsyn, ("iir2_forward", "iir2_backward"))):
        for name in names:
            if not callable(getattr(mod, name, None)):
                raise SystemExit(f"triton_aot.py: {mod.__name__}.{name} is gone; update the matrix")


# ----------------------------------------------------------------------------- specialising
@dataclass
class Spec:
    """One kernel specialisation: what Triton's launcher would compile for a launch."""

    kernel: JITFunction
    signature: dict
    constexprs: dict
    attrs: dict
    options: dict
    example: str  # the first call that produced it
    key: str = ""
    features: set = field(default_factory=set)


_BINDERS: dict[tuple[int, int], Callable] = {}


def _binder(kernel: JITFunction, backend) -> Callable:
    """Triton's argument binder of ``kernel`` for ``backend`` (built once: it is exec'd code)."""
    key = (id(kernel), id(backend))
    if key not in _BINDERS:
        _BINDERS[key] = create_function_from_signature(kernel.signature, kernel.params, backend)
    return _BINDERS[key]


def specialise(launch: Launch, backend, example: str, seen: dict[Any, "Spec"]) -> "Spec | None":
    """The launcher's specialisation of ``launch`` for ``backend`` (Triton 3.6 internals), or
    ``None`` when ``seen`` already holds it."""
    kernel = launch.kernel
    bound, specialization, options = _binder(kernel, backend)(*launch.args, **launch.kwargs)
    quick = (id(kernel), repr(specialization), repr(sorted(launch.kwargs.items())))
    if quick in seen:
        return None
    options, signature, constexprs, attrs = kernel._pack_args(backend, launch.kwargs, bound,
                                                              specialization, options)
    opts = dict(options.__dict__)
    names = [p.name for p in kernel.params]
    name = kernel.fn.__name__
    feats = {(name, names[path[0]], repr(value)) for path, value in constexprs.items()}
    feats |= {(name, arg, ty) for arg, ty in signature.items() if ty != "constexpr"}
    feats |= {(name, names[path[0]], "divisible by 16") for path, a in attrs.items() if a}
    feats |= {(name, "num_warps", opts.get("num_warps")),
              (name, "enable_fp_fusion", opts.get("enable_fp_fusion"))}
    spec = Spec(kernel, signature, constexprs, attrs, opts, example, repr(quick), feats)
    seen[quick] = spec
    return spec


def collect(sizes: tuple[tuple[int, int], ...], backend) -> list[Spec]:
    """Distinct specialisations launched by the call matrix, in first-seen order."""
    seen: dict[Any, Spec] = {}
    with recording() as launches:
        for what, call in _calls(sizes):
            del launches[:]
            call()
            for launch in launches:
                specialise(launch, backend, what, seen)
    return list(seen.values())


def covering(specs: list[Spec]) -> list[Spec]:
    """A small subset in which every (kernel, parameter, value/type) of ``specs`` occurs: greedy
    set cover, most new features first (ties: first seen)."""
    todo = set().union(*(s.features for s in specs)) if specs else set()
    chosen: list[Spec] = []
    while todo:
        best = max(specs, key=lambda s: len(s.features & todo))
        chosen.append(best)
        todo -= best.features
    return chosen


# ----------------------------------------------------------------------------- compiling
_RES = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")
_ACCESS = re.compile(r"\b((?:ld|st)\.global(?:\.[a-z0-9]+)*)")


def global_access(ptx: str) -> dict[str, int]:
    """How many global loads/stores of each width the PTX has, e.g. ``{"ld.global.v4.b32": 7}``
    (``v4.b32``: 128-bit vector accesses, what a bandwidth-bound kernel wants)."""
    counts: dict[str, int] = {}
    for m in _ACCESS.finditer(ptx):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def resources(cubin: bytes) -> dict[str, int]:
    """Registers, stack, shared and local memory (bytes) per thread of ``cubin``, from the
    ``cuobjdump`` bundled with triton (empty when it is missing)."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.is_file():
        tool = Path(shutil.which("cuobjdump") or "")
        if not tool.is_file():
            return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
        fh.write(cubin)
        fh.flush()
        out = subprocess.run([str(tool), "--dump-resource-usage", fh.name], capture_output=True,
                             text=True, check=False).stdout
    m = _RES.search(out)
    if not m:
        return {}
    return dict(zip(("registers", "stack", "shared", "local"), map(int, m.groups())))


def compile_spec(spec: Spec, arch: int) -> dict[str, Any]:
    """Compile ``spec`` for ``sm_<arch>``: a result row (``ok``, seconds, resources or error)."""
    target = GPUTarget("cuda", arch, 32)
    row: dict[str, Any] = {"kernel": spec.kernel.fn.__name__, "arch": f"sm_{arch}",
                           "example": spec.example,
                           "constexprs": {spec.kernel.params[p[0]].name: v
                                          for p, v in spec.constexprs.items()},
                           "signature": {k: v for k, v in spec.signature.items()
                                         if v != "constexpr"},
                           "divisible_by_16": sorted(spec.kernel.params[p[0]].name
                                                     for p, a in spec.attrs.items() if a),
                           "num_warps": spec.options.get("num_warps")}
    t0 = time.perf_counter()
    try:
        src = ASTSource(spec.kernel, spec.signature, spec.constexprs, spec.attrs)
        compiled = triton.compile(src, target=target, options=spec.options)
        row.update(ok=True, **resources(compiled.asm["cubin"]))
        row["ptx_lines"] = compiled.asm["ptx"].count("\n")
        row["global_access"] = global_access(compiled.asm["ptx"])
    except Exception as err:  # noqa: BLE001 - reported per specialisation
        row.update(ok=False, error=f"{type(err).__name__}: {err}"[:4000])
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[90],
                        help="compute capabilities x10 (90: H100/H200, 80: A100, 89: L4/RTX 40)")
    parser.add_argument("--all", action="store_true",
                        help="every distinct specialisation (default: a covering set)")
    parser.add_argument("--list", action="store_true",
                        help="record only; print the specialisations")
    parser.add_argument("--allow-spills", action="store_true",
                        help="do not fail on local memory (register spills)")
    parser.add_argument("--json", type=Path, help="write the result rows here")
    args = parser.parse_args(argv)
    _check_wrappers_exist()
    # sizes: a partial last block (N=300), an aligned one (N=4096, divisible by 16), T=1, and the
    # benchmark's 16 x 65,536 neurons (the largest blocks: 1024 neurons per program)
    sizes = ((3, 300), (1, 4096), (2, 1 << 20))
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for arch in args.arch:
        backend = make_backend(GPUTarget("cuda", arch, 32))
        specs = collect(sizes, backend)
        chosen = specs if args.all else covering(specs)
        print(f"sm_{arch}: {len(specs)} distinct specialisations recorded, "
              f"{'compiling all' if args.all else f'compiling a covering set of {len(chosen)}'}"
              + (" (listing only)" if args.list else ""), flush=True)
        for spec in chosen:
            if args.list:
                print(f"  {spec.kernel.fn.__name__}: {spec.example}")
                continue
            row = compile_spec(spec, arch)
            rows.append(row)
            res = (f"{row.get('registers', '?')} regs, local {row.get('local', '?')} B"
                   if row["ok"] else row["error"].splitlines()[0])
            print(f"  {'ok  ' if row['ok'] else 'FAIL'} {row['kernel']:28s} {row['seconds']:5.2f}s "
                  f"{res} | {spec.example}", flush=True)
    failed = [r for r in rows if not r["ok"]]
    spilled = [r for r in rows if r["ok"] and r.get("local", 0) > 0]
    print(f"{len(rows)} compiled, {len(failed)} failed, {len(spilled)} with local memory "
          f"(spills), {time.perf_counter() - t0:.1f} s")
    for r in failed:
        print(f"FAILED {r['kernel']} {r['arch']} {r['constexprs']}:\n{r['error']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 1 if failed or (spilled and not args.allow_spills) else 0


if __name__ == "__main__":
    sys.exit(main())

"""``spikeflow bench [NAME ...]``: run the speed/memory scripts of the repository's benchmarks/."""
from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow bench                        # every script: neurons, frames, emulator, train_step, ...
  spikeflow bench train_step neurons     # selected scripts
  spikeflow bench --list
  spikeflow bench --dir /path/to/spikeflow/benchmarks
"""

ORDER = ("neurons", "frames", "emulator", "train_step")


def register(subparsers) -> None:
    p = add_parser(subparsers, "bench", "run the benchmark scripts",
                   "Run the scripts in the repository's benchmarks/ folder (each exposes\n"
                   "main()); they print speed/memory ratios against baselines measured in the\n"
                   "same run (peers such as SpikingJelly, snnTorch, Norse when installed).",
                   EXAMPLES)
    p.add_argument("names", nargs="*", metavar="NAME", help="scripts to run (default: all)")
    p.add_argument("--dir", help="the benchmarks folder (default: next to the sources or ./)")
    p.add_argument("--list", action="store_true", help="list the scripts and exit")
    p.set_defaults(func=_main)


def find_benchmarks(explicit: str | None = None) -> Path:
    """The benchmarks/ folder: ``explicit``, the source checkout's, or the current directory's."""
    if explicit:
        cands = [Path(explicit)]
    else:
        cands = [Path(__file__).resolve().parents[3] / "benchmarks", Path.cwd() / "benchmarks"]
    for cand in cands:
        if cand.is_dir() and any(cand.glob("*.py")):
            return cand
    raise FileNotFoundError(
        "no benchmarks/ folder with scripts found (looked in " + ", ".join(map(str, cands))
        + "); benchmarks ship with the source checkout, not the installed package: run from the "
        "repository or pass --dir")


def scripts(folder: Path) -> dict[str, Path]:
    """``{name: path}`` of the benchmark scripts, known ones first."""
    found = {p.stem: p for p in sorted(folder.glob("*.py")) if not p.stem.startswith("_")}
    ordered = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    return {n: found[n] for n in ordered}


def run_script(path: Path) -> None:
    """Import ``path`` as a module and call its ``main()`` (with a clean ``sys.argv``)."""
    spec = importlib.util.spec_from_file_location(f"spikeflow_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    argv = sys.argv
    try:
        spec.loader.exec_module(module)
        main = getattr(module, "main", None)
        if not callable(main):
            raise AttributeError(f"{path} has no main() function")
        sys.argv = [str(path)]
        main()
    finally:
        sys.argv = argv
        sys.path.remove(str(path.parent))


def _main(args) -> int:
    folder = find_benchmarks(args.dir)
    found = scripts(folder)
    if args.list:
        for name, path in found.items():
            print(f"{name:<16} {path}")
        return 0
    unknown = [n for n in args.names if n not in found]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; available: "
                         f"{', '.join(found)}")
    failed = []
    for name in args.names or list(found):
        print(f"=== benchmarks/{found[name].name}", flush=True)
        t0 = time.perf_counter()
        try:
            run_script(found[name])
        except Exception:  # noqa: BLE001 - report and go on with the other scripts
            traceback.print_exc()
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - t0:.1f}s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0

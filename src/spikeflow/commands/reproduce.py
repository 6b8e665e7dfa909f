"""``spikeflow reproduce PAPER [--scale mini|full] [--data-root DIR]``: a seed paper's result tables."""
from __future__ import annotations

from pathlib import Path

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow reproduce plif                        # mini scale: offline stand-in data, minutes on a CPU
  spikeflow reproduce snn_iir --scale mini --out runs/repro-iir
  spikeflow reproduce plif --scale full --data-root /data     # the papers' recipes on your datasets
  spikeflow reproduce asa --scale full --data-root /data --only gesture_a_lif gesture_a_asa
  spikeflow reproduce --list                      # papers and their experiments
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "reproduce", "run a seed paper's configs and compare with its tables",
                   "Run every configs/<PAPER>/*.yaml (PAPER: plif, snn_iir, he2020, asa) and print a\n"
                   "side-by-side table: experiment, paper value, this run, delta, params, NASFR,\n"
                   "wall time. Writes OUT/results.md and OUT/results.csv; every experiment trains\n"
                   "into OUT/<experiment>/ (finished runs are reused, so re-running continues).\n"
                   "--scale mini runs offline stand-ins (digits, Fashion-MNIST from Debian, emulated\n"
                   "event sets, the associative-memory task) with fewer epochs and smaller T;\n"
                   "--scale full uses the papers' recipes. Datasets that are absent give the row\n"
                   "'data not found at ...'. --data-root DIR looks for each dataset in DIR/<folder>\n"
                   "(MNIST, FashionMNIST, CIFAR10, NMNIST, CIFAR10DVS, DvsGesture, DVS128Gait/day,\n"
                   "DVS128Gait/night, DailyAction-DVS, HARDVS).",
                   EXAMPLES)
    p.add_argument("paper", nargs="?", metavar="PAPER", help="configs/<PAPER>/ folder name")
    p.add_argument("--scale", choices=("mini", "full"), default="mini", help="mini (default) or full")
    p.add_argument("--data-root", metavar="DIR", help="folder holding the datasets (see above)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/reproduce-<paper>-<scale>)")
    p.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="run only these experiments")
    p.add_argument("--configs", metavar="DIR", help="configs root (default: the source tree's configs/)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config keys of every experiment (e.g. train.device=cuda)")
    p.add_argument("--list", action="store_true", help="list papers (or PAPER's experiments) and exit")
    p.add_argument("--verbose", action="store_true", help="progress bars and per-epoch lines")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from spikeflow.report.reproduce import find_experiments, list_papers, load_experiment, reproduce

    root = Path(args.configs) if args.configs else None
    if args.list or not args.paper:
        papers = [args.paper] if args.paper else list_papers(root)
        for paper in papers:
            print(paper)
            for path in find_experiments(paper, root):
                exp = load_experiment(path, args.scale)
                value = "null" if exp.paper.value is None else exp.paper.value
                print(f"  {exp.name:<34} {exp.paper.metric} {value}  [{exp.paper.table}]"
                      + ("" if exp.config is not None else "  (full scale only)"))
        return 0 if papers else 2

    runner = _runner(args.sets, quiet=not args.verbose)
    result = reproduce(args.paper, runner, scale=args.scale, out=args.out, data_root=args.data_root,
                       root=root, only=args.only, echo=lambda msg: print(msg, flush=True))
    print()
    print(result.markdown.read_text())
    print(f"written: {result.markdown} and {result.csv}")
    if result.failed:
        print(f"{len(result.failed)} experiment(s) failed: {', '.join(result.failed)}")
        return 1
    return 0


def _runner(sets: list[str], quiet: bool):
    from spikeflow.train import config_from_dict, run
    from spikeflow.train.config import apply_overrides

    def runner(config: dict, run_dir: Path) -> None:
        data = apply_overrides(config, list(sets) + (["train.quiet=true"] if quiet else []))
        result = run(config_from_dict(data), out=run_dir, echo=(lambda _msg: None) if quiet else print)
        print("    " + result.line(), flush=True)

    return runner

"""``spikeflow train [CONFIG] [--set key=value ...] [--out DIR] [--resume]``."""
from __future__ import annotations

import os
from pathlib import Path

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow train                                   # built-in default job (configs/default.yaml)
  spikeflow train configs/plif/nmnist.yaml --set data.root=/data/N-MNIST train.epochs=5
  spikeflow train my.yaml --set optim.lr=1e-3 schedule.name=cosine --out runs/try1
  spikeflow train --out runs/try1 --resume          # continue a run (its config.yaml)
  spikeflow train --out runs/try1 --resume --set train.epochs=40   # ... for more epochs
  torchrun --nproc_per_node 2 -m spikeflow train my.yaml   # DDP (NCCL on GPU, Gloo on CPU)
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "train", "train a model from a YAML config",
                   "Train a model. Without CONFIG the built-in default job runs (a PLIF SNN on\n"
                   "n_digits, event streams emulated from scikit-learn's digits; no download).\n"
                   "Config keys (data.*, model.*, optim.*, schedule.*, train.*, run.*) are\n"
                   "listed in docs/training.md; values given with --set are parsed as YAML.",
                   EXAMPLES)
    p.add_argument("config", nargs="?", metavar="CONFIG", help="YAML config file")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="override config keys (dotted paths)")
    p.add_argument("--out", metavar="DIR",
                   help="run folder (default runs/<run.name> or runs/<data>-<model>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or the newest matching run) from its last "
                        "checkpoint; re-running into a folder with a checkpoint also continues")
    p.add_argument("--quiet", action="store_true", help="no progress bars (train.quiet=true)")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from spikeflow.train import load_config, run

    sets = list(args.sets) + (["train.quiet=true"] if args.quiet else [])
    path = args.config
    if path is None and args.out and (Path(args.out) / "config.yaml").is_file():
        path = Path(args.out) / "config.yaml"  # continue a run with its own config
    cfg = load_config(path, sets)
    result = run(cfg, out=args.out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(result.line())
    return 0

"""``spikeflow train [CONFIG] [--set key=value ...] [--out DIR] [--resume]``."""
from __future__ import annotations

import os
from pathlib import Path

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow train                                   # built-in default job (configs/default.yaml)
  spikeflow train configs/plif/nmnist.yaml --set data.root=/data/N-MNIST train.epochs=5
  spikeflow train my.yaml --set optim.lr=1e-3 schedule.name=cosine --out runs/try1
  spikeflow train --set train.epochs=1 my.yaml       # CONFIG may come after --set items
  spikeflow train --out runs/try1 --resume          # continue a run (its config.yaml)
  spikeflow train --out runs/try1 --resume --set train.epochs=40   # ... for more epochs
                                                    # (the LR schedule is rebuilt for 40)
  spikeflow train --out runs/shared --resume --trust-imports   # a run whose config.yaml
                                                    # imports plugin code (run.imports)
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
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars, one line per epoch (train.quiet=true; off a terminal "
                        "there are no bars anyway)")
    p.add_argument("--trust-imports", action="store_true",
                   help="allow importing the plugin modules/files listed in run.imports of a run "
                        "folder's own config.yaml (used when no CONFIG is given); that runs "
                        "their code")
    p.set_defaults(func=_main)


def split_config(config: str | None, sets: list[str], what: str = "CONFIG",
                 example: str = "spikeflow train CONFIG --set train.epochs=3"
                 ) -> tuple[str | None, list[str]]:
    """``--set`` takes every following word, so ``--set k=v CONFIG`` puts CONFIG (``what``) among
    the overrides: take it back (the one item without ``=``); more than one such item, or one
    besides a CONFIG, is an error saying how to order the arguments."""
    from spikeflow.train.config import ConfigError  # noqa: PLC0415

    stray = [item for item in sets if "=" not in item]
    if not stray:
        return config, sets
    if config is None and len(stray) == 1:
        i = sets.index(stray[0])
        return stray[0], sets[:i] + sets[i + 1:]
    raise ConfigError(f"--set takes KEY=VALUE items, got {stray[-1]!r}; give at most one {what} "
                      f"(e.g. {example})")


def _main(args) -> int:
    from spikeflow.train import load_config, run
    from spikeflow.train.config import ConfigError, read_yaml

    path, sets = split_config(args.config, list(args.sets))
    sets += ["train.quiet=true"] if args.quiet else []
    from_run = False
    if path is None and args.out and (Path(args.out) / "config.yaml").is_file():
        path, from_run = Path(args.out) / "config.yaml", True  # continue a run with its config
    cfg = load_config(path, sets)
    if from_run and not args.trust_imports:
        listed = (read_yaml(path).get("run") or {}).get("imports") or []
        foreign = [item for item in cfg.run.imports if item in listed]
        if foreign:
            raise ConfigError(
                f"{path} lists run.imports {foreign}: continuing this run would import and run "
                "that code. Pass --trust-imports if you trust the run folder, or give your own "
                f"config: spikeflow train YOUR.yaml --out {args.out}")
    result = run(cfg, out=args.out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(result.line())
    return 0

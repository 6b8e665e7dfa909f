"""``spikeflow test RUN_DIR_OR_CHECKPOINT [--split test]``."""
from __future__ import annotations

import json

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow test runs/n_digits-plif_ndigits-20260101-120000      # best checkpoint, test split
  spikeflow test runs/try1/checkpoint_last.pt --split val
  spikeflow test runs/try1 --set data.root=/mnt/data/N-MNIST train.device=cpu
  spikeflow test runs/mine --import my_models.py                  # a run of a plugin model
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "test", "evaluate a run folder or checkpoint",
                   "Evaluate a trained model (a run folder's checkpoint_best.pt, else\n"
                   "checkpoint_last.pt, or a checkpoint file) on a split, using the config stored\n"
                   "in the checkpoint. Prints loss, accuracy, NASFR, per-layer firing rates,\n"
                   "ACs/MACs and energy per sample (--json: the same keys) and writes them all\n"
                   "to metrics_test.json next to the checkpoint (not with --no-metrics).", EXAMPLES)
    p.add_argument("target", nargs="?", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="run folder or checkpoint file (may also follow the --set items)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="override keys of the stored config (e.g. data.root)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="module or .py file registering the run's model/dataset (checkpoints "
                        "never import code themselves)")
    p.add_argument("--no-metrics", action="store_true", help="skip metrics_test.json")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from spikeflow.commands.train import split_config
    from spikeflow.train import evaluate_checkpoint
    from spikeflow.train.config import ConfigError

    target, sets = split_config(args.target, list(args.sets), "RUN_DIR_OR_CHECKPOINT",
                                "spikeflow test RUN --set data.root=DIR")
    if target is None:
        raise ConfigError("spikeflow test needs RUN_DIR_OR_CHECKPOINT (a run folder or a "
                          "checkpoint file)")
    res = evaluate_checkpoint(target, args.split, sets, args.imports,
                              metrics=not args.no_metrics,
                              echo=(lambda _: None) if args.json else print)
    if args.json:
        res.pop("metrics", None)  # the whole set is in metrics_test.json; the headline keys stay
        print(json.dumps(res, indent=2))
    return 0

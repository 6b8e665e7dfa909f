"""``spikeflow summary CONFIG|RUN [--set key=value ...] [--markdown] [--noise]``."""
from __future__ import annotations

from pathlib import Path

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow summary                                  # the built-in default job's model
  spikeflow summary configs/plif/nmnist.yaml --set data.root=/data/N-MNIST
  spikeflow summary configs/he2020/gesture_lstm_mlp_25ms.yaml --noise   # no data needed
  spikeflow summary runs/n_digits-plif_ndigits-20260101-120000 --markdown > model.md
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "summary", "print a model's layer table",
                   "Print one row per layer of a config's (or a trained run's) model: output\n"
                   "shape [T, B, ...], parameters, neuron type and tau, firing rate, ACs/MACs per\n"
                   "sample and activation memory, then the totals with the energy estimate. The\n"
                   "model runs once on the first test sample of the config's dataset (batch 1);\n"
                   "without the dataset's files (or with --noise) on seeded noise of the model\n"
                   "card's input shape. A run folder or checkpoint uses its stored config and\n"
                   "trained weights.", EXAMPLES)
    p.add_argument("target", nargs="?", metavar="CONFIG|RUN",
                   help="YAML config, run folder or checkpoint (default: the built-in job)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="override config keys (dotted paths)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="module or .py file registering the model/dataset (a run folder's own "
                        "run.imports are not imported: name them here)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--noise", action="store_true",
                   help="measure on noise of the model card's input shape, not a dataset sample")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from spikeflow.train import checkpoint as ck
    from spikeflow.train.config import apply_overrides, config_from_dict, load_config
    from spikeflow.train.model_info import summarize_model
    from spikeflow.train.setup import build_model, import_plugins
    from spikeflow.train.testing import resolve_checkpoint

    target = Path(args.target) if args.target else None
    state = None
    from_run = target is not None and (target.is_dir() or target.suffix == ".pt")
    if target is not None and target.is_dir() and not any(
            (target / n).is_file() for n in ("checkpoint_best.pt", "checkpoint_last.pt")) \
            and (target / "config.yaml").is_file():
        target = target / "config.yaml"   # a run that has not checkpointed yet: its config
    if target is not None and (target.is_dir() or target.suffix == ".pt"):
        path = resolve_checkpoint(target)
        ckpt = ck.load_checkpoint(path)
        cfg = config_from_dict(apply_overrides(ckpt["config"], list(args.sets)))
        state = (ckpt["model"], path, ckpt.get("model_name"))
    else:
        cfg = load_config(target, list(args.sets))
    # a run folder's or checkpoint's stored `run.imports` are not imported (code named by a
    # folder that may not be the user's): as `spikeflow test`, plugins come from --import only
    import_plugins(list(args.imports) if from_run else list(cfg.run.imports) + list(args.imports))
    model = build_model(cfg)
    if state is not None:
        ck.load_model_state(model, state[0], state[1], state[2], cfg.model.name)
    dataset, why = None, "--noise"
    if not args.noise:
        dataset, why = _first_dataset(cfg)
    result = summarize_model(cfg, model, dataset)
    if dataset is None and why != "--noise":
        result.notes.append(f"dataset {cfg.data.name} unavailable: {why}")
    print(result.to_markdown() if args.markdown else result.to_text(), end="")
    return 0


def _first_dataset(cfg):
    """The config's test dataset, or ``(None, reason)`` when its files are missing."""
    from spikeflow.data import create_dataset
    from spikeflow.train.data import dataset_options

    try:
        opts = {**dataset_options(cfg), **cfg.data.eval_options}
        opts.pop("clips", None)  # one plain sample, not a stack of test clips
        ds = create_dataset(cfg.data.name, root=cfg.data.root, split=cfg.data.test_split, **opts)
        if len(ds) == 0:
            return None, "the test split is empty"
        return ds, ""
    except (FileNotFoundError, OSError, ValueError) as err:
        return None, f"{type(err).__name__}: {str(err).splitlines()[0]}"

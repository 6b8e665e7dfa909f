"""``spikeflow report RUN_DIR [RUN_DIR ...]``: report.md + report.html with PNG figures."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow report runs/n_digits-plif_ndigits-20260101-120000     # writes into the run folder
  spikeflow report runs/snn runs/lstm --out reports/snn_vs_lstm    # comparison of several runs
  spikeflow report runs/a --evaluate            # compute metrics_test.json first when missing
  spikeflow report runs/a --set data.root=/data/N-MNIST --sample 3 # input/raster of test sample 3
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "report", "write report.md/report.html with figures for run folders",
                   "Write report.md and report.html (self-contained) with PNG figures for one or\n"
                   "more run folders: comparison table (accuracy, NASFR, ACs/MACs, energy, params,\n"
                   "latency), training and learning-rate curves, per-layer firing rates, PLIF tau\n"
                   "per layer over epochs, and, per run, the input frames and a spike raster of one\n"
                   "test sample (needs the run's checkpoint and dataset). Also comparison.csv.",
                   EXAMPLES)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (from spikeflow train)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: the run folder for one run, else "
                        "<common parent>/report)")
    p.add_argument("--sample", type=int, default=0, metavar="N",
                   help="index of the test sample shown in the raster/frame figures (default 0)")
    p.add_argument("--no-sample", action="store_true",
                   help="skip the per-run sample figures (no checkpoint/dataset needed)")
    p.add_argument("--evaluate", action="store_true",
                   help="run `spikeflow test` first for runs without metrics_test.json")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override keys of the stored config for the sample (e.g. data.root)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="module or .py file registering the runs' model/dataset")
    p.add_argument("--title", default="spikeflow report", help="report title")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from spikeflow.report import load_run, write_report

    paths = [Path(p) for p in args.runs]
    notes: list[str] = []
    if args.evaluate:
        from spikeflow.train import evaluate_checkpoint

        for path in paths:
            if not (path / "metrics_test.json").is_file():
                evaluate_checkpoint(path, "test", args.sets, args.imports)
    runs = [load_run(p) for p in paths]
    for run in runs:
        if run.test is None:
            notes.append(f"`{run.path}` has no metrics_test.json: run `spikeflow test {run.path}` "
                         "(or `spikeflow report --evaluate`) for NASFR, operations and energy.")
    activity: dict[str, Any] = {}
    if not args.no_sample:
        for run in runs:
            try:
                activity[run.name] = load_sample_activity(run.path, args.sample, args.sets, args.imports)
            except Exception as err:  # noqa: BLE001 - a missing dataset must not stop the report
                notes.append(f"No sample figures for `{run.name}`: {type(err).__name__}: {err}")
    out = Path(args.out) if args.out else default_out(paths)
    files = write_report(runs, out, activity=activity, notes=notes, title=args.title)
    print(f"report written: {files.markdown} and {files.html} ({len(files.figures)} figures)")
    for note in notes:
        print(f"note: {note}")
    return 0


def default_out(paths: list[Path]) -> Path:
    """The run folder itself for one run; ``<common parent>/report`` for several."""
    if len(paths) == 1:
        return paths[0]
    return Path(os.path.commonpath([str(p.resolve()) for p in paths])) / "report"


def load_sample_activity(run_dir: Path, index: int, overrides: list[str], imports: list[str]):
    """Rebuild the run's model from its best checkpoint and record test sample ``index``."""
    import torch

    from spikeflow.data import create_dataset
    from spikeflow.report import sample_activity
    from spikeflow.train import checkpoint as ck
    from spikeflow.train.config import apply_overrides, config_from_dict
    from spikeflow.train.data import (EVAL_SEED, BatchEncoder, collate_batch_first,
                                      collate_time_first, dataset_options)
    from spikeflow.train.setup import build_model, import_plugins
    from spikeflow.train.testing import resolve_checkpoint

    path = resolve_checkpoint(run_dir)
    ckpt = ck.load_checkpoint(path)
    data = apply_overrides(ckpt["config"], list(overrides))
    data.setdefault("run", {})["imports"] = list(imports)
    cfg = config_from_dict(data)
    import_plugins(cfg.run.imports)
    model = build_model(cfg)
    ck.load_model_state(model, ckpt["model"], path, ckpt.get("model_name"), cfg.model.name)
    ds = create_dataset(cfg.data.name, root=cfg.data.root, split=cfg.data.test_split,
                        **{**dataset_options(cfg), **cfg.data.eval_options})
    if not 0 <= index < len(ds):
        raise ValueError(f"--sample {index} is out of range: the test split has {len(ds)} samples")
    collate = collate_time_first if cfg.data.encoding == "none" else collate_batch_first
    x, y = collate([ds[index]])
    encoder = BatchEncoder(cfg.data.encoding, cfg.data.T, torch.device("cpu"))
    encoder.reseed(EVAL_SEED)
    label = int(y[0].argmax()) if y.dim() == 2 else (int(y[0]) if y.dim() == 1 else None)
    return sample_activity(model, encoder(x), label=label)

"""``spikeflow sweep [CONFIG] --set key=v1,v2,... [--set other=a,b]``: one run per value or grid point."""
from __future__ import annotations

from pathlib import Path

from spikeflow.commands import add_parser

EXAMPLES = """\
  # He et al. 2020 temporal-resolution study: SNN vs RNN vs LSTM against the frame window
  spikeflow sweep configs/he2020/nmnist_snn_mlp.yaml --set data.root=/data/N-MNIST \\
      --set model.name=he2020_snn_mlp,he2020_rnn_mlp,he2020_lstm_mlp \\
      --set data.options.dt_ms=1,5,10,15,20,25
  # the same on offline stand-in data (the paper config's `mini:` block), 2 epochs each
  spikeflow sweep configs/he2020/nmnist_snn_mlp.yaml --scale mini --set train.epochs=2 \\
      --set model.name=he2020_snn_mlp,he2020_rnn_mlp,he2020_lstm_mlp --set data.options.dt_ms=1,10,25
  # PLIF ablation: initial tau x pooling
  spikeflow sweep configs/plif/fashion_mnist.yaml --set model.options.init_tau=2,4,8 \\
      --set model.options.pool=max,avg --set train.epochs=5 --out runs/plif_ablation
  # paired values instead of the grid
  spikeflow sweep my.yaml --set data.T=4,8,16 train.batch_size=64,32,16 --zip
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "sweep", "train one run per value (or grid point) and tabulate",
                   "Train one run per value of every --set with several comma-separated values\n"
                   "(the grid of all combinations; --zip pairs them instead). A --set with one value\n"
                   "applies to every run. Runs go to OUT/runs/<key=value,...>/; finished runs (with\n"
                   "metrics_test.json) are not trained again, so re-running continues a sweep.\n"
                   "Writes OUT/sweep.md, OUT/sweep.csv (accuracy, NASFR, ACs/MACs, energy, params,\n"
                   "time per run) and OUT/sweep.png (metrics against the first numeric key).",
                   EXAMPLES)
    p.add_argument("config", nargs="?", metavar="CONFIG", help="YAML config (default: built-in job)")
    p.add_argument("--set", dest="sets", nargs="+", action="extend", default=[],
                   metavar="KEY=V1,V2", help="swept keys (several values) or fixed overrides")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default runs/sweep-<config name>)")
    p.add_argument("--zip", action="store_true", help="pair the i-th values instead of the grid")
    p.add_argument("--quiet", action="store_true", help="no progress bars (train.quiet=true)")
    p.add_argument("--scale", choices=["full", "mini"], default="full",
                   help="mini: apply the paper config's `mini:` block (offline data, fewer epochs)")
    p.set_defaults(func=_main)


def _main(args) -> int:
    from spikeflow.report import parse_set, run_sweep
    from spikeflow.train import load_config, run

    axes, fixed = [], []
    for item in args.sets:
        axis = parse_set(item)
        if len(axis.raw) > 1:
            axes.append(axis)
        else:
            fixed.append(f"{axis.key}={axis.raw[0]}")
    if not axes:
        raise ValueError("sweep: give at least one --set key=v1,v2,... with several values")
    if args.quiet:
        fixed.append("train.quiet=true")
    name = Path(args.config).stem if args.config else "default"
    suffix = "-mini" if args.scale == "mini" else ""
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{name}{suffix}"
    base = mini_config(args.config) if args.scale == "mini" else None

    def config(overrides: list[str]):
        return load_config(None if base is not None else args.config, overrides, base=base)

    def runner(overrides: list[str], run_dir: Path) -> None:
        result = run(config(overrides), out=run_dir)
        print(result.line())

    result = run_sweep(axes, fixed, out, runner, mode="zip" if args.zip else "grid", check=config)
    print(f"sweep table: {result.table_md} and {result.table_csv}"
          + (f"; plot: {result.plot}" if result.plot else ""))
    if result.failed:
        print(f"{len(result.failed)} run(s) failed: {', '.join(result.failed)}")
        return 1
    return 0


def mini_config(path: str | None) -> dict:
    """The config at ``path`` with its ``mini:`` block deep-merged in (paper configs, see
    ``spikeflow reproduce``); the ``paper:``/``mini:`` metadata blocks are dropped."""
    from spikeflow.utils.safe_yaml import safe_load_yaml

    if path is None:
        raise ValueError("--scale mini needs a paper CONFIG with a `mini:` block")
    with open(path, encoding="utf-8") as fh:
        data = safe_load_yaml(fh.read(), str(path)) or {}
    mini = data.pop("mini", None)
    data.pop("paper", None)
    if not isinstance(mini, dict):
        raise ValueError(f"{path}: --scale mini needs a `mini:` mapping of overrides "
                         f"(found {mini!r})")
    return _merge(data, mini)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out

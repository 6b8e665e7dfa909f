"""``spikeflow data {list,check,emulate}``: registered datasets, their files, the DVS emulator."""
from __future__ import annotations

import sys
from typing import Any

from spikeflow.commands import add_parser

EXAMPLES = """\
  spikeflow data list                                  # datasets and whether their files are found
  spikeflow data check nmnist --root /data/N-MNIST     # verify a dataset folder (train and test)
  spikeflow data check fashion_mnist --split test
  spikeflow data emulate digits --out ~/.cache/spikeflow/n_digits   # static images -> events
"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "data", "list, check and emulate datasets",
                   "Datasets are read from the original published files under a root folder\n"
                   "(nothing is downloaded). `list` shows every registered dataset and whether its\n"
                   "files are found, `check` verifies one folder, `emulate` turns a static image\n"
                   "dataset into DVS event streams (saccades, like N-MNIST).", EXAMPLES)
    sub = p.add_subparsers(dest="data_command", metavar="{list,check,emulate}")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    lst = add_parser(sub, "list", "registered datasets and whether their files are found",
                     "List registered datasets; for each, try to open its test split (from the\n"
                     "dataset's environment variable or default location) and report. Nothing is\n"
                     "generated or cached: emulated sets not generated yet are listed as such.",
                     "  spikeflow data list\n  spikeflow data list --names-only\n")
    lst.add_argument("--names-only", action="store_true", help="only print the names")
    lst.set_defaults(func=_list)
    chk = add_parser(sub, "check", "verify a dataset folder",
                     "Open the dataset's splits from --root, read the first and last item of each,\n"
                     "and report sizes, shapes and label ranges; exit code 1 on any problem.",
                     "  spikeflow data check nmnist --root /data/N-MNIST\n"
                     "  spikeflow data check digits --split test\n")
    chk.add_argument("name", metavar="NAME")
    chk.add_argument("--root", help="dataset folder (default: the dataset's env var / location)")
    chk.add_argument("--split", action="append", dest="splits", metavar="SPLIT",
                     help="split(s) to check (default: train and test)")
    chk.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="dataset option (YAML value), e.g. T=10")
    chk.set_defaults(func=_check)
    from spikeflow.commands import _emulate

    _emulate.register(sub)


def _first_line(err: BaseException) -> str:
    """The error's first line, plus the first listed item when the first line ends with a colon."""
    text = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    head = text[0] if text else ""
    if head.endswith(":") and len(text) > 1:
        head = f"{head} {text[1]}"
    return f"{type(err).__name__}: {head}"


# Options that keep `data list` cheap: no frame cache build, no emulation (tried in order; a
# dataset that does not know an option raises TypeError and the next, smaller set is tried).
PROBE_OPTIONS = ({"precompute": False, "generate": False}, {"precompute": False}, {})


def probe_dataset(name: str) -> str:
    """``found (N test samples)`` or ``not found: <reason>``, without building caches."""
    from spikeflow.data import create_dataset
    from spikeflow.data.emulated import NotGeneratedError

    for options in PROBE_OPTIONS:
        try:
            return f"found ({len(create_dataset(name, split='test', **options))} test samples)"
        except TypeError as err:
            if "unknown option" in str(err) or "unexpected keyword" in str(err):
                continue
            return "not found: " + _first_line(err)
        except NotGeneratedError as err:
            return "available, " + str(err).split(": ", 1)[1]
        except Exception as err:  # noqa: BLE001 - report any failure as "not found"
            return "not found: " + _first_line(err)
    return "not found: no probe options accepted"


def _list(args) -> int:
    from spikeflow.data import list_datasets

    for name in list_datasets():
        print(name if args.names_only else f"{name:<20} {probe_dataset(name)}")
    return 0


def _options(items: list[str]) -> dict[str, Any]:
    from spikeflow.train.config import parse_override

    out = {}
    for item in items:
        keys, value = parse_override(item)
        out[".".join(keys)] = value
    return out


def describe_item(ds: Any, index: int) -> str:
    """``[T, P, H, W] float32, label 3`` for item ``index`` of ``ds``."""
    import numpy as np

    x, y = ds[index]
    shape = tuple(getattr(x, "shape", ()))
    dtype = str(getattr(x, "dtype", type(x).__name__)).replace("torch.", "")
    label = y if np.ndim(y) == 0 else f"tensor{tuple(np.shape(y))}"
    return f"input {list(shape)} {dtype}, label {label}"


def _check(args) -> int:
    from spikeflow.data import DATASETS, create_dataset, list_datasets

    list_datasets()  # import the dataset modules
    if args.name not in DATASETS:
        raise ValueError(f"unknown dataset {args.name!r}; registered: {', '.join(DATASETS.names())}")
    options = _options(args.option)
    ok = True
    for split in args.splits or ["train", "test"]:
        try:
            ds = create_dataset(args.name, root=args.root, split=split, **options)
            n = len(ds)
            if n == 0:
                raise ValueError("the split is empty")
            first, last = describe_item(ds, 0), describe_item(ds, n - 1)
            classes = getattr(ds, "classes", None)
            extra = f", {len(classes)} classes" if classes is not None else ""
            print(f"{args.name}/{split}: ok, {n} samples{extra}; first: {first}; last: {last}")
        except Exception as err:  # noqa: BLE001 - every problem is reported, then exit 1
            ok = False
            print(f"{args.name}/{split}: FAILED: {type(err).__name__}: {err}", file=sys.stderr)
    return 0 if ok else 1

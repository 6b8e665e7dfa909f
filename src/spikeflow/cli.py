"""The ``spikeflow`` command line: thin sub-commands discovered in :mod:`spikeflow.commands`.

Every module ``spikeflow/commands/<name>.py`` exposing ``register(subparsers)`` adds one
sub-command; nothing here needs editing to add one. ``register`` creates its parser with
``subparsers.add_parser(...)`` and sets ``func`` (``args -> exit code``) with ``set_defaults``.
Handlers import heavy modules lazily so ``spikeflow --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Sequence

import spikeflow

DESCRIPTION = """\
spikeflow: train, compare and measure spiking neural networks and recurrent baselines.

examples:
  spikeflow train                          # the built-in default job (PLIF SNN on n_digits)
  spikeflow train configs/plif/nmnist.yaml --set train.epochs=5 data.root=/data/nmnist
  spikeflow test runs/n_digits-plif_ndigits-20260101-120000
  spikeflow export runs/n_digits-plif_ndigits-20260101-120000 --format nir   # NIR graph
  spikeflow data list
  spikeflow bench
  spikeflow summary configs/plif/nmnist.yaml --noise    # layer table: shapes, params, ops, energy
"""

#: errors shown as one line instead of a traceback (exit code 2 for ValueError/TypeError: bad
#: config or arguments; 1 otherwise): OSError covers missing/unreadable files, read-only or full
#: disks and paths of the wrong kind (FileNotFoundError, PermissionError, IsADirectoryError, ...)
USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError)


def format_user_error(err: BaseException) -> str:
    """One-line text of a :data:`USER_ERRORS` error: OS errors as ``<reason>: <path>``, type
    errors with their class name, everything else as its message."""
    if isinstance(err, OSError) and err.strerror and type(err).__str__ is OSError.__str__:
        paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
        return f"{err.strerror}: {paths}" if paths else err.strerror
    if isinstance(err, TypeError):
        return f"TypeError: {err}"
    return str(err)


def discover_commands() -> list[str]:
    """Names of the modules in :mod:`spikeflow.commands` (alphabetical)."""
    import spikeflow.commands as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered sub-command registered."""
    parser = argparse.ArgumentParser(prog="spikeflow", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"spikeflow {spikeflow.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in discover_commands():
        try:
            module = importlib.import_module(f"spikeflow.commands.{name}")
        except Exception as err:  # noqa: BLE001 - one broken command must not hide the others
            print(f"warning: sub-command {name!r} is unavailable: {type(err).__name__}: {err}",
                  file=sys.stderr)
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spikeflow`` console script; returns the exit code.

    Tunes the process first (:func:`spikeflow.runtime.configure`: OpenMP spin-wait, numba cache
    folder), before any command module imports torch. Called in a process that has already
    imported torch (tests, notebooks), the spin-wait is left alone (it could not take effect).
    """
    from spikeflow import runtime

    runtime.configure(omp_spin="short" if "torch" not in sys.modules else "default")
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code = func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if os.environ.get("SPIKEFLOW_DEBUG"):
            raise
        print(f"spikeflow {args.command}: error: {format_user_error(err)}\n"
              "(set SPIKEFLOW_DEBUG=1 for a traceback)", file=sys.stderr)
        return 2 if isinstance(err, (ValueError, TypeError)) else 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

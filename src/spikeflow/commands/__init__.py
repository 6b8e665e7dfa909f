"""Sub-commands of the ``spikeflow`` CLI, one module each, discovered by :mod:`spikeflow.cli`.

A module here provides ``register(subparsers)``::

    def register(subparsers):
        p = subparsers.add_parser("report", help="...", description="...", epilog="examples: ...")
        p.add_argument("run_dir")
        p.set_defaults(func=_main)        # _main(args) -> int exit code

Keep imports of torch and friends inside the handler so ``spikeflow --help`` stays fast.
"""
from __future__ import annotations

import argparse

EXAMPLES = argparse.RawDescriptionHelpFormatter


def add_parser(subparsers, name: str, help: str, description: str, examples: str):
    """``subparsers.add_parser`` with the description and an ``examples:`` epilog kept verbatim."""
    return subparsers.add_parser(name, help=help, description=description,
                                 epilog="examples:\n" + examples.rstrip() + "\n",
                                 formatter_class=EXAMPLES)

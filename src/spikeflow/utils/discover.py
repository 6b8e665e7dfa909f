"""Import every public module of a package once, so that their ``@register`` decorators run."""
from __future__ import annotations

import importlib
import pkgutil

_done: set[str] = set()


def import_submodules(package: str) -> None:
    """Import all modules of ``package`` whose names do not start with ``_`` (idempotent)."""
    if package in _done:
        return
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
    _done.add(package)

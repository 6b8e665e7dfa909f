"""One generic name -> factory registry, used for models, datasets and surrogates.

Example:
    >>> from spikeflow.registry import Registry
    >>> colors = Registry("color")
    >>> @colors.register("red")
    ... def red(shade: int = 1) -> str:
    ...     return f"red{shade}"
    >>> colors.create("red", shade=2)
    'red2'
    >>> colors.names()
    ['red']
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """Maps names to factories (functions or classes) of one kind (e.g. "model")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator registering a factory under ``name`` (default: its ``__name__``)."""

        def deco(fn: F) -> F:
            key = name or fn.__name__
            if key in self._entries and self._entries[key] is not fn:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; a ValueError lists the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            close = fnmatch.filter(self._entries, f"*{name}*")
            hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
            raise ValueError(
                f"unknown {self.kind} {name!r}{hint}; known: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the factory ``name`` with ``kwargs`` (``None`` values are dropped, timm-style)."""
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        return sorted(fnmatch.filter(self._entries, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

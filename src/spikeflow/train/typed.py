"""Build a dataclass from a nested dict, checking every key and value against the annotations.

Supported annotations: ``int``, ``float`` (ints accepted), ``bool``, ``str``, ``dict``, ``Any``,
``Optional[...]``, ``Literal[...]``, ``list[...]`` and nested dataclasses. Errors are
:class:`ConfigError` naming the dotted key path and what is allowed.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 0.1
    >>> build_dataclass(Opt, {"lr": 1}, "optim")
    Opt(lr=1.0)
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import typing
from typing import Any, Literal, Union


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type or an impossible value."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(inner)}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            dict: "a mapping", Any: "anything"}.get(tp, str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"config key {key}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin is Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError:
                pass
        raise bad
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"config key {key}: got {value!r}; allowed: "
                              + ", ".join(str(a) for a in typing.get_args(tp)))
        return value
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise bad
        (inner,) = typing.get_args(tp) or (Any,)
        return [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad
        return copy.deepcopy(value)
    raise bad  # pragma: no cover - every annotation above is handled


def build_dataclass(cls: type, data: Any, prefix: str = "") -> Any:
    """``cls(**data)`` with every key checked (unknown -> "did you mean") and every value coerced
    to its annotation; nested dataclass fields are built recursively under ``prefix.key``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix or '<root>'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{prefix + '.' if prefix else ''}{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{path}'{hint}; allowed keys"
                              f"{' in ' + prefix if prefix else ''}: {', '.join(names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = build_dataclass(tp, value, path)
        else:
            kwargs[key] = coerce(value, tp, path)
    return cls(**kwargs)


__all__ = ["ConfigError", "coerce", "build_dataclass"]

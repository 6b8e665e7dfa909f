"""Build a dataclass from a nested dict, checking every key and value against the annotations.

Supported annotations: ``int``, ``float`` (ints accepted; NaN and +-inf refused), ``bool``,
``str``, ``dict`` (no NaN/inf anywhere inside either), ``Any``, ``Optional[...]``,
``Literal[...]``, ``list[...]`` and nested dataclasses. Errors are :class:`ConfigError` naming the
dotted key path and what is allowed; values are shown shortened (:func:`short_repr`), so a huge
value cannot make an error message slow.

:func:`safe_load_yaml` is ``yaml.safe_load`` with bounds (:mod:`spikeflow.utils.safe_yaml`): at
most :data:`MAX_YAML_BYTES` of text and :data:`MAX_YAML_NODES` nodes after alias expansion (a
"billion laughs" document of a few hundred bytes expands to 10^9 nodes; it is refused while still
in its compact form), at most :data:`MAX_YAML_DEPTH` levels of nesting, no recursive aliases.

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
import math
import reprlib
import typing
from typing import Any, Literal, Union

from spikeflow.utils.safe_yaml import (MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES,
                                      YAMLLimitError)
from spikeflow.utils.safe_yaml import safe_load_yaml as _safe_load_yaml


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type or an impossible value."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 80, 80


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 200 characters (nested containers elided with ``...``)."""
    return _REPR.repr(value)


def safe_load_yaml(text: str | bytes, source: str = "<yaml>") -> Any:
    """:func:`spikeflow.utils.safe_yaml.safe_load_yaml` (size, alias-expansion and depth limits)
    raising :class:`ConfigError` for documents over the limits."""
    try:
        return _safe_load_yaml(text, source)
    except YAMLLimitError as err:
        raise ConfigError(str(err)) from None


class NonFiniteError(ConfigError):
    """A config float is NaN or infinite (final: not retried against other ``Union`` members)."""


def check_finite(value: Any, key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` (``a.b.c`` / ``a[2]``) if a float inside
    ``value`` (a number, list or mapping) is NaN or infinite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NonFiniteError(f"config key {key}: must be a finite number, got {value}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, f"{key}[{i}]")


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
    bad = ConfigError(f"config key {key}: expected {_type_name(tp)}, got {short_repr(value)}")
    if tp is Any:
        check_finite(value, key)
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
            except NonFiniteError:
                raise
            except ConfigError:
                pass
        raise bad
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"config key {key}: got {short_repr(value)}; allowed: "
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
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        check_finite(float(value), key)
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
        check_finite(value, key)
        return copy.deepcopy(value)
    raise bad  # pragma: no cover - every annotation above is handled


def build_dataclass(cls: type, data: Any, prefix: str = "") -> Any:
    """``cls(**data)`` with every key checked (unknown -> "did you mean") and every value coerced
    to its annotation; nested dataclass fields are built recursively under ``prefix.key``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix or '<root>'} must be a mapping, "
                          f"got {short_repr(data)}")
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


__all__ = ["ConfigError", "coerce", "build_dataclass", "check_finite", "safe_load_yaml",
           "short_repr", "MAX_YAML_BYTES", "MAX_YAML_NODES", "MAX_YAML_DEPTH"]

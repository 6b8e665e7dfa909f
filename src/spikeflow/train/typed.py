"""Build a dataclass from a nested dict, checking every key and value against the annotations.

Supported annotations: ``int``, ``float`` (ints accepted; NaN and +-inf refused), ``bool``,
``str``, ``dict`` (no NaN/inf anywhere inside either), ``Any``, ``Optional[...]``,
``Literal[...]``, ``list[...]`` and nested dataclasses. Errors are :class:`ConfigError` naming the
dotted key path and what is allowed; values are shown shortened (:func:`short_repr`), so a huge
value cannot make an error message slow.

:func:`safe_load_yaml` is ``yaml.safe_load`` with bounds: at most :data:`MAX_YAML_BYTES` of text
and :data:`MAX_YAML_NODES` nodes after alias expansion (a "billion laughs" document of a few
hundred bytes expands to 10^9 nodes; it is refused while still in its compact form), at most
:data:`MAX_YAML_DEPTH` levels of nesting, no recursive aliases.

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

import yaml


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type or an impossible value."""


#: largest YAML text accepted (configs are a few kB)
MAX_YAML_BYTES = 1 << 20
#: most nodes (scalars + sequences + mappings) a YAML document may have once aliases are expanded
MAX_YAML_NODES = 100_000
#: deepest nesting of sequences/mappings accepted
MAX_YAML_DEPTH = 64

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 80, 80


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 200 characters (nested containers elided with ``...``)."""
    return _REPR.repr(value)


def _expanded_nodes(root: yaml.Node, source: str) -> int:
    """Node count of ``root`` with every alias expanded (memoised per node: linear time)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source}: recursive YAML alias (a node that contains itself)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > MAX_YAML_NODES:
            raise ConfigError(f"{source}: YAML document expands to more than {MAX_YAML_NODES:,} "
                              "nodes (nested aliases, a 'billion laughs' document?); refused")
        sizes[key] = total
        return total

    return size(root)


class _DepthError(Exception):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that stops composing past :data:`MAX_YAML_DEPTH` levels."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _DepthError
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_load_yaml(text: str | bytes, source: str = "<yaml>") -> Any:
    """``yaml.safe_load(text)`` refusing documents over :data:`MAX_YAML_BYTES`, over
    :data:`MAX_YAML_NODES` expanded nodes, with recursive aliases or nested too deeply
    (:class:`ConfigError` naming ``source``); ``yaml.YAMLError`` for invalid YAML."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: YAML text of {len(text):,} bytes is over the limit of "
                          f"{MAX_YAML_BYTES:,} (configs are a few kB)")
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, source)
        return loader.construct_document(node)
    except (RecursionError, _DepthError):
        raise ConfigError(f"{source}: YAML document nested more than {MAX_YAML_DEPTH} levels "
                          "deep") from None
    finally:
        loader.dispose()


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

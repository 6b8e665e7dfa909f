"""``yaml.safe_load`` with bounds, for every YAML spikeflow reads (configs, run folders, sweeps).

PyYAML builds aliases as shared references, so a "billion laughs" document of a few hundred bytes
loads quickly but expands to 10^9 nodes as soon as anything walks it (``repr``, ``deepcopy``
without a memo, JSON). :func:`safe_load_yaml` refuses, before constructing any Python object:

* text over :data:`MAX_YAML_BYTES` (configs are a few kB),
* more than :data:`MAX_YAML_NODES` nodes once aliases are expanded (counted on the composed node
  graph with one memo entry per node: linear time in the document size),
* nesting deeper than :data:`MAX_YAML_DEPTH`, and recursive aliases (``&a [*a]``).

    >>> safe_load_yaml("a: &x {k: 1}\\nb: *x\\n")
    {'a': {'k': 1}, 'b': {'k': 1}}
"""
from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YAMLLimitError", "safe_load_yaml", "MAX_YAML_BYTES", "MAX_YAML_NODES",
           "MAX_YAML_DEPTH"]

#: largest YAML text accepted
MAX_YAML_BYTES = 1 << 20
#: most nodes (scalars + sequences + mappings) a document may have once aliases are expanded
MAX_YAML_NODES = 100_000
#: deepest nesting of sequences/mappings accepted
MAX_YAML_DEPTH = 64


class YAMLLimitError(ValueError):
    """A YAML document is over a size/expansion/depth limit or has a recursive alias."""


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


def _expanded_nodes(root: yaml.Node, source: str) -> int:
    """Node count of ``root`` with every alias expanded (memoised per node: linear time)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YAMLLimitError(f"{source}: recursive YAML alias (a node that contains itself)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > MAX_YAML_NODES:
            raise YAMLLimitError(f"{source}: YAML document expands to more than "
                                 f"{MAX_YAML_NODES:,} nodes (nested aliases, a 'billion laughs' "
                                 "document?); refused")
        sizes[key] = total
        return total

    return size(root)


def safe_load_yaml(text: str | bytes, source: str = "<yaml>") -> Any:
    """``yaml.safe_load(text)`` within the limits above (:class:`YAMLLimitError` naming
    ``source`` otherwise); ``yaml.YAMLError`` for invalid YAML."""
    if len(text) > MAX_YAML_BYTES:
        raise YAMLLimitError(f"{source}: YAML text of {len(text):,} bytes is over the limit of "
                             f"{MAX_YAML_BYTES:,} (configs are a few kB)")
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, source)
        return loader.construct_document(node)
    except (RecursionError, _DepthError):
        raise YAMLLimitError(f"{source}: YAML document nested more than {MAX_YAML_DEPTH} levels "
                             "deep") from None
    finally:
        loader.dispose()

"""A loaded NIR DAG: the graph's topology and :class:`GraphNet`, which runs it on ``[T, B, ...]``."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import Tensor, nn

from spikeflow.nir._common import NIRImportError


# -------------------------------------------------------------------------------------------- load
def _topology(graph: Any, where: str) -> tuple[str, str, list[str], dict[str, list[str]]]:
    """Input and Output node, the other nodes in an execution (topological) order, and each node's
    predecessors in edge order. Checks: one Input and one Output, edges name nodes, no cycle, every
    node fed (reachable from the Input) and feeding the Output."""
    import heapq

    import nir

    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRImportError(f"{where}: spikeflow loads graphs with one Input and one Output node, got "
                             f"{len(inputs)} and {len(outputs)}")
    preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for edge in graph.edges:
        a, b = edge
        if a not in graph.nodes or b not in graph.nodes:
            raise NIRImportError(f"{where}: edge ({a!r}, {b!r}) names a node that is not in the graph")
        if b in succ[a]:
            raise NIRImportError(f"{where}: edge ({a!r}, {b!r}) appears twice")
        preds[b].append(a)
        succ[a].append(b)
    inp, out = inputs[0], outputs[0]
    if preds[inp] or succ[out]:
        raise NIRImportError(f"{where}: an edge leads into the Input {inp!r} or out of the Output {out!r}")
    rank: dict[str, int] = {}      # ties: first appearance in the edges (nir.read sorts the nodes by name)
    for k in [k for e in graph.edges for k in e] + list(graph.nodes):
        rank.setdefault(k, len(rank))
    missing = {k: len(v) for k, v in preds.items()}
    ready, order = [(rank[inp], inp)], []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for s in succ[k]:
            missing[s] -= 1
            if missing[s] == 0:
                heapq.heappush(ready, (rank[s], s))
    done = set(order)
    left = [k for k in graph.nodes if k not in done]
    if left:
        orphans = [k for k in left if not preds[k]]
        if orphans:
            raise NIRImportError(f"{where}: nodes {orphans} have no incoming edge (not fed by the Input {inp!r})")
        cyc, peeled = set(left), True
        while peeled:   # peel nodes that feed nothing, or are fed by nothing, in the rest: cycles remain
            keep = {k for k in cyc if any(s in cyc for s in succ[k]) and any(a in cyc for a in preds[k])}
            peeled, cyc = keep != cyc, keep
        raise NIRImportError(f"{where}: the graph has a cycle through nodes {[k for k in left if k in cyc]}; "
                             "spikeflow loads DAGs (a cycle only inside the IIR-neuron subgraph)")
    feeds, stack = {out}, [out]
    while stack:
        for a in preds[stack.pop()]:
            if a not in feeds:
                feeds.add(a)
                stack.append(a)
    dead = [k for k in order if k not in feeds]
    if dead:
        raise NIRImportError(f"{where}: nodes {dead} do not lead to the Output {out!r}")
    return inp, out, [k for k in order if k not in (inp, out)], preds


class GraphNet(nn.Module):
    """A loaded NIR graph that is not a chain (e.g. SEW-ResNet's residual sums): its nodes run in a
    topological order, each on the whole sequence ``[T, B, ...]``, and a node's input is the sum of
    its predecessors' outputs (NIR's rule for several edges into one node).

    ``layers`` (an ``nn.ModuleDict``, keys: node names with ``.`` as ``_``) holds one spikeflow layer
    per node (an ``nn.Sequential`` where a node needs several, e.g. ``Scale`` + neuron);
    ``sources[key]`` names the nodes summed into it (``"input"`` for the graph's Input).
    Shape: ``[T, B, *in] -> [T, B, *out]``.
    """

    def __init__(self, layers: "OrderedDict[str, nn.Module]", sources: dict[str, list[str]],
                 output_sources: list[str]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.sources = {k: list(v) for k, v in sources.items()}
        self.output_sources = list(output_sources)
        last: dict[str, int] = {}
        keys = list(self.layers.keys())
        for i, k in enumerate(keys + ["<output>"]):
            srcs = self.sources.get(k) if k != "<output>" else self.output_sources
            bad = [s for s in srcs or [None] if s != "input" and s not in keys[:i]]
            if bad:
                raise ValueError(f"GraphNet: node {k!r} reads {bad}; sources must be 'input' or earlier layers "
                                 f"(a non-empty list each; layers in execution order)")
            for s in srcs if k != "<output>" else []:
                last[s] = i
        self._free = [[s for s, j in last.items() if j == i and s not in self.output_sources]
                      for i in range(len(keys))]

    @staticmethod
    def _sum(values: dict[str, Tensor], names: list[str]) -> Tensor:
        u = values[names[0]]
        for s in names[1:]:
            u = u + values[s]
        return u

    def forward(self, x: Tensor) -> Tensor:
        values = {"input": x}
        for (key, layer), free in zip(self.layers.items(), self._free):
            values[key] = layer(self._sum(values, self.sources[key]))
            for s in free:               # no later node reads it
                del values[s]
        return self._sum(values, self.output_sources)



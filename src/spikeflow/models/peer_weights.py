"""Load weights from another SNN library's checkpoint (SpikingJelly, snnTorch, Norse) by layer order.

Peers name their layers differently (``0.weight``, ``fc1.weight``, ``features.0.weight``) and keep
neuron constants in the state dict (snnTorch's ``lif1.beta``, ``lif1.threshold``), but the weights
of the connection and normalisation layers have the same meaning and shapes as in spikeflow. The
*weight groups* of a state dict are its entries whose last name part is one of
:data:`WEIGHT_KEYS` (``weight``, ``bias``, BatchNorm's running statistics and PLIF's ``w``,
``1/tau = sigmoid(w)`` in both SpikingJelly and spikeflow), grouped by module in state-dict order.
:func:`load_peer_weights` pairs the model's groups with the checkpoint's in order and copies them
when every pair has the same entries and shapes; otherwise it raises naming the first mismatch.

Neuron constants (``tau``, thresholds, snnTorch's ``beta = 1 - 1/tau``) are not weights: set them
in the spikeflow constructors (docs/coming_from_peers.md has the table).

    >>> import torch
    >>> from torch import nn
    >>> peer = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))      # any names
    >>> ours = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    >>> load_peer_weights(ours, peer.state_dict())
    [('0.weight', '0.weight'), ('0.bias', '0.bias'), ('2.weight', '1.weight'), ('2.bias', '1.bias')]
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

__all__ = ["WEIGHT_KEYS", "weight_groups", "load_peer_weights"]

#: last name parts of state-dict entries that are weights (not neuron constants or states)
WEIGHT_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked", "w")

Group = tuple[str, dict[str, str]]


def weight_groups(state: Mapping[str, object]) -> list[Group]:
    """``[(module prefix, {last part: full key})]`` of the weight entries of ``state``, in order."""
    groups: list[Group] = []
    for key in state:
        prefix, _, last = key.rpartition(".")
        if last not in WEIGHT_KEYS:
            continue
        if not groups or groups[-1][0] != prefix:
            groups.append((prefix, {}))
        groups[-1][1][last] = key
    return groups


def _describe(prefix: str, entries: dict[str, str], state: Mapping[str, object]) -> str:
    shapes = ", ".join(f"{k} {tuple(state[v].shape)}" for k, v in entries.items())
    return f"{prefix or '(root)'} [{shapes}]"


def load_peer_weights(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[tuple[str, str]]:
    """Copy the weights of ``state_dict`` (a peer library's ``model.state_dict()``) into ``model``.

    The weight groups (see the module docstring) of both are paired in order; a BatchNorm's
    ``num_batches_tracked`` may be missing on either side. Returns the copied
    ``(checkpoint key, model key)`` pairs. Raises ``ValueError`` (nothing is copied) when the
    number of groups, their entries or a shape differ. Load a checkpoint file with
    ``torch.load(path, weights_only=True)`` (never unpickle untrusted files with code).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_peer_weights expects an nn.Module, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    own = model.state_dict(keep_vars=True)
    ours, theirs = weight_groups(own), weight_groups(state_dict)
    if len(ours) != len(theirs):
        raise ValueError(
            f"the model has {len(ours)} weight layers but the checkpoint has {len(theirs)}:\n"
            f"  model:      {[p or '(root)' for p, _ in ours]}\n"
            f"  checkpoint: {[p or '(root)' for p, _ in theirs]}")
    pairs: list[tuple[str, str]] = []
    for _, their in theirs:
        for key in their.values():
            if not isinstance(state_dict[key], Tensor):
                raise ValueError(f"checkpoint entry {key!r} is a {type(state_dict[key]).__name__}, "
                                 "not a tensor")
    for i, ((mp, mine), (cp, their)) in enumerate(zip(ours, theirs)):
        keys = set(mine) | set(their)
        optional = {"num_batches_tracked"}
        if (set(mine) - optional) != (set(their) - optional) or any(
                tuple(own[mine[k]].shape) != tuple(state_dict[their[k]].shape)
                for k in keys if k in mine and k in their):
            raise ValueError(f"weight layer {i} does not match: model "
                             f"{_describe(mp, mine, own)} vs checkpoint "
                             f"{_describe(cp, their, state_dict)}")
        pairs += [(their[k], mine[k]) for k in mine if k in their]
    with torch.no_grad():
        for src, dst in pairs:
            own[dst].copy_(state_dict[src])
    return pairs

"""Hook-based recording of spiking (and recurrent) layer activity; models are never edited.

``SpikeRecorder(model)`` attaches forward hooks to every spiking module (subclasses of
:class:`spikeflow.neurons.BaseNeuron`) and to the recurrent baselines (subclasses of
``spikeflow.layers.RecurrentBaseline`` and ``torch.nn.RNN/LSTM/GRU``), and accumulates per layer and
per step over any number of forward calls (batches):

* ``sums[t]``      total output of the layer at step ``t`` (= spike count for a spiking layer),
* ``nonzero[t]``   number of non-zero outputs at step ``t`` (activation sparsity),
* ``samples[t]``   number of samples that reached step ``t``,
* ``neurons``      neurons per sample ``N_l = numel / (T * B)``.

Optionally (off by default, memory-bounded by ``max_bytes``) the full output tensors
(``keep_spikes``) and the module inputs, i.e. the membrane inputs of the neurons (``keep_inputs``),
are kept on the CPU. Hooks are removed when the ``with`` block exits, even on error.

Example:
    >>> import torch
    >>> from spikeflow.neurons import BaseNeuron
    >>> class Step(BaseNeuron):
    ...     def run(self, x, state=None):
    ...         return (x >= 1).to(x.dtype), state
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), Step())
    >>> with SpikeRecorder(net) as rec:
    ...     _ = net(torch.ones(5, 2, 3))          # [T=5, B=2, 3]
    >>> rec.layers["1"].neurons, rec.layers["1"].T
    (4, 5)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import torch
from torch import Tensor, nn

from spikeflow.neurons.base import BaseNeuron

SPIKING = "spiking"
RECURRENT = "recurrent"


_FLOAT32_EXACT = 2**24  # integers up to this are exact in float32


def exact_sum(x: Tensor, dim: int) -> Tensor:
    """Sum over ``dim``; float32 (fast) when the partial sums of integer-valued inputs stay exact
    (fewer than 2^24 terms), float64 otherwise. Spike counts are therefore always exact."""
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
        return x.sum(dim=dim, dtype=torch.int32 if x.shape[dim] < 2**31 else torch.int64)
    if x.dtype in (torch.float16, torch.bfloat16) or x.shape[dim] >= _FLOAT32_EXACT:
        return x.sum(dim=dim, dtype=torch.float64)
    return x.sum(dim=dim)


def count_nonzero(x: Tensor, dim: int) -> Tensor:
    """Number of non-zero elements along ``dim`` (int32 accumulation when it cannot overflow)."""
    mask = x.ne(0).view(torch.uint8)  # summing uint8 is much faster than summing bool
    return mask.sum(dim=dim, dtype=torch.int32 if x.shape[dim] < 2**31 else torch.int64)


@dataclass
class LayerRecord:
    """Accumulated activity of one layer (all counts summed over batches and ranks).

    Attributes:
        name: qualified module name in the model (``model.named_modules()``).
        kind: ``"spiking"`` or ``"recurrent"`` (hidden activations of a recurrent baseline).
        neurons: neurons per sample ``N_l`` (product of the non-time, non-batch dims).
        sums: float64 ``[T]``, total output per step (spike counts for binary outputs).
        nonzero: float64 ``[T]``, number of non-zero outputs per step.
        samples: float64 ``[T]``, number of samples seen at each step.
    """

    name: str
    kind: str = SPIKING
    neurons: int = 0
    sums: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    nonzero: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    samples: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    spikes: list[Tensor] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)

    @property
    def T(self) -> int:  # noqa: N802 (paper notation)
        return int(self.sums.numel())

    @property
    def total(self) -> float:
        """Total output (spikes) over all steps and samples."""
        return float(self.sums.sum())

    @property
    def elements(self) -> float:
        """Neuron-steps seen: ``sum_t samples[t] * N_l``."""
        return float(self.samples.sum()) * self.neurons

    def add(self, out: Tensor) -> None:
        """Accumulate one output sequence ``[T, B, ...]``."""
        if out.dim() < 2:
            raise ValueError(
                f"layer {self.name!r}: expected an output of shape [T, B, ...], got {tuple(out.shape)}"
            )
        T, B = out.shape[0], out.shape[1]
        n = 1
        for d in out.shape[2:]:
            n *= int(d)
        if self.neurons and n != self.neurons:
            raise ValueError(
                f"layer {self.name!r}: {n} neurons per sample in this call but {self.neurons} "
                "before; a recorder expects a fixed layer size"
            )
        self.neurons = n
        flat = out.detach().reshape(T, -1)
        sums = exact_sum(flat, dim=1).to("cpu", torch.float64)
        nonzero = count_nonzero(flat, dim=1).to("cpu", torch.float64)
        self._grow(T)
        self.sums[:T] += sums
        self.nonzero[:T] += nonzero
        self.samples[:T] += B

    def _grow(self, T: int) -> None:
        if T > self.sums.numel():
            pad = T - self.sums.numel()
            zeros = torch.zeros(pad, dtype=torch.float64)
            self.sums = torch.cat([self.sums, zeros])
            self.nonzero = torch.cat([self.nonzero, zeros])
            self.samples = torch.cat([self.samples, zeros])

    def stacked(self, what: str = "spikes") -> Tensor:
        """The kept tensors of ``what`` ("spikes" or "inputs") joined along the batch dim."""
        items = getattr(self, what)
        if not items:
            raise ValueError(
                f"layer {self.name!r} kept no {what}; create the recorder with "
                f"keep_{what}=True (and a large enough max_bytes)"
            )
        return torch.cat(items, dim=1)


def is_recurrent_module(module: nn.Module) -> bool:
    """True for torch's RNN/LSTM/GRU layers and spikeflow's recurrent baselines."""
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return True
    try:
        from spikeflow.layers import RecurrentBaseline  # type: ignore[attr-defined]
    except ImportError:
        return False
    return isinstance(module, RecurrentBaseline)


def is_inside(name: str, prefixes: list[str]) -> bool:
    """True when module ``name`` lies strictly inside one of the modules named in ``prefixes``."""
    return any(name != p and (p == "" or name.startswith(p + ".")) for p in prefixes)


def find_layers(model: nn.Module, recurrent: bool = True) -> list[tuple[str, nn.Module, str]]:
    """``(name, module, kind)`` of the layers a recorder hooks, in module order.

    Spiking: the outermost :class:`BaseNeuron` modules (a neuron nested in a neuron is one layer).
    Recurrent: the outermost recurrent modules (a wrapper around ``nn.LSTM`` is one layer); a stacked
    recurrent module is recorded through its output, i.e. the hidden activations of its last layer.
    """
    found: list[tuple[str, nn.Module, str]] = []
    prefixes: list[str] = []
    for name, module in model.named_modules():
        if is_inside(name, prefixes):
            continue
        if isinstance(module, BaseNeuron):
            found.append((name, module, SPIKING))
            prefixes.append(name)
        elif recurrent and is_recurrent_module(module) and not isinstance(module, nn.RNNCellBase):
            found.append((name, module, RECURRENT))
            prefixes.append(name)
    return found


def _first_tensor(output: Any) -> Optional[Tensor]:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    return None


class SpikeRecorder:
    """Context manager recording every spiking / recurrent layer of ``model``.

    Args:
        model: any ``nn.Module``; it is not modified (only hooks are attached, then removed).
        recurrent: also record the hidden activations of recurrent baselines.
        keep_spikes: keep the full output tensors on the CPU (``rec.layers[name].spikes``).
        keep_inputs: keep the module inputs (membrane inputs) on the CPU.
        max_bytes: budget for kept tensors over all layers; once exceeded nothing more is kept and
            ``truncated`` becomes True (a warning says so).

    ``rec.layers`` maps layer names to :class:`LayerRecord` (ordered as in the model).
    """

    def __init__(
        self,
        model: nn.Module,
        recurrent: bool = True,
        keep_spikes: bool = False,
        keep_inputs: bool = False,
        max_bytes: int = 256 * 2**20,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"SpikeRecorder expects an nn.Module, got {type(model).__name__}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.model = model
        self.keep_spikes = bool(keep_spikes)
        self.keep_inputs = bool(keep_inputs)
        self.max_bytes = int(max_bytes)
        self.kept_bytes = 0
        self.truncated = False
        self.layers: dict[str, LayerRecord] = {}
        self._targets = find_layers(model, recurrent=recurrent)
        self._handles: list[Any] = []
        for name, _, kind in self._targets:
            self.layers[name] = LayerRecord(name=name, kind=kind)

    # -- context management -------------------------------------------------------------------
    def __enter__(self) -> "SpikeRecorder":
        self.attach()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def attach(self) -> None:
        """Attach the hooks (called by ``__enter__``)."""
        if self._handles:
            return
        for name, module, _ in self._targets:
            self._handles.append(module.register_forward_hook(self._make_hook(name)))

    def detach(self) -> None:
        """Remove every hook this recorder attached (called by ``__exit__``)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def reset(self) -> None:
        """Forget everything recorded so far (hooks stay as they are)."""
        for name, record in self.layers.items():
            self.layers[name] = LayerRecord(name=name, kind=record.kind)
        self.kept_bytes = 0
        self.truncated = False

    def __iter__(self) -> Iterator[LayerRecord]:
        return iter(self.layers.values())

    def __len__(self) -> int:
        return len(self.layers)

    # -- hooks --------------------------------------------------------------------------------
    def _make_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            out = _first_tensor(output)
            if out is None:
                raise TypeError(
                    f"SpikeRecorder: layer {name!r} ({type(module).__name__}) returned "
                    f"{type(output).__name__}; expected a tensor [T, B, ...]"
                )
            if isinstance(module, nn.RNNBase) and module.batch_first:
                out = out.transpose(0, 1)
            record = self.layers[name]
            record.add(out)
            if self.keep_spikes:
                self._keep(record.spikes, out)
            if self.keep_inputs and args and isinstance(args[0], Tensor):
                inp = args[0]
                if isinstance(module, nn.RNNBase) and module.batch_first:
                    inp = inp.transpose(0, 1)
                self._keep(record.inputs, inp)

        return hook

    def _keep(self, store: list[Tensor], tensor: Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self.kept_bytes + size > self.max_bytes:
            if not self.truncated:
                warnings.warn(
                    f"SpikeRecorder: kept tensors would exceed max_bytes={self.max_bytes}; "
                    "further tensors are not kept (counts are still complete)",
                    stacklevel=3,
                )
            self.truncated = True
            return
        self.kept_bytes += size
        store.append(tensor.detach().to("cpu", copy=True))

    # -- distributed --------------------------------------------------------------------------
    def all_reduce(self, group: Any = None) -> None:
        """Sum the counts of every layer over all ranks (no-op unless torch.distributed is up).

        Every rank must call it (it is a collective). Per-step vectors are padded to the longest
        ``T`` over ranks first, so ranks with different sequence lengths reduce correctly.
        Kept tensors are not gathered.
        """
        all_reduce_records(self.layers, group=group)


def all_reduce_records(layers: dict[str, LayerRecord], group: Any = None) -> None:
    """Sum ``sums``, ``nonzero``, ``samples`` and ``neurons`` of ``layers`` over all ranks in place."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or not layers:
        return
    backend = dist.get_backend(group)
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    records = list(layers.values())
    lengths = torch.tensor([r.T for r in records], dtype=torch.float64, device=device)
    dist.all_reduce(lengths, op=dist.ReduceOp.MAX, group=group)
    neurons = torch.tensor([r.neurons for r in records], dtype=torch.float64, device=device)
    dist.all_reduce(neurons, op=dist.ReduceOp.MAX, group=group)
    parts = []
    for record, T in zip(records, lengths.tolist()):
        record._grow(int(T))
        parts += [record.sums, record.nonzero, record.samples]
    flat = torch.cat(parts).to(device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
    flat = flat.cpu()
    offset = 0
    for record, n in zip(records, neurons.tolist()):
        T = record.T
        record.sums = flat[offset:offset + T].clone()
        record.nonzero = flat[offset + T:offset + 2 * T].clone()
        record.samples = flat[offset + 2 * T:offset + 3 * T].clone()
        record.neurons = int(n)
        offset += 3 * T

"""A model table (what ``torchinfo`` gives for ANNs), with the counts spikeflow measures.

``summary(model, input, T=...)`` runs the model once without gradients on a sample (a tensor
``[T, B, ...]``, or a per-step shape ``(C, H, W)`` / ``(F,)`` filled with seeded uniform noise in
``[0, 1)``) under :class:`~spikeflow.metrics.SpikeRecorder` and
:class:`~spikeflow.metrics.SynOpCounter`, and returns a :class:`ModelSummary`: one row per layer
and the totals. A *layer* is a module that is a neuron or filter (``StatefulModule``), a recurrent
baseline, a ``SeqToBatch`` block, a leaf module or a block holding parameters itself (e.g. ASA
attention): its children are counted in its row. A model holding parameters itself gets a row
``(model)`` for those only. Per row:

* ``shape``: the output shape ``[T, B, ...]`` of the last call (``calls`` > 1: it ran more often);
* ``params`` / ``trainable``: parameter elements (shared parameters counted once, in the first row);
* ``neuron``: the neuron or filter type with its time constants (``tau``, PLIF's ``1/sigmoid(w)``,
  ``tau_m``/``tau_s``, ``decay``);
* ``rate``: firing rate ``FR_l`` of its spiking layers (:func:`~spikeflow.metrics.firing_rates`), or
  for a recurrent baseline the fraction of non-zero hidden activations;
* ``ac`` / ``mac``: synaptic operations per sample over all ``T`` (:mod:`spikeflow.metrics.synops`);
* ``act_bytes``: bytes of the layer's outputs per sample (all ``T`` steps; summed over calls).

Totals: parameters (= ``sum(p.numel())`` over unique parameters), ACs, MACs, the energy estimate
``E = ACs * E_AC + MACs * E_MAC`` (:class:`~spikeflow.metrics.EnergyModel`), NASFR, activation and
parameter bytes. Rates and operation counts depend on the input: pass a real sample to measure.

    >>> import torch, spikeflow as sf
    >>> net = torch.nn.Sequential(sf.layers.SeqToBatch(torch.nn.Linear(4, 3)), sf.neurons.LIF())
    >>> s = sf.summary(net, (4,), T=5)
    >>> s.params, [r.shape for r in s.rows]
    (15, [(5, 1, 3), (5, 1, 3)])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from spikeflow.metrics.complexity import count_parameters, memory_footprint
from spikeflow.metrics.energy import EnergyModel
from spikeflow.metrics.evaluate import neuron_taus
from spikeflow.metrics.firing import firing_rates, nasfr
from spikeflow.metrics.recorder import SPIKING, SpikeRecorder, is_inside, is_recurrent_module
from spikeflow.metrics.synops import SynOpCounter
from spikeflow.neurons.base import StatefulModule
from spikeflow.utils.numfmt import format_energy_pj, format_number

__all__ = ["LayerRow", "ModelSummary", "summary", "summary_layers", "make_sample"]

InputLike = Union[Tensor, Sequence[int]]


@dataclass
class LayerRow:
    """One layer of a :class:`ModelSummary` (counts per sample; see the module docstring)."""

    name: str
    type: str
    shape: Optional[tuple[int, ...]] = None
    calls: int = 0
    params: int = 0
    trainable: int = 0
    neuron: str = ""
    rate: Optional[float] = None
    rate_kind: str = ""
    ac: float = 0.0
    mac: float = 0.0
    act_bytes: float = 0.0


@dataclass
class ModelSummary:
    """Rows and totals of :func:`summary`; ``to_text()``, ``to_markdown()``, ``line()``, ``to_dict()``."""

    name: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    params: int
    trainable: int
    param_bytes: int
    buffer_bytes: int
    ac: float
    mac: float
    energy_pj: float
    e_ac_pj: float
    e_mac_pj: float
    nasfr: Optional[float]
    act_bytes: float
    notes: list[str] = field(default_factory=list)

    @property
    def T(self) -> int:  # noqa: N802 (paper notation)
        return int(self.input_shape[0])

    @property
    def batch(self) -> int:
        return int(self.input_shape[1])

    @property
    def spiking_layers(self) -> int:
        return sum(1 for r in self.rows if r.rate_kind == SPIKING)

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        for row in out["rows"]:
            row["shape"] = None if row["shape"] is None else list(row["shape"])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSummary":
        """Rebuild a summary written by :meth:`to_dict` (e.g. a run's ``model_summary.json``)."""
        try:
            rows = [LayerRow(**{**r, "shape": None if r.get("shape") is None else tuple(r["shape"])})
                    for r in data["rows"]]
            rest = {k: v for k, v in data.items() if k != "rows"}
            rest["input_shape"] = tuple(rest["input_shape"])
            return cls(rows=rows, **rest)
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a model summary dict ({type(err).__name__}: {err})") from None

    # -- rendering ------------------------------------------------------------------------------
    HEADERS = ("layer", "type", "output shape", "params", "trainable", "neuron", "rate",
               "ACs", "MACs", "act. memory")

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Headers and formatted cells (one row per layer, then the totals row)."""
        rows = []
        for r in self.rows:
            shape = "-" if r.shape is None else "[" + ", ".join(str(d) for d in r.shape) + "]"
            if r.calls > 1:
                shape += f" x{r.calls}"
            rate = "" if r.rate is None else f"{r.rate:.4f}" + ("" if r.rate_kind == SPIKING else " (act)")
            rows.append([r.name or "(model)", r.type, shape, f"{r.params:,}", f"{r.trainable:,}",
                         r.neuron, rate, format_number(r.ac), format_number(r.mac), bytes_text(r.act_bytes)])
        rows.append(["total", f"{len(self.rows)} layers", self._shape_text(self.input_shape) + " in",
                     f"{self.params:,}", f"{self.trainable:,}",
                     f"{self.spiking_layers} spiking" if self.spiking_layers else "",
                     "" if self.nasfr is None else f"{self.nasfr:.4f} (NASFR)",
                     format_number(self.ac), format_number(self.mac), bytes_text(self.act_bytes)])
        return list(self.HEADERS), rows

    @staticmethod
    def _shape_text(shape: Sequence[int]) -> str:
        return "[" + ", ".join(str(d) for d in shape) + "]"

    def footer(self) -> list[str]:
        """The totals in words: parameters, operations, energy, memory."""
        lines = [
            f"parameters: {self.params:,} ({self.trainable:,} trainable), "
            f"{bytes_text(self.param_bytes)} (+ {bytes_text(self.buffer_bytes)} buffers)",
            f"per sample over T={self.T}: {format_number(self.ac)} ACs, {format_number(self.mac)} MACs, energy "
            f"{format_energy_pj(self.energy_pj)} (E_AC {self.e_ac_pj:g} pJ, E_MAC {self.e_mac_pj:g} pJ; "
            "45 nm, compute only)",
            f"activations: {bytes_text(self.act_bytes)} per sample "
            f"({bytes_text(self.act_bytes * self.batch)} for the batch of {self.batch})",
        ]
        return lines + list(self.notes)

    def to_text(self) -> str:
        """A plain-text table with aligned columns, then the totals."""
        headers, rows = self.table()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        left = {0, 1, 5}

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(fmt(headers))
        body = [fmt(r) for r in rows[:-1]]
        return "\n".join([f"{self.name}: input {self._shape_text(self.input_shape)}", rule,
                          fmt(headers), rule, *body, rule, fmt(rows[-1]), rule,
                          *self.footer()]) + "\n"

    def to_markdown(self) -> str:
        """A Markdown table (numbers right-aligned), then the totals as a list."""
        headers, rows = self.table()
        esc = [[c.replace("|", "\\|") for c in r] for r in rows]
        align = ["---" if i in (0, 1, 5) else "---:" for i in range(len(headers))]
        lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in esc[:-1]]
        lines.append("| " + " | ".join(f"**{c}**" if c else "" for c in esc[-1]) + " |")
        return "\n".join(lines) + "\n\n" + "\n".join(f"- {f}" for f in self.footer()) + "\n"

    def line(self) -> str:
        """One compact line, e.g. ``model plif_nmnist: 11.5M params, 14 layers (4 spiking), ...``."""
        spk = f" ({self.spiking_layers} spiking)" if self.spiking_layers else ""
        rate = "" if self.nasfr is None else f", NASFR {self.nasfr:.3f}"
        return (f"model {self.name}: {format_number(self.params)} params, {len(self.rows)} layers{spk}, "
                f"input {self._shape_text(self.input_shape)}, per sample {format_number(self.ac)} ACs + "
                f"{format_number(self.mac)} MACs = {format_energy_pj(self.energy_pj)}{rate}, activations "
                f"{bytes_text(self.act_bytes)}")

    def __str__(self) -> str:
        return self.to_text()


# -- formatting helpers --------------------------------------------------------------------------
def bytes_text(n: float) -> str:
    """``2048 -> '2.0 KiB'``."""
    n = float(n)
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


# -- the measurement -----------------------------------------------------------------------------
def _atomic(name: str, module: nn.Module) -> bool:
    """Modules shown as one row without their children."""
    from spikeflow.layers.seq_to_batch import SeqToBatch  # noqa: PLC0415

    return (isinstance(module, (StatefulModule, SeqToBatch)) or is_recurrent_module(module)
            or next(module.children(), None) is None or (name != "" and _owns(module)))


def _owns(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def summary_layers(model: nn.Module) -> list[tuple[str, nn.Module, bool]]:
    """``(name, module, atomic)`` of the rows of :func:`summary`, in module order.

    Atomic rows (see the module docstring) cover their children; the one non-atomic row is a
    model (the root module) that holds parameters itself.
    """
    found: list[tuple[str, nn.Module, bool]] = []
    atomic: list[str] = []
    for name, module in model.named_modules():
        if is_inside(name, atomic):
            continue
        if _atomic(name, module):
            found.append((name, module, True))
            atomic.append(name)
        elif _owns(module):
            found.append((name, module, False))
    return found


def _type_name(module: nn.Module) -> str:
    from spikeflow.layers.seq_to_batch import SeqToBatch  # noqa: PLC0415

    if isinstance(module, SeqToBatch):
        inner = module.module
        parts = [type(m).__name__ for m in inner] if isinstance(inner, nn.Sequential) \
            else [type(inner).__name__]
        return f"SeqToBatch({'+'.join(parts)})"
    return type(module).__name__


def _neuron_text(name: str, module: nn.Module, taus: dict[str, float]) -> str:
    if not isinstance(module, StatefulModule):
        return ""
    parts = []
    if name in taus:
        parts.append(f"tau={taus[name]:.4g}")
    for attr in ("tau_m", "tau_s", "decay"):
        value = getattr(module, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{attr}={value:.4g}")
    if not parts and name not in taus and hasattr(module, "tau"):
        value = getattr(module, "tau")
        if isinstance(value, (int, float)):
            parts.append(f"tau={value:.4g}")
    return " ".join([type(module).__name__, *parts])


def make_sample(input: InputLike, T: Optional[int] = None, batch_size: int = 1, seed: int = 0,
                device: Optional[torch.device] = None) -> Tensor:
    """The model input ``[T, B, ...]``: a tensor checked against ``T``, or noise of a per-step shape.

    A tensor must be time-first; when ``T`` is given its dim 0 must equal it (a tensor whose dim 1
    is ``T`` is reported as batch-first). A shape is the per-step shape ``(C, H, W)`` / ``(F,)``
    (without ``T`` and ``B``) and needs ``T``; it becomes ``U[0, 1)`` noise from ``seed``.
    """
    if isinstance(input, Tensor):
        if input.dim() < 2:
            raise ValueError(f"summary: the sample must be [T, B, ...], got shape {tuple(input.shape)}")
        if T is not None and input.shape[0] != T:
            hint = (" (dim 1 equals T: the sample looks batch-first [B, T, ...]; use "
                    "x.transpose(0, 1) or spikeflow.data.DataLoader)") if input.shape[1] == T else ""
            raise ValueError(f"summary: T={T} but the sample has shape {tuple(input.shape)} with "
                             f"{input.shape[0]} steps in dim 0{hint}")
        return input if device is None else input.to(device)
    try:
        shape = tuple(int(d) for d in input)
    except TypeError:
        raise TypeError(f"summary: input must be a tensor [T, B, ...] or a per-step shape, got "
                        f"{type(input).__name__}") from None
    if T is None or int(T) < 1:
        raise ValueError(f"summary: a per-step input shape {shape} needs T >= 1 (got T={T})")
    if batch_size < 1 or any(d < 1 for d in shape):
        raise ValueError(f"summary: batch_size and the input shape must be positive, got "
                         f"batch_size={batch_size}, shape={shape}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((int(T), int(batch_size), *shape), generator=gen)
    return x if device is None else x.to(device)


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    return []


def _model_device(model: nn.Module) -> Optional[torch.device]:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None


@torch.no_grad()
def summary(model: nn.Module, input: InputLike, T: Optional[int] = None, *, batch_size: int = 1,
            name: Optional[str] = None, energy: EnergyModel = EnergyModel(), seed: int = 0
            ) -> ModelSummary:
    """Run ``model`` once on ``input`` and tabulate its layers (see the module docstring).

    Args:
        model: any ``nn.Module`` taking ``[T, B, ...]`` (it is run in ``eval()`` mode and restored;
            stored states of ``persistent`` neurons are put back).
        input: a sample ``[T, B, ...]`` or a per-step shape (needs ``T``).
        T: number of steps (checked against a sample's dim 0).
        batch_size: ``B`` of the noise input built from a shape.
        name: the model's name in the table (default: its class name).
        energy: energy per AC / MAC in pJ.
        seed: seed of the noise input.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary expects an nn.Module, got {type(model).__name__}")
    x = make_sample(input, T, batch_size, seed, _model_device(model))
    batch = int(x.shape[1])
    layers = summary_layers(model)
    rows: dict[str, LayerRow] = {}
    seen: set[int] = set()
    taus = neuron_taus(model)
    for lname, module, is_atomic in layers:
        params = list(module.parameters(recurse=is_atomic))
        fresh = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in fresh)
        rows[lname] = LayerRow(
            name=lname, type=_type_name(module), params=sum(p.numel() for p in fresh),
            trainable=sum(p.numel() for p in fresh if p.requires_grad),
            neuron=_neuron_text(lname, module, taus))

    def hook_for(row: LayerRow, count_bytes: bool):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            tensors = _tensors(output)
            row.calls += 1
            if tensors:
                row.shape = tuple(int(d) for d in tensors[0].shape)
            if count_bytes:
                row.act_bytes += sum(t.numel() * t.element_size() for t in tensors) / batch
        return hook

    stored = {m: m._stored_state for m in model.modules() if isinstance(m, StatefulModule)}
    was_training = model.training
    handles = [module.register_forward_hook(hook_for(rows[lname], is_atomic))
               for lname, module, is_atomic in layers]
    model.eval()
    try:
        with SpikeRecorder(model) as rec, SynOpCounter(model) as ops:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        for m, state in stored.items():
            m._stored_state = state

    names = [n for n, _, _ in layers]

    def owner(inner: str) -> Optional[str]:
        best = None
        for n in names:  # the innermost row containing ``inner``
            if (n == inner or n == "" or inner.startswith(n + ".")) and (best is None or len(n) > len(best)):
                best = n
        return best

    rates = firing_rates(rec, kind="all")
    weights: dict[str, list[tuple[float, float, str]]] = {}
    for lname, record in rec.layers.items():
        if lname in rates and (row_name := owner(lname)) is not None:
            weights.setdefault(row_name, []).append((rates[lname], record.elements, record.kind))
    for row_name, items in weights.items():
        total = sum(w for _, w, _ in items)
        rows[row_name].rate = sum(r * w for r, w, _ in items) / total if total else 0.0
        rows[row_name].rate_kind = SPIKING if any(k == SPIKING for _, _, k in items) else items[0][2]
    per_layer = ops.per_layer() if ops.samples else {}
    for cname, counts in per_layer.items():
        row_name = owner(cname)
        if row_name is not None:
            rows[row_name].ac += counts["ac"]
            rows[row_name].mac += counts["mac"]
    totals = ops.totals() if ops.samples else {"ac": 0.0, "mac": 0.0}
    has_spikes = any(r.kind == SPIKING and r.elements > 0 for r in rec)
    foot = memory_footprint(model)
    return ModelSummary(
        name=name or type(model).__name__, input_shape=tuple(int(d) for d in x.shape),
        rows=list(rows.values()), params=count_parameters(model),
        trainable=count_parameters(model, trainable_only=True), param_bytes=foot["params"],
        buffer_bytes=foot["buffers"], ac=float(totals["ac"]), mac=float(totals["mac"]),
        energy_pj=energy.energy_pj(totals), e_ac_pj=energy.e_ac, e_mac_pj=energy.e_mac,
        nasfr=nasfr(rec) if has_spikes else None,
        act_bytes=sum(r.act_bytes for r in rows.values()),
    )

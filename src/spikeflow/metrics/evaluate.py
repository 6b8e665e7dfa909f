"""One pass over a test loader collecting every metric of a run (``metrics_test.json``).

``evaluate_metrics(model, loader, device)`` runs the model without gradients under a
:class:`SpikeRecorder` and a :class:`SynOpCounter` and returns a JSON-ready dict:

* ``accuracy`` (arg-max of the mean output over T or of the last step; labels as indices or
  one-hot; None with ``accuracy="none"``), ``samples``;
* ``nasfr``, per-layer ``layers`` rows (kind, neurons, firing rate, per-step rates, sparsity),
  ``activation_sparsity``;
* ``synops``: per-sample ``ac``, ``mac``, ``dense`` and ``per_layer``; ``energy_pj`` per sample
  (``E_AC``/``E_MAC`` configurable);
* ``params``, ``trainable_params``, ``footprint_bytes``, ``connection_sparsity``;
* ``latency``: median wall time of one batch and of one sample, throughput in samples/s;
* ``neuron_tau``: the time constant of every neuron layer that has one (PLIF's learnt tau).

Under ``torch.distributed`` all counts are summed over ranks (every rank must call it).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor, nn

from spikeflow.metrics.complexity import (
    connection_sparsity, count_parameters, measure_latency, memory_footprint,
)
from spikeflow.metrics.energy import EnergyModel
from spikeflow.metrics.firing import activation_sparsity, layer_summary, nasfr
from spikeflow.metrics.recorder import SPIKING, SpikeRecorder
from spikeflow.metrics.synops import SynOpCounter
from spikeflow.neurons.base import BaseNeuron
from spikeflow.utils.atomic import atomic_write_text

Batch = Any
Prepare = Callable[[Batch, torch.device], tuple[Tensor, Tensor]]


def default_prepare(batch: Batch, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(x, y)`` from a ``(input, label, ...)`` batch, moved to ``device``; x must be ``[T, B, ...]``."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(f"expected batches (input, label, ...), got {type(batch).__name__}")
    return batch[0].to(device), batch[1].to(device)


def predictions(output: Tensor, mode: str = "mean") -> Tensor:
    """Class indices from a model output ``[T, B, K]`` (``mode`` "mean" over T or "last" step) or ``[B, K]``."""
    if mode not in ("mean", "last"):
        raise ValueError(f"accuracy mode must be 'mean', 'last' or 'none', got {mode!r}")
    if output.dim() == 3:
        output = output.float().mean(dim=0) if mode == "mean" else output[-1].float()
    if output.dim() != 2:
        raise ValueError(f"expected a model output [T, B, K] or [B, K], got {tuple(output.shape)}")
    return output.argmax(dim=1)


def labels_of(y: Tensor) -> Tensor:
    """Integer labels ``[B]`` from indices ``[B]`` or one-hot / soft targets ``[B, K]``."""
    return y.argmax(dim=1) if y.dim() == 2 else y.long()


def neuron_taus(model: nn.Module) -> dict[str, float]:
    """``name -> tau`` for every neuron layer exposing a scalar ``tau`` (e.g. PLIF's 1/sigmoid(w))."""
    out: dict[str, float] = {}
    for name, module in model.named_modules():
        if not isinstance(module, BaseNeuron):
            continue
        tau = getattr(module, "tau", None)
        if isinstance(tau, Tensor) and tau.numel() == 1:
            out[name] = float(tau.detach())
        elif isinstance(tau, (int, float)):
            out[name] = float(tau)
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def _reduce_sum(values: list[float]) -> list[float]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return values
    device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.cpu().tolist()


@torch.no_grad()
def evaluate_metrics(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device | str = "cpu",
    *,
    prepare: Prepare = default_prepare,
    forward: Optional[Callable[[nn.Module, Tensor], Tensor]] = None,
    energy: EnergyModel = EnergyModel(),
    max_batches: Optional[int] = None,
    latency_repeats: int = 3,
    accuracy: str = "mean",
) -> dict[str, Any]:
    """Evaluate ``model`` on ``loader`` and return every metric (see the module docstring).

    Args:
        prepare: ``(batch, device) -> (x [T, B, ...], y)``.
        forward: ``(model, x) -> output [T, B, K]``; default ``model(x)``.
        energy: energy per AC / MAC in pJ.
        max_batches: stop after this many batches (None: the whole loader).
        latency_repeats: timed repeats for the latency figures (0 skips timing).
        accuracy: "mean" (arg-max of the mean output over T), "last" (of the last step) or
            "none" (no accuracy, e.g. sequence targets; ``accuracy`` is then None).
    """
    if accuracy not in ("mean", "last", "none"):
        raise ValueError(f"accuracy must be 'mean', 'last' or 'none', got {accuracy!r}")
    device = torch.device(device)
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    run = forward or (lambda m, x: m(x))
    correct = seen = 0
    first_x: Optional[Tensor] = None
    try:
        with SpikeRecorder(net) as rec, SynOpCounter(net) as ops:
            for i, batch in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                x, y = prepare(batch, device)
                if first_x is None:
                    first_x = x
                out = run(net, x)
                if accuracy != "none":
                    correct += int((predictions(out, accuracy) == labels_of(y).to(out.device)).sum())
                seen += int(x.shape[1])
        rec.all_reduce()
        ops.all_reduce()
        correct, seen = (int(v) for v in _reduce_sum([correct, seen]))
        if seen == 0:
            raise ValueError("evaluate_metrics: the loader yielded no batch")
        result = _assemble(net, rec, ops, energy, correct / seen if accuracy != "none" else None, seen)
        result["device"] = str(device)
        result["T"] = int(first_x.shape[0]) if first_x is not None else None
        if latency_repeats > 0 and first_x is not None:
            timed = lambda x: run(net, x)  # noqa: E731
            result["latency"] = {
                "batch": measure_latency(timed, first_x, warmup=1, repeats=latency_repeats),
                "sample": measure_latency(timed, first_x[:, :1], warmup=1, repeats=latency_repeats),
            }
    finally:
        net.train(was_training)
    return result


def _assemble(net: nn.Module, rec: SpikeRecorder, ops: SynOpCounter, energy: EnergyModel,
              acc: Optional[float], seen: int) -> dict[str, Any]:
    totals = ops.totals() if ops.samples else {"ac": 0.0, "mac": 0.0, "dense": 0.0}
    has_spikes = any(r.kind == SPIKING and r.elements > 0 for r in rec)
    has_any = any(r.elements > 0 for r in rec)
    rows = layer_summary(rec)
    return {
        "accuracy": acc,
        "samples": seen,
        "nasfr": nasfr(rec) if has_spikes else None,
        "firing_rates": {r["name"]: r["firing_rate"] for r in rows if r["kind"] == SPIKING},
        "activation_sparsity": activation_sparsity(rec) if has_any else None,
        "layers": rows,
        "synops": {**totals, "per_layer": ops.per_layer() if ops.samples else {}},
        "energy_pj": energy.energy_pj(totals),
        "energy_model": {"e_ac_pj": energy.e_ac, "e_mac_pj": energy.e_mac},
        "params": count_parameters(net),
        "trainable_params": count_parameters(net, trainable_only=True),
        "footprint_bytes": memory_footprint(net),
        "connection_sparsity": connection_sparsity(net),
        "neuron_tau": neuron_taus(net),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics_json(path: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Write ``metrics`` as indented JSON atomically (:mod:`spikeflow.utils.atomic`)."""
    return atomic_write_text(path, json.dumps(_jsonable(metrics), indent=2, sort_keys=False) + "\n")


def read_metrics_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``metrics_test.json``; a clear error names the file when it is missing or corrupt."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no metrics file (run `spikeflow test` on the run first)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


__all__ = [
    "evaluate_metrics", "write_metrics_json", "read_metrics_json", "default_prepare",
    "predictions", "labels_of", "neuron_taus",
]

"""Firing rates, NASFR and activation sparsity from a recording.

Definitions (ASA-SNN, Yao et al.; ``research/seeds_spec.md`` R3.7). For layer ``l`` with ``N_l``
neurons per sample, spike count ``S_{l,t}`` at step ``t`` summed over all samples, and ``M_t``
samples reaching step ``t``:

    FR_{l,t} = S_{l,t} / (M_t * N_l)                         (per-step rate)
    FR_l     = sum_t S_{l,t} / (sum_t M_t * N_l)             (= sum_t S_{l,t} / (T * C_l) for fixed T)
    NASFR    = sum_l FR_l N_l / sum_l N_l                    (spiking layers only)
             = total spikes / (total neurons * T * samples)  for a fixed T

Activation sparsity (NeuroBench): ``1 - nonzero / elements`` over all recorded layers, steps and
samples (recurrent baselines' hidden activations included).

Every function accepts a :class:`SpikeRecorder` or a mapping ``name -> LayerRecord``.
"""
from __future__ import annotations

from typing import Mapping, Union

from spikeflow.metrics.recorder import RECURRENT, SPIKING, LayerRecord, SpikeRecorder

Recording = Union[SpikeRecorder, Mapping[str, LayerRecord]]


def _layers(rec: Recording) -> Mapping[str, LayerRecord]:
    if isinstance(rec, SpikeRecorder):
        return rec.layers
    if isinstance(rec, Mapping):
        return rec
    raise TypeError(f"expected a SpikeRecorder or a mapping of LayerRecord, got {type(rec).__name__}")


def _seen(record: LayerRecord) -> bool:
    return record.elements > 0


def firing_rates(rec: Recording, kind: str = SPIKING) -> dict[str, float]:
    """Average firing rate ``FR_l`` of each layer of ``kind`` ("spiking", "recurrent" or "all").

    For recurrent layers the rate is the fraction of non-zero hidden activations (their "firing").
    Layers that saw no input are left out.
    """
    out: dict[str, float] = {}
    for name, r in _layers(rec).items():
        if not _seen(r) or (kind != "all" and r.kind != kind):
            continue
        num = float(r.sums.sum()) if r.kind == SPIKING else float(r.nonzero.sum())
        out[name] = num / r.elements
    return out


def firing_rates_per_step(rec: Recording, kind: str = SPIKING) -> dict[str, list[float]]:
    """Per-step rates ``FR_{l,t}`` of each layer of ``kind`` (list of length ``T``)."""
    out: dict[str, list[float]] = {}
    for name, r in _layers(rec).items():
        if not _seen(r) or (kind != "all" and r.kind != kind):
            continue
        num = r.sums if r.kind == SPIKING else r.nonzero
        rates = []
        for s, m in zip(num.tolist(), r.samples.tolist()):
            rates.append(s / (m * r.neurons) if m else 0.0)
        out[name] = rates
    return out


def nasfr(rec: Recording) -> float:
    """Neuron-average spike firing rate over all spiking layers: ``sum_l FR_l N_l / sum_l N_l``.

    Raises ValueError when the recording holds no spiking activity (nothing was run).
    """
    layers = [r for r in _layers(rec).values() if r.kind == SPIKING and _seen(r)]
    if not layers:
        raise ValueError("nasfr: the recording has no spiking layer with recorded activity")
    rates = firing_rates({r.name: r for r in layers})
    total_n = sum(r.neurons for r in layers)
    return sum(rates[r.name] * r.neurons for r in layers) / total_n


def activation_sparsity(rec: Recording, kind: str = "all") -> float:
    """``1 - non-zero activations / all activations`` over the layers of ``kind``."""
    layers = [r for r in _layers(rec).values() if _seen(r) and (kind == "all" or r.kind == kind)]
    if not layers:
        raise ValueError(f"activation_sparsity: no recorded layer of kind {kind!r}")
    nonzero = sum(float(r.nonzero.sum()) for r in layers)
    elements = sum(r.elements for r in layers)
    return 1.0 - nonzero / elements


def activation_sparsity_by_layer(rec: Recording, kind: str = "all") -> dict[str, float]:
    """Per-layer ``1 - non-zero / all`` activations."""
    return {
        name: 1.0 - float(r.nonzero.sum()) / r.elements
        for name, r in _layers(rec).items()
        if _seen(r) and (kind == "all" or r.kind == kind)
    }


def layer_summary(rec: Recording) -> list[dict]:
    """One row per recorded layer: name, kind, neurons, T, samples, rate, per-step rates, sparsity."""
    rows = []
    per_step = firing_rates_per_step(rec, kind="all")
    rates = firing_rates(rec, kind="all")
    sparsity = activation_sparsity_by_layer(rec)
    for name, r in _layers(rec).items():
        if not _seen(r):
            continue
        rows.append({
            "name": name,
            "kind": r.kind,
            "neurons": r.neurons,
            "T": r.T,
            "samples": int(r.samples.max()) if r.T else 0,
            "firing_rate": rates[name],
            "firing_rate_per_step": per_step[name],
            "sparsity": sparsity[name],
            "spikes": r.total if r.kind == SPIKING else None,
        })
    return rows


__all__ = [
    "firing_rates", "firing_rates_per_step", "nasfr", "activation_sparsity",
    "activation_sparsity_by_layer", "layer_summary", "RECURRENT", "SPIKING",
]

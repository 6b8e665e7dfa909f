"""Neuron factories of the seed papers, in one place (the zoo's only dependency on
:mod:`spikeflow.neurons` constructor signatures).

============  ==================================================================================
paper         neuron
============  ==================================================================================
PLIF (R2.1)   ``plif``/``lif``: tau0 2, V_th 1, hard reset to 0, ``>=``, ATan(alpha=2),
              ``detach_reset`` True in the published runs
ASA B (R3.3)  PLIF as above with ``detach_reset=False``
ASA A (R3.2)  ``decay_lif``: ``u = 0.3 u (1 - s) + I``, V_th 0.3, ``>=``, Rectangle(width 0.5)
He2020 (R4)   ``decay_lif`` with a strict ``>`` threshold
snn-iir (R1)  the snn-iir neuron (reset trace, ``v > 1``, Gaussian sigma 0.4)
============  ==================================================================================
"""
from __future__ import annotations

from torch import nn

__all__ = ["spiking_neuron", "decay_lif", "iir_neuron", "NEURON_KINDS"]

NEURON_KINDS = ("plif", "lif")


def spiking_neuron(kind: str = "plif", init_tau: float = 2.0, detach_reset: bool = True,
                   alpha: float = 2.0, v_threshold: float = 1.0) -> nn.Module:
    """PLIF (learnable ``tau``, one per layer) or LIF (fixed ``tau = init_tau``) with SpikingJelly's
    semantics (hard reset to 0, ``decay_input=True``, ATan surrogate)."""
    from spikeflow import neurons, surrogate  # noqa: PLC0415

    if kind not in NEURON_KINDS:
        raise ValueError(f"neuron must be one of {NEURON_KINDS}, got {kind!r}")
    if not float(init_tau) > 1.0:
        raise ValueError(f"init_tau must be > 1 (1/tau = sigmoid(w) < 1), got {init_tau!r}")
    common = dict(v_threshold=v_threshold, v_reset=0.0, detach_reset=detach_reset,
                  surrogate=surrogate.ATan(alpha=alpha))
    if kind == "plif":
        return neurons.PLIF(init_tau=float(init_tau), **common)
    return neurons.LIF(tau=float(init_tau), **common)


def decay_lif(decay: float = 0.3, v_threshold: float = 0.3, width: float = 0.5,
              strict: bool = False) -> nn.Module:
    """STBP neuron ``u[t] = decay u[t-1] (1 - s[t-1]) + I[t]``, ``s = H(u - V_th)`` with a rectangle
    surrogate of ``width`` (height ``1/width``); ``strict=True`` needs ``u > V_th`` (He2020)."""
    from spikeflow import neurons, surrogate  # noqa: PLC0415

    return neurons.DecayLIF(decay=decay, v_threshold=v_threshold, surrogate=surrogate.Rectangle(width=width),
                            compare=">" if strict else ">=")


def iir_neuron(tau_m: float = 4.0, membrane_filter: bool = False, persistent: bool = False,
               sigma: float = 0.4) -> nn.Module:
    """snn-iir neuron: ``v = m v + I - r``, ``s = v > 1``, reset trace ``r = e^{-1/tau_m} r + s``."""
    from spikeflow import neurons, surrogate  # noqa: PLC0415

    return neurons.IIRNeuron(tau_m=tau_m, membrane_filter=membrane_filter, persistent=persistent,
                             surrogate=surrogate.Gaussian(sigma=sigma))

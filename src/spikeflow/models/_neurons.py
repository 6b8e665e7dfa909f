"""Neuron factories of the seed papers (PLIF/LIF come from :func:`spikeflow.models.plif_net.make_neuron`).

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

__all__ = ["decay_lif", "iir_neuron"]


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

"""Multi-step spiking neurons: input ``[T, B, ...]`` -> spikes ``[T, B, ...]``.

``LIF``, ``PLIF`` and ``IF`` follow SpikingJelly's semantics; ``DecayLIF`` is the STBP neuron of
He2020/ASA-SNN; ``IIRNeuron`` is snn-iir's. :func:`create_neuron` builds one by name
(``"lif"``, ``"plif"``, ``"if"``, ``"decay_lif"``, ``"iir"``) for configs.
"""
from typing import Any

from spikeflow.neurons.base import BaseNeuron, detach_state
from spikeflow.neurons.decay_lif import DecayLIF, DecayLIFState
from spikeflow.neurons.if_ import IF
from spikeflow.neurons.iir import IIRNeuron, IIRState
from spikeflow.neurons.lif import LIF, LIFFamily, LIFState
from spikeflow.neurons.plif import PLIF
from spikeflow.registry import Registry

NEURONS: Registry = Registry("neuron")
for _name, _cls in (("lif", LIF), ("plif", PLIF), ("if", IF), ("decay_lif", DecayLIF),
                    ("iir", IIRNeuron)):
    NEURONS.register(_name)(_cls)


def create_neuron(name: str, **options: Any) -> BaseNeuron:
    """``create_neuron("plif", init_tau=2.0, surrogate="atan")``."""
    return NEURONS.create(name.lower(), **options)


__all__ = [
    "BaseNeuron", "detach_state", "LIF", "PLIF", "IF", "LIFFamily", "LIFState", "DecayLIF",
    "DecayLIFState", "IIRNeuron", "IIRState", "NEURONS", "create_neuron",
]

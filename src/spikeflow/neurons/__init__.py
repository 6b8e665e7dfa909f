"""Multi-step spiking neurons: input ``[T, B, ...]`` -> spikes ``[T, B, ...]``.

``LIF``, ``PLIF`` and ``IF`` follow SpikingJelly's semantics; ``DecayLIF`` is the STBP neuron of
He2020/ASA-SNN; ``IIRNeuron`` is snn-iir's. Each takes its options as keywords and gives them
back from ``.config()`` (``LIF(**lif.config())`` rebuilds it).
"""
from spikeflow.neurons.base import BaseNeuron, StatefulModule, detach_state
from spikeflow.neurons.decay_lif import DecayLIF, DecayLIFState
from spikeflow.neurons.if_ import IF
from spikeflow.neurons.iir import IIRNeuron, IIRState
from spikeflow.neurons.lif import LIF, LIFFamily, LIFState
from spikeflow.neurons.plif import PLIF

__all__ = [
    "BaseNeuron", "StatefulModule", "detach_state", "LIF", "PLIF", "IF", "LIFFamily", "LIFState",
    "DecayLIF", "DecayLIFState", "IIRNeuron", "IIRState",
]

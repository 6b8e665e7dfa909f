"""Multi-step spiking neurons: input ``[T, B, ...]`` -> spikes ``[T, B, ...]``."""
from spikeflow.neurons.base import BaseNeuron, detach_state

__all__ = ["BaseNeuron", "detach_state"]

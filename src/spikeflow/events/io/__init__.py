"""Event file readers and writers (numpy only). Every reader returns an ``EVENT_DTYPE`` array."""
from spikeflow.events.io.nmnist import read_nmnist, write_nmnist

__all__ = ["read_nmnist", "write_nmnist"]

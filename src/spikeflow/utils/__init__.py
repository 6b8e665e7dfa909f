"""Small leaf helpers (import nothing else from spikeflow)."""

"""spikeflow.train."""

"""spikeflow.functional."""

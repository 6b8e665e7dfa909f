"""spikeflow.layers."""

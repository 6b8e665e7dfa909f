"""spikeflow.metrics."""

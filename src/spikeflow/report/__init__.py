"""spikeflow.report."""

"""spikeflow.functional._kernels."""

"""spikeflow.ops._triton: the Triton kernels behind the CUDA implementations of the ops (private)."""

"""spikeflow.ops._cpu: the fused numba kernels behind the CPU implementations of the ops
(see docs/neurons.md). Private: only ``spikeflow.ops`` imports these modules."""

"""spikeflow.functional._kernels: the fused numba kernels (see docs/neurons.md)."""
from spikeflow.functional._kernels._cache import drop_stale_caches

drop_stale_caches()

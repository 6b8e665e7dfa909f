"""The numba cache set-up of the CPU kernels lives in :mod:`spikeflow._numba_cache` (torch-free, so
the event kernels share it); this name is kept for the kernel modules of this package."""
from spikeflow._numba_cache import cache_folder, ensure_numba_cache, inlined_sources_digest

__all__ = ["ensure_numba_cache", "cache_folder", "inlined_sources_digest"]

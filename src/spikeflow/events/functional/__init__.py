"""Pure numpy functions on event arrays: frame bins, accumulation, normalisation, augmentation.

Every function takes its inputs explicitly (random ones a ``numpy.random.Generator``) and never
modifies them; :mod:`spikeflow.events.transforms` wraps them in frozen dataclasses.
"""
from spikeflow.events.functional.accumulate import accumulate, accumulate_numpy, out_shape
from spikeflow.events.functional.bins import frame_slices
from spikeflow.events.functional.normalize import normalize_frames

__all__ = ["accumulate", "accumulate_numpy", "out_shape", "frame_slices", "normalize_frames"]

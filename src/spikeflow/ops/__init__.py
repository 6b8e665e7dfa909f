"""spikeflow.ops: the kernel boundary (see docs/ops.md).

Every fused multi-step computation is a ``torch.library`` custom operator ``spikeflow::NAME``
with a reference implementation (plain torch: the oracle, and what export decomposes to), a CPU
implementation (numba), a CUDA implementation (Triton), a fake implementation (compile/export)
and its fused backward. Device/dtype dispatch lives here and nowhere else; only this package
imports numba and triton, and nothing above it imports its private modules.
"""
from __future__ import annotations

from spikeflow.ops._cpu._alloc import zeros
from spikeflow.ops.codes import ATAN, CODES, GAUSSIAN, NAMES, RECTANGLE, SIGMOID, TRIANGLE
from spikeflow.ops.dispatch import (BACKENDS, BackendError, check_backend, fused_problem,
                                    use_fused)
from spikeflow.ops.decay_lif import decay_lif
from spikeflow.ops.iir_neuron import iir_neuron
from spikeflow.ops.lif import IF_MODE, LIF_MODE, PLIF_MODE, lif
from spikeflow.ops.packing import pack_bits, unpack_bits
from spikeflow.ops.sparse_linear import sparse_linear
from spikeflow.ops.synapse import iir2, low_pass, readout

__all__ = ["zeros", "SIGMOID", "ATAN", "RECTANGLE", "GAUSSIAN", "TRIANGLE", "CODES", "NAMES",
           "BACKENDS", "BackendError", "check_backend", "fused_problem", "use_fused",
           "lif", "IF_MODE", "LIF_MODE", "PLIF_MODE", "decay_lif", "iir_neuron",
           "iir2", "low_pass", "readout", "sparse_linear", "pack_bits", "unpack_bits",
           "decompositions"]


def decompositions() -> dict:
    """Every ``spikeflow::`` op overload mapped to its plain-torch reference implementation: the
    table for ``ExportedProgram.run_decompositions`` (a copy; see :mod:`spikeflow.export`)."""
    from spikeflow.ops._neuron_op import DECOMPOSITIONS

    return dict(DECOMPOSITIONS)

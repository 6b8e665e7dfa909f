"""torch.export and ONNX for spikeflow models (docs/export.md).

Every fused computation of spikeflow (LIF/PLIF/IF, DecayLIF, the IIR neuron, the synapse filters,
the sparse Linear, spike bit-packing) is a ``torch.library`` custom op ``spikeflow::NAME`` with a
fake implementation, so ``torch.export.export(model, (x,))`` traces it as one graph node. Such a
program runs where spikeflow is imported (the node calls the fused kernel). For other runtimes,
:func:`export` (``decompose=True``) replaces each ``spikeflow::`` node with the op's plain-torch
reference implementation, traced into ATen ops (the loop over ``T`` unrolled), and :func:`to_onnx`
hands that program to torch's dynamo ONNX exporter.

>>> import torch, spikeflow as sf
>>> from spikeflow.export import export, spikeflow_ops
>>> net = torch.nn.Sequential(sf.layers.SeqToBatch(torch.nn.Linear(4, 3)), sf.neurons.LIF())
>>> program = export(net.eval(), torch.rand(2, 5, 4))          # x: [T=2, B=5, 4]
>>> spikeflow_ops(program)                                      # all decomposed
[]
>>> program.module()(torch.rand(2, 5, 4)).shape
torch.Size([2, 5, 3])

The exported graph has the sample's static shapes (``T``, batch, image size) and the mode the
model was in: call ``model.eval()`` first for inference (dropout off, BatchNorm running statistics).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    from torch.onnx import ONNXProgram

__all__ = ["decompositions", "export", "to_onnx", "spikeflow_ops"]

Sample = Union[Tensor, tuple[Any, ...]]


def decompositions() -> dict:
    """Every ``spikeflow::`` op overload mapped to its plain-torch reference implementation, for
    ``ExportedProgram.run_decompositions(decompositions())`` (ATen ops are kept as they are)."""
    from spikeflow import ops

    return ops.decompositions()


def _args(sample: Sample) -> tuple[Any, ...]:
    if isinstance(sample, Tensor):
        return (sample,)
    if isinstance(sample, tuple):
        return sample
    raise TypeError(f"sample must be a tensor or a tuple of forward arguments, got {type(sample).__name__}")


def export(model: nn.Module, sample: Sample, *, decompose: bool = True
           ) -> torch.export.ExportedProgram:
    """``torch.export.export(model, sample)``, then (``decompose=True``) every ``spikeflow::`` op
    replaced by its reference implementation, so the program needs no spikeflow to run.

    Args:
        model: any module, e.g. ``create_model(name).eval()``.
        sample: the input (``[T, B, ...]`` for spikeflow models) or a tuple of forward arguments.
        decompose: replace the spikeflow ops (``False``: keep them as single nodes; the program
            then calls the fused kernels and needs ``import spikeflow`` wherever it runs).
    """
    program = torch.export.export(model, _args(sample))
    return program.run_decompositions(decompositions()) if decompose else program


def spikeflow_ops(program: torch.export.ExportedProgram) -> list[str]:
    """Names of the ``spikeflow::`` ops left in ``program``'s graph (sorted, without repeats)."""
    return sorted({str(node.target) for node in program.graph.nodes
                   if node.op == "call_function" and str(node.target).startswith("spikeflow.")})


def to_onnx(model: nn.Module, sample: Sample, path: Union[str, os.PathLike],
            *, opset_version: int | None = None) -> "ONNXProgram":
    """Export ``model`` to the ONNX file ``path`` with torch's dynamo exporter, spikeflow ops in
    their reference form (:func:`export`); returns the ``torch.onnx.ONNXProgram``.

    Needs the ``onnx`` extra (``pip install 'spikeflow[onnx]'``: onnx, onnxscript; onnxruntime runs
    the file). Inputs and outputs have the sample's static shapes.
    """
    try:
        import onnxscript  # noqa: F401  (torch's dynamo exporter builds the graph with it)
    except ImportError as err:
        raise ImportError("to_onnx needs onnx and onnxscript: pip install 'spikeflow[onnx]'") from err
    args = _args(sample)
    program = export(model, args, decompose=True)
    onnx_program = torch.onnx.export(program, args, dynamo=True, opset_version=opset_version,
                                     verbose=False)
    if onnx_program is None:  # pragma: no cover (dynamo=True always returns the program)
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNXProgram")
    onnx_program.save(os.fspath(path))
    return onnx_program

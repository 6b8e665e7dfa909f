"""The device the op tests run their Triton kernels on, chosen once per test run.

``SPIKEFLOW_TEST_DEVICE`` (environment): ``cpu`` (the default, CI) runs the Triton kernels under
the Triton interpreter on CPU tensors (``TRITON_INTERPRET=1``, set here unless already set, before
any kernel module is imported: ``triton.jit`` reads it when a kernel is defined); ``cuda`` compiles
and runs them on the GPU (``scripts/gpu_check.sh``). Tests build every tensor a kernel reads on
:data:`DEVICE`, compute their oracle on CPU and compare on CPU.

Import this module first (``from _device import DEVICE, ...``): ``tests/ops/conftest.py`` does, so
the environment is set before any test module of this folder is collected.
"""
import os

import pytest
import torch

__all__ = ["DEVICE", "ON_CUDA", "CUDA_MISSING", "SKIP_REASON", "require_device", "needs_device",
           "cuda_only"]

_NAME = os.environ.get("SPIKEFLOW_TEST_DEVICE", "cpu")
try:
    DEVICE = torch.device(_NAME)
except RuntimeError as err:
    raise ValueError(f"SPIKEFLOW_TEST_DEVICE must be 'cpu' or 'cuda' (or 'cuda:N'), got {_NAME!r}"
                     ) from err
if DEVICE.type not in ("cpu", "cuda"):
    raise ValueError(f"SPIKEFLOW_TEST_DEVICE must be 'cpu' or 'cuda' (or 'cuda:N'), got {_NAME!r}")

ON_CUDA = DEVICE.type == "cuda"
if ON_CUDA and DEVICE.index is None:  # "cuda" -> "cuda:0", so that `t.device == DEVICE` holds
    DEVICE = torch.device("cuda", 0)
if not ON_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # Triton kernels on CPU tensors

CUDA_MISSING = ON_CUDA and not torch.cuda.is_available()
SKIP_REASON = (f"SPIKEFLOW_TEST_DEVICE={_NAME} but torch.cuda.is_available() is False "
               f"(torch {torch.__version__}, CUDA build {torch.version.cuda}): the Triton kernels "
               "are not run; unset SPIKEFLOW_TEST_DEVICE to run them under the interpreter on CPU")

needs_device = pytest.mark.skipif(CUDA_MISSING, reason=SKIP_REASON)
"""Mark a test that runs Triton kernels on :data:`DEVICE` (skipped when CUDA is asked for but
absent)."""

cuda_only = pytest.mark.skipif(not ON_CUDA or CUDA_MISSING, reason=SKIP_REASON if CUDA_MISSING
                               else "runs with SPIKEFLOW_TEST_DEVICE=cuda on a GPU only")
"""Mark a test that only makes sense on a GPU (e.g. public modules with ``backend="fused"`` on
CUDA tensors: on CPU tensors that backend is the numba kernel, tested elsewhere)."""


def require_device() -> None:
    """Skip the calling test module (at import) when CUDA is asked for but absent."""
    if CUDA_MISSING:
        pytest.skip(SKIP_REASON, allow_module_level=True)

"""Shared fixtures of the op tests; the test device (``_device.py``, imported first: it sets
``TRITON_INTERPRET=1`` for CPU runs before any Triton kernel is defined)."""
from _device import DEVICE, ON_CUDA, CUDA_MISSING, SKIP_REASON  # isort: skip  (first import)

import os  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    """One header line naming where the Triton kernels run."""
    if CUDA_MISSING:
        return f"spikeflow op tests: Triton tests skipped: {SKIP_REASON}"
    where = "compiled for the GPU" if ON_CUDA else "under the Triton interpreter"
    return (f"spikeflow op tests: device {DEVICE}, Triton kernels {where} "
            f"(TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '')!r})")


def _numpy_raises_on_sized_int() -> bool:
    try:
        int(np.array([1]))
    except TypeError:
        return True
    return False


@pytest.fixture(autouse=True)
def _interpreter_loop_bounds_with_numpy_2_4():
    """triton 3.6's interpreter turns a runtime loop bound into an int with ``int(array of shape
    (1,))``, which numpy >= 2.4 refuses (triton-lang/triton#9171, fixed upstream by #9172 with
    ``squeeze()``). Apply that one-line fix around each test; a no-op where it is not needed
    (no interpreter: compiled kernels on a GPU; older numpy)."""
    if os.environ.get("TRITON_INTERPRET", "0").lower() not in ("1", "true", "on"):
        yield
        return
    try:
        from triton.runtime import interpreter
    except ImportError:  # no triton: the Triton tests skip themselves
        yield
        return
    original = interpreter._patch_lang_tensor

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))

    with pytest.MonkeyPatch.context() as mp:
        if _numpy_raises_on_sized_int():
            mp.setattr(interpreter, "_patch_lang_tensor", patched)
        yield

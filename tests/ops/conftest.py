"""Shared fixtures of the op tests."""
import numpy as np
import pytest


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
    ``squeeze()``). Apply that one-line fix around each test; a no-op where it is not needed."""
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

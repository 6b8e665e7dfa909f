"""``train.compile``: the training forward compiled once, for the shape of the run's batches.

``torch.compile`` specialises a graph to the input shape it first sees; a later input of another
shape (the last, smaller batch of an epoch without ``train.drop_last``) makes it compile again,
with a dynamic batch dimension: a second full inductor compile, tens of seconds on CPU and more on
a GPU, for one batch per epoch. :class:`CompiledForShape` compiles for the first input's shape and
runs inputs of any other shape through the eager module (the same parameters and buffers: the
compiled module wraps the eager one), as the CUDA-graph step does with a last partial batch.

>>> import torch
>>> net = CompiledForShape(torch.nn.Linear(4, 2), compile_fn=lambda m: m)  # stand-in compiler
>>> net(torch.zeros(3, 4)).shape, net(torch.zeros(1, 4)).shape, net.shape, net.eager_calls
(torch.Size([3, 2]), torch.Size([1, 2]), (3, 4), 1)
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

__all__ = ["CompiledForShape", "compile_for_training"]


class CompiledForShape(nn.Module):
    """``module`` compiled for the shape of its first input; other shapes run eagerly.

    Args:
        module: the model (or its DDP wrapper); the only registered submodule, so
            ``parameters()``, ``train()``/``eval()`` and ``state_dict()`` are the module's.
        compile_fn: ``module -> compiled callable`` (default ``torch.compile``), called once.

    Attributes: ``shape`` (the compiled input shape, ``None`` before the first call),
    ``eager_calls`` (calls with another shape).
    """

    def __init__(self, module: nn.Module,
                 compile_fn: Callable[[nn.Module], Callable[..., Any]] = torch.compile) -> None:
        super().__init__()
        self.module = module
        # kept outside the module tree: it wraps `module` (no second copy of the parameters)
        object.__setattr__(self, "_compiled", compile_fn(module))
        self.shape: Optional[tuple[int, ...]] = None
        self.eager_calls = 0

    def forward(self, x: Tensor) -> Any:
        shape = tuple(x.shape)
        if self.shape is None:
            self.shape = shape
        if shape == self.shape:
            return self._compiled(x)
        self.eager_calls += 1
        return self.module(x)


def compile_for_training(module: nn.Module, options: dict[str, Any]) -> CompiledForShape:
    """:class:`CompiledForShape` of ``module`` with ``torch.compile(**options)``
    (``train.compile_options``)."""
    return CompiledForShape(module, lambda m: torch.compile(m, **options))

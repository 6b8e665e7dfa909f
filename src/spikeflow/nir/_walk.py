"""The model walk of spikeflow.nir.export: a module tree as a list of leaf layers in order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

from torch import Tensor, nn


# ------------------------------------------------------------------------------------ model walk
@dataclass
class _Leaf:
    name: str          # dotted path in the model
    module: nn.Module
    folded: bool       # runs on [T*B, ...] (inside SeqToBatch) rather than on [T, B, ...]


class _FlattenSteps(nn.Module):
    """``x.flatten(2)`` of He2020MLP's forward as a layer of the walk."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2)


def _children(model: nn.Module, prefix: str) -> Optional[list[tuple[str, nn.Module]]]:
    """The ordered parts of a registered model class (lazy imports; ``None``: not a known class)."""
    from spikeflow.models.asa_nets import ASAArchA, ASAArchB
    from spikeflow.models.he2020 import He2020CNN, He2020MLP
    from spikeflow.models.iir_nets import IIRNet
    from spikeflow.models.plif_net import PLIFNet
    from spikeflow.models.plif_static import PLIFStaticNet
    from spikeflow.models.sew_resnet import SEWResNet

    if isinstance(model, PLIFNet):
        return [(f"{prefix}features", model.features), (f"{prefix}head", model.head)]
    if isinstance(model, PLIFStaticNet):
        from spikeflow.layers import SeqToBatch

        return [(f"{prefix}static_conv", SeqToBatch(model.static_conv)), (f"{prefix}conv", model.conv),
                (f"{prefix}fc", model.fc)]
    if isinstance(model, He2020MLP):
        return [(f"{prefix}flatten", _FlattenSteps()), (f"{prefix}layers", model.layers)]
    if isinstance(model, (He2020CNN, ASAArchA, ASAArchB, IIRNet)):
        return [(f"{prefix}layers", model.layers)]
    if isinstance(model, SEWResNet):   # its blocks are leaves of the walk (export's _export_sew_block)
        return [(f"{prefix}{k}", getattr(model, k))
                for k in ("stem", "stem_attn", "stem_sn", "pool", "layers", "head", "fc")]
    return None


def _walk(module: nn.Module, name: str, folded: bool = False) -> Iterator[_Leaf]:
    """Leaf layers of ``module`` in execution order."""
    from spikeflow.layers import SeqToBatch

    if isinstance(module, SeqToBatch):
        inner = module.module
        yield from _walk(inner, f"{name}.module" if name else "module", True)
        return
    if type(module).__name__ == "DroppedSpikes":   # He2020's neuron + the dropout masks of its reset
        yield _Leaf(f"{name}.neuron", module.neuron, folded)
        return
    if isinstance(module, nn.Sequential):
        for key, child in module.named_children():
            yield from _walk(child, f"{name}.{key}" if name else key, folded)
        return
    parts = _children(module, f"{name}." if name else "")
    if parts is not None:
        for key, child in parts:
            yield from _walk(child, key, folded)
        return
    yield _Leaf(name, module, folded)



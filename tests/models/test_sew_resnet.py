"""SEW-ResNet-18/34 (Fang et al. 2021) with ASA insertion: parameter counts (torchvision's ResNet
numbers and a layer-by-layer hand count), the connect functions against their truth tables, one
block against an independent transcription, shapes, gradients, and ASA changing the firing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeflow.layers import ASA
from spikeflow.models import create_model
from spikeflow.models.sew_resnet import SEWBasicBlock, SEWResNet, sew_connect


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def hand_count(blocks, in_ch: int, K: int, widths=(64, 128, 256, 512)) -> int:
    """Conv weights (no bias) + BN (2 C) per conv, 1x1 down-sample conv+BN where the shape changes,
    Linear(512 -> K) with bias."""
    total = in_ch * widths[0] * 49 + 2 * widths[0]
    c_in = widths[0]
    for i, (n, c) in enumerate(zip(blocks, widths)):
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            total += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c
            if stride != 1 or c_in != c:
                total += c_in * c + 2 * c
            c_in = c
    return total + c_in * K + K


def test_parameter_counts() -> None:
    # torchvision resnet18 / resnet34 (3 x 224 x 224, 1000 classes): 11,689,512 / 21,797,672
    assert n_params(create_model("sew_resnet18", in_channels=3, num_classes=1000)) == 11_689_512
    assert n_params(create_model("sew_resnet34", in_channels=3, num_classes=1000)) == 21_797_672
    assert hand_count((2, 2, 2, 2), 3, 1000) == 11_689_512
    # HAR-DVS: 2 polarities, 300 classes
    assert n_params(create_model("sew_resnet18")) == hand_count((2, 2, 2, 2), 2, 300) == 11_327_276
    # PLIF adds one w per spiking layer: stem + 2 per block + 3 down-sample paths = 20
    assert n_params(create_model("sew_resnet18", neuron="plif")) == 11_327_276 + 20
    # ASA(T, C) with reduction 1: alpha, beta, Linear(T, T) without bias, two 3x3 convs 2 -> 1
    T = 8
    asa = 2 + T * T + 2 * 2 * 9
    assert n_params(create_model("sew_resnet18", attention="asa", T=T)) == 11_327_276 + 17 * asa
    only4 = create_model("sew_resnet18", attention="asa", T=T, attention_stages=(4,))
    assert n_params(only4) == 11_327_276 + 4 * asa
    assert sum(isinstance(m, ASA) for m in only4.modules()) == 4


def test_connect_functions_match_the_truth_tables() -> None:
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])   # residual-branch spikes A
    s = torch.tensor([0.0, 1.0, 0.0, 1.0])   # shortcut spikes S
    ab, sb = a.bool(), s.bool()
    assert torch.equal(sew_connect(a, s, "ADD"), torch.tensor([0.0, 1.0, 1.0, 2.0]))
    assert torch.equal(sew_connect(a, s, "AND"), (ab & sb).float())
    assert torch.equal(sew_connect(a, s, "IAND"), (~ab & sb).float())   # (NOT A) AND S
    with pytest.raises(ValueError, match="connect"):
        sew_connect(a, s, "OR")


def _if_neuron(x: torch.Tensor) -> torch.Tensor:
    """IF, V_th 1, hard reset to 0: v += x; s = v >= 1; v *= 1 - s (loop over T)."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        v = v + x[t]
        s = (v >= 1.0).float()
        v = v * (1.0 - s)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("connect", ["ADD", "AND", "IAND"])
def test_block_matches_an_independent_transcription(connect: str) -> None:
    from spikeflow.models.sew_resnet import _Sites

    torch.manual_seed(1)
    sites = _Sites("none", 3, 0.5, 1, False, "if", 2.0, True, 2.0)
    block = SEWBasicBlock(4, 6, 2, connect, sites, False).eval()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-0.2, 0.6)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = (torch.rand(3, 2, 4, 8, 8) > 0.6).float()
    conv1, bn1 = block.conv1.module[0], block.conv1.module[1]
    conv2, bn2 = block.conv2.module[0], block.conv2.module[1]
    dconv, dbn = block.downsample[0].module[0], block.downsample[0].module[1]

    def per_step(conv: nn.Conv2d, bn: nn.BatchNorm2d, z: torch.Tensor) -> torch.Tensor:
        y = torch.stack([nn.functional.conv2d(z[t], conv.weight, None, conv.stride, conv.padding)
                         for t in range(z.shape[0])])
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return (y - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]

    with torch.no_grad():
        a = _if_neuron(per_step(conv2, bn2, _if_neuron(per_step(conv1, bn1, x))))
        s = _if_neuron(per_step(dconv, dbn, x))
        want = {"ADD": a + s, "AND": a * s, "IAND": (1 - a) * s}[connect]
        got = block(x)
    assert got.shape == (3, 2, 6, 4, 4)
    assert torch.allclose(got, want, atol=1e-6)
    assert 0 < float(a.mean()) < 1 and 0 < float(s.mean()) < 1   # both paths spike


def test_shapes_gradients_and_errors() -> None:
    T, B = 3, 2
    net = SEWResNet(blocks=(1, 1, 1), widths=(8, 8, 16), num_classes=7, stem="small", neuron="plif", T=T)
    x = torch.rand(T, B, 2, 12, 12, requires_grad=True)
    y = net(x)
    assert y.shape == (T, B, 7)
    y.mean(0).square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="attention_stages"):
        SEWResNet(attention="asa", attention_stages=(5,))
    with pytest.raises(ValueError, match="connect"):
        SEWResNet(connect="XOR")
    with pytest.raises(ValueError, match="neuron"):
        SEWResNet(neuron="izhikevich")
    asa = SEWResNet(blocks=(1,), widths=(4,), stem="small", attention="asa", T=4)
    with pytest.raises(ValueError, match="exactly 4 steps"):
        asa(torch.rand(3, 1, 2, 8, 8))


def test_asa_insertion_changes_firing() -> None:
    """Same weights; ASA only in layer 2: the stem and layer 1 spike identically, layer 2 does not."""
    T = 4
    kw = dict(blocks=(1, 1), widths=(8, 16), num_classes=5, stem="small", T=T)
    torch.manual_seed(0)
    plain = SEWResNet(**kw).eval()
    asa = SEWResNet(**kw, attention="asa", attention_stages=(2,), faithful=True).eval()
    missing, unexpected = asa.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all("attn" in k for k in missing)
    x = (torch.rand(T, 3, 2, 10, 10) > 0.5).float() * 2.0

    def spikes(net: SEWResNet) -> dict:
        rec: dict = {}
        for name, m in net.named_modules():
            if name.endswith(("sn1", "sn2", "stem_sn")):
                m.register_forward_hook(lambda mod, i, o, n=name: rec.__setitem__(n, o.detach()))
        with torch.no_grad():
            net(x)
        return rec

    p, a = spikes(plain), spikes(asa)
    for name in ("stem_sn", "layers.0.sn1", "layers.0.sn2"):
        assert torch.equal(p[name], a[name])
    rate_p, rate_a = float(p["layers.1.sn1"].mean()), float(a["layers.1.sn1"].mean())
    assert rate_p > 0 and rate_a != rate_p


def test_asa_variant_original_is_the_faithful_rule() -> None:
    net = SEWResNet(blocks=(1,), widths=(4,), stem="small", attention="asa", T=4, asa_variant="original")
    assert all(m.faithful for m in net.modules() if isinstance(m, ASA))
    assert not any(m.faithful for m in SEWResNet(blocks=(1,), widths=(4,), stem="small", attention="asa",
                                                  T=4).modules() if isinstance(m, ASA))
    with pytest.raises(ValueError, match="asa_variant"):
        SEWResNet(asa_variant="union")

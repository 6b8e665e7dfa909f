"""docs/coming_from_peers.md: its Python blocks run as printed (identical spikes to SpikingJelly,
snnTorch and Norse with their weights), its surrogate table holds, and load_peer_weights."""
from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import spikeflow as sf
from spikeflow.models import load_peer_weights
from spikeflow.models.peer_weights import weight_groups

DOC = Path(__file__).resolve().parents[1] / "docs" / "coming_from_peers.md"
PEERS = ("spikingjelly", "snntorch", "norse", "tonic")


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_doc_python_blocks_run_in_order():
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    scope: dict = {"__name__": "coming_from_peers"}
    ran = []
    for i, block in enumerate(blocks):
        needs = [p for p in PEERS if re.search(rf"^\s*(import|from) {p}\b", block, re.M)]
        if not all(_installed(p) for p in needs):
            continue
        torch.manual_seed(0)
        exec(compile(block, f"{DOC}:block{i}", "exec"), scope)  # noqa: S102 - our own docs
        ran.append(needs)
    assert scope["out"].shape == (8, 4, 10)
    assert sum(1 for needs in ran if not needs) >= 4            # every spikeflow-only block ran
    if all(_installed(p) for p in PEERS):
        assert len(ran) == len(blocks)


def test_doc_links_exist():
    for target in re.findall(r"docs/(\w+\.md)", DOC.read_text()):
        if target != "nir.md" or (DOC.parent / "nir.md").exists():
            assert (DOC.parent / target).is_file(), target


# -- the surrogate table: equal gradients on a grid (offset so no point sits on a window edge) --
Z = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64) + 0.0013


def _grad(fn) -> torch.Tensor:
    z = Z.clone().requires_grad_(True)
    fn(z).sum().backward()
    return z.grad


def _ours(surrogate) -> torch.Tensor:
    return surrogate.derivative(Z)


def test_surrogate_table_spikingjelly():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import surrogate as sj

    w, s = 0.7, 0.4
    pairs = [
        (sf.surrogate.Sigmoid(alpha=3.0), sj.Sigmoid(alpha=3.0)),
        (sf.surrogate.ATan(alpha=2.5), sj.ATan(alpha=2.5)),
        (sf.surrogate.Rectangle(width=w), sj.Rect(alpha=1 / w)),
        (sf.surrogate.Triangle(width=w), sj.PiecewiseQuadratic(alpha=1 / w)),
        (sf.surrogate.Gaussian(sigma=s), sj.Erf(alpha=1 / (s * math.sqrt(2)))),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(_grad(theirs), _ours(ours), rtol=1e-6, atol=1e-9,
                                   msg=f"{ours} vs {theirs}")


def test_surrogate_table_snntorch_and_norse():
    pytest.importorskip("snntorch")
    pytest.importorskip("norse")
    from norse.torch.functional.threshold import threshold
    from snntorch import surrogate as st

    torch.testing.assert_close(_grad(st.sigmoid(slope=3.0)), _ours(sf.surrogate.Sigmoid(alpha=3.0)))
    torch.testing.assert_close(_grad(st.atan(alpha=2.5)), _ours(sf.surrogate.ATan(alpha=2.5)))
    k = 1.5
    torch.testing.assert_close(_grad(lambda z: threshold(z, "tanh", k)),
                               (2 / k) * _ours(sf.surrogate.Sigmoid(alpha=2 * k)))
    torch.testing.assert_close(_grad(lambda z: threshold(z, "triangle", 0.3)),
                               0.3 * _ours(sf.surrogate.Triangle(width=1.0)))


# -- load_peer_weights --------------------------------------------------------------------------
def test_weight_groups_skip_neuron_constants_and_keep_order():
    state = {"fc1.weight": 1, "fc1.bias": 2, "lif1.beta": 3, "lif1.threshold": 4,
             "bn.running_mean": 5, "plif.w": 6, "fc2.weight": 7}
    assert weight_groups(state) == [("fc1", {"weight": "fc1.weight", "bias": "fc1.bias"}),
                                    ("bn", {"running_mean": "bn.running_mean"}),
                                    ("plif", {"w": "plif.w"}), ("fc2", {"weight": "fc2.weight"})]


def test_load_peer_weights_copies_by_order_and_refuses_mismatches():
    torch.manual_seed(0)
    peer = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(36, 5))
    peer[1].running_mean.uniform_()
    ours = nn.Sequential(sf.layers.SeqToBatch(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)),
                         sf.layers.SeqToBatch(nn.Flatten()), nn.Linear(36, 5))
    state = dict(peer.state_dict())
    del state["1.num_batches_tracked"]                      # optional on either side
    pairs = load_peer_weights(ours, state)
    assert len(pairs) == 8 and pairs[2] == ("1.weight", "0.module.1.weight")
    assert torch.equal(ours[0].module[1].running_mean, peer[1].running_mean)
    assert torch.equal(ours[2].weight, peer[3].weight)

    before = [p.clone() for p in ours.parameters()]
    wrong = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Linear(36, 6))
    with pytest.raises(ValueError, match=r"weight layer 2 does not match: model 2 \[weight \(5, 36\)"):
        load_peer_weights(ours, wrong.state_dict())
    with pytest.raises(ValueError, match="3 weight layers but the checkpoint has 2"):
        load_peer_weights(ours, nn.Sequential(nn.Conv2d(2, 4, 3), nn.Linear(36, 5)).state_dict())
    bad = {**peer.state_dict(), "3.bias": [0.0] * 5}
    with pytest.raises(ValueError, match="'3.bias' is a list"):
        load_peer_weights(ours, bad)
    assert all(torch.equal(a, b) for a, b in zip(before, ours.parameters()))   # nothing copied


def test_spikingjelly_plif_conv_checkpoint_gives_identical_spikes():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(0)
    sj = nn.Sequential(layer.Conv2d(2, 6, 3, padding=1), layer.BatchNorm2d(6),
                       neuron.ParametricLIFNode(init_tau=3.0, v_threshold=0.25, detach_reset=True),
                       layer.MaxPool2d(2), layer.Flatten(), layer.Linear(6 * 4 * 4, 5),
                       neuron.ParametricLIFNode(init_tau=3.0, v_threshold=0.25, detach_reset=True))
    functional.set_step_mode(sj, "m")
    with torch.no_grad():
        sj[2].w.fill_(0.3)
        sj[1].running_var.uniform_(0.5, 1.5)
    sj.eval()
    ours = nn.Sequential(sf.layers.SeqToBatch(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6)),
                         sf.neurons.PLIF(init_tau=3.0, v_threshold=0.25, detach_reset=True),
                         sf.layers.SeqToBatch(nn.MaxPool2d(2), nn.Flatten()), nn.Linear(96, 5),
                         sf.neurons.PLIF(init_tau=3.0, v_threshold=0.25, detach_reset=True)).eval()
    load_peer_weights(ours, sj.state_dict())
    assert ours[1].tau == pytest.approx(1 / torch.sigmoid(torch.tensor(0.3)).item())
    x = 3.0 * (torch.rand(6, 3, 2, 8, 8) < 0.3)
    with torch.no_grad():
        want = sj(x)
        functional.reset_net(sj)
        got = ours(x)
    assert want.sum() > 0 and torch.equal(got, want)


def test_neuron_table_rows():
    pytest.importorskip("snntorch")
    pytest.importorskip("spikingjelly")
    import snntorch as snn
    from spikingjelly.activation_based import functional, neuron

    drive = 1.5 * torch.rand(12, 3, 7, generator=torch.Generator().manual_seed(2))

    def snntorch_run(cell) -> torch.Tensor:
        mem, out = cell.init_leaky(), []
        for d in drive:
            s, mem = cell(d, mem)
            out.append(s)
        return torch.stack(out)

    def sj_run(node) -> torch.Tensor:
        out = node(drive)
        functional.reset_net(node)
        return out

    cases = [
        (snntorch_run(snn.Leaky(beta=1.0, reset_mechanism="zero", reset_delay=False)),
         sf.neurons.IF(compare=">")),
        (snntorch_run(snn.Leaky(beta=0.75, threshold=0.5, reset_mechanism="zero", reset_delay=False)),
         sf.neurons.LIF(tau=4.0, v_threshold=0.5, decay_input=False, v_reset=0.0, compare=">")),
        (sj_run(neuron.LIFNode(tau=4.0, decay_input=False, step_mode="m")),
         sf.neurons.LIF(tau=4.0, decay_input=False)),
        (sj_run(neuron.LIFNode(tau=2.0, v_reset=None, step_mode="m")), sf.neurons.LIF(tau=2.0, v_reset=None)),
        (sj_run(neuron.IFNode(step_mode="m")), sf.neurons.IF()),
    ]
    for want, ours in cases:
        assert want.sum() > 0 and torch.equal(ours(drive), want), ours

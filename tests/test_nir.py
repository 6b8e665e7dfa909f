"""NIR export/import (spikeflow.nir): round trips of every registered model through nir.write/read,
the exact inverse of each neuron/filter mapping (parameters bit for bit), documented errors, and
interop with snnTorch / Norse / SpikingJelly (skipped when a peer is absent).

Models are the small variants of tests/models/test_zoo.py with weights and BatchNorm statistics
drawn so that every spiking layer fires (rates checked), so "identical spikes" compares activity.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
from torch import nn

import spikeflow as sf
from spikeflow.models import create_model, list_models
from spikeflow.neurons import BaseNeuron

nir = pytest.importorskip("nir")
from spikeflow.nir import NIRExportError, NIRImportError, export, load  # noqa: E402

T, B = 4, 2


def _zoo_small() -> dict:
    path = Path(__file__).parent / "models" / "test_zoo.py"
    spec = importlib.util.spec_from_file_location("_spikeflow_zoo_small_nir", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SMALL


SMALL = _zoo_small()

#: registered model -> None (exports, round trip exact) or the reason NIR cannot express it
NOT_EXPRESSIBLE = {
    "asa_arch_a": "ASA mixes time steps",
    "asa_arch_b": "ASA mixes time steps",
    "he2020_convgru_cnn": "ConvGRU mixes time steps",
    "he2020_convlstm_cnn": "ConvLSTM mixes time steps",
    "he2020_convrnn_cnn": "ConvRNN mixes time steps",
    "he2020_gru_mlp": "GRU mixes time steps",
    "he2020_lstm_mlp": "LSTM mixes time steps",
    "he2020_rnn_mlp": "RNN mixes time steps",
    "iir_cnn_mnist": "(MaxPool2d): its input is not the spikes of a neuron",
    "iir_cnn_nmnist": "(MaxPool2d): its input is not the spikes of a neuron",
    "sew_resnet18": "layer 'layers.1.attn1': ASA mixes time steps",          # small variant: ASA at stage 2
    "sew_resnet34": "layer 'layers.0' (SEWBasicBlock, connect='IAND')",    # small variant: IAND
}


def _move_poles(syn: nn.Module, gen: torch.Generator) -> None:
    """Per-element dual-exp coefficients as training leaves them: each real pole moved by up to 10%."""
    disc = (syn.a1 * syn.a1 + 4 * syn.a2).clamp_min(0).sqrt()
    p = (syn.a1 + disc) / 2 * (1.0 - 0.1 * torch.rand(syn.a1.shape, generator=gen))
    q = (syn.a1 - disc) / 2 * (1.0 - 0.1 * torch.rand(syn.a1.shape, generator=gen))
    syn.a1.copy_(p + q)
    syn.a2.copy_(-p * q)
    syn.b1.mul_(1.0 + 0.2 * torch.rand(syn.b1.shape, generator=gen))


def _excite(model: nn.Module, gen: torch.Generator) -> None:
    """Weights with a positive mean and BatchNorm statistics that make every layer fire."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan = m.weight[0].numel()
                m.weight.normal_(0.3 / math.sqrt(fan), 2.0 / math.sqrt(fan), generator=gen)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(0.0, 0.6, generator=gen)
            if isinstance(m, sf.neurons.PLIF):
                m.w.uniform_(-1.5, 1.0, generator=gen)         # tau in (1.4, 5.5), not the init value
            if isinstance(m, sf.layers.DualExpSynapse):          # per-element "trained" coefficients
                _move_poles(m, gen)
            if isinstance(m, sf.layers.LowPassSynapse):
                m.a.mul_(1.0 - 0.2 * torch.rand(m.a.shape, generator=gen))


def _spikes(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output and every spiking layer's spikes, in execution order."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o.detach().clone()))
             for m in model.modules() if isinstance(m, BaseNeuron)]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def _round_trip(graph, tmp_path: Path, **kw) -> nn.Module:
    path = tmp_path / "graph.nir"
    nir.write(path, graph)
    return load(nir.read(path), **kw)


def _model(name: str, **extra) -> tuple[nn.Module, torch.Tensor]:
    kwargs, step_shape, _ = SMALL[name]
    model = create_model(name, **{**kwargs, **extra}).eval()
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    _excite(model, gen)
    x = torch.rand(T, B, *step_shape, generator=gen) * 2.0
    return model, x


def test_table_covers_the_registry() -> None:
    assert set(NOT_EXPRESSIBLE) <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_registered_model_round_trip(name: str, tmp_path: Path) -> None:
    """export -> nir.write -> nir.read -> load gives identical spikes in every layer."""
    if name not in SMALL:
        pytest.skip(f"{name} is a plugin model without a small variant")
    model, x = _model(name)
    if name in NOT_EXPRESSIBLE:
        with pytest.raises(NIRExportError, match=NOT_EXPRESSIBLE[name].replace("(", r"\(").replace(")", r"\)")):
            export(model, x)
        return
    loaded = _round_trip(export(model, x), tmp_path)
    out, spikes = _spikes(model, x)
    out2, spikes2 = _spikes(loaded, x)
    assert torch.equal(out, out2)
    assert len(spikes) == len(spikes2) >= 2
    for s, s2 in zip(spikes, spikes2):
        assert torch.equal(s, s2)
    rates = [float(s.mean()) for s in spikes]
    assert sum(r > 0 for r in rates) >= max(2, len(rates) // 2), rates   # the comparison sees activity


@pytest.mark.parametrize("name,extra", [("asa_arch_a", {"attention": "none"}), ("asa_arch_b", {"attention": "none"}),
                                        ("sew_resnet18", {"attention": "none"}), ("sew_resnet34", {"connect": "ADD"})])
def test_asa_without_attention_round_trip(name: str, extra: dict, tmp_path: Path) -> None:
    """The small variants without what NIR cannot express (ASA, SEW's IAND) export exactly."""
    model, x = _model(name, **extra)
    loaded = _round_trip(export(model, x), tmp_path)
    (out, spikes), (out2, spikes2) = _spikes(model, x), _spikes(loaded, x)
    assert torch.equal(out, out2) and all(torch.equal(a, b) for a, b in zip(spikes, spikes2))
    assert float(spikes[0].mean()) > 0


def _single(neuron: nn.Module, dt: float, tmp_path: Path, n: int = 6) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    net = nn.Sequential(nn.Linear(3, n), neuron)
    with torch.no_grad():
        net[0].weight.uniform_(0.0, 1.0)
    x = torch.rand(12, 5, 3)
    loaded = _round_trip(export(net, x, dt=dt), tmp_path)
    return net, loaded, x


@pytest.mark.parametrize("dt", [1.0, 1e-3, 1e-4, 0.37])
@pytest.mark.parametrize("tau,decay_input,v_reset", [(2.0, True, 0.0), (3.7, False, -0.2), (1.0, True, 0.1),
                                                     (1.0, False, 0.0), (55.5, True, 0.0)])
def test_lif_parameters_exact(tau: float, decay_input: bool, v_reset: float, dt: float, tmp_path: Path) -> None:
    lif = sf.neurons.LIF(tau=tau, v_threshold=0.5, v_reset=v_reset, decay_input=decay_input)
    net, loaded, x = _single(lif, dt, tmp_path)
    got = loaded[-1]
    assert isinstance(got, sf.neurons.LIF)
    assert (got.tau, got.decay_input, got.v_reset, got.v_threshold, got.compare) == (
        tau, decay_input, v_reset, 0.5, ">=")
    assert torch.equal(net(x), loaded(x))


@pytest.mark.parametrize("dt", [1.0, 0.37])
def test_plif_k_exact(dt: float, tmp_path: Path) -> None:
    """PLIF exports tau = 1/sigmoid(w); the loaded PLIF multiplies by the same float32 k."""
    gen = torch.Generator().manual_seed(3)
    for w in torch.empty(12).uniform_(-6.0, 4.0, generator=gen).tolist() + [0.0]:
        plif = sf.neurons.PLIF(v_threshold=0.3)
        with torch.no_grad():
            plif.w.fill_(w)
        net, loaded, x = _single(plif, dt, tmp_path)
        got = loaded[-1]
        assert isinstance(got, sf.neurons.PLIF)
        assert torch.equal(torch.sigmoid(got.w), torch.sigmoid(plif.w)), w
        assert torch.equal(net(x), loaded(x))


@pytest.mark.parametrize("dt", [1.0, 1e-3, 1e-4])
def test_decay_lif_if_iir_exact(dt: float, tmp_path: Path) -> None:
    for decay in (0.3, 0.0, 0.999, 0.123456789):
        n = sf.neurons.DecayLIF(decay=decay, v_threshold=0.3, compare=">=")
        net, loaded, x = _single(n, dt, tmp_path)
        assert isinstance(loaded[-1], sf.neurons.DecayLIF)
        assert (loaded[-1].decay, loaded[-1].compare) == (decay, ">=")
        assert torch.equal(net(x), loaded(x))
    n = sf.neurons.IF(v_threshold=0.7, v_reset=-0.1)
    net, loaded, x = _single(n, dt, tmp_path)
    assert isinstance(loaded[-1], sf.neurons.IF) and loaded[-1].v_reset == -0.1
    assert torch.equal(net(x), loaded(x))
    for tau_m, reset_v in ((4.0, 1.0), (1.7, 0.35), (30.0, 2.5)):
        n = sf.neurons.IIRNeuron(tau_m=tau_m, reset_v=reset_v)
        net, loaded, x = _single(n, dt, tmp_path)
        got = loaded[-1]
        assert isinstance(got, sf.neurons.IIRNeuron)
        assert math.exp(-1.0 / got.tau_m) == math.exp(-1.0 / tau_m) and got.reset_v == reset_v
        assert torch.equal(net(x), loaded(x)) and float(net(x).mean()) > 0


@pytest.mark.parametrize("dt", [1.0, 1e-3])
def test_synapse_coefficients_exact(dt: float, tmp_path: Path) -> None:
    """Per-element filter coefficients come back bit for bit (float64 inverse + snapping)."""
    gen = torch.Generator().manual_seed(5)
    low = sf.layers.LowPassSynapse((4, 3, 3), tau=4.0)
    dual = sf.layers.DualExpSynapse((4, 3, 3), tau_m=4.0, tau_s=1.0)
    with torch.no_grad():
        low.a.copy_(torch.rand(low.a.shape, generator=gen) * 0.98)
        _move_poles(dual, gen)
        dual.b1.copy_(torch.randn(dual.b1.shape, generator=gen))
    net = nn.Sequential(low, dual, sf.layers.SeqToBatch(nn.Conv2d(4, 2, 3, padding=1)), sf.neurons.IF(0.2))
    x = torch.rand(6, 2, 4, 3, 3, generator=gen)
    graph = export(net, x, dt=dt)
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "LI", "CubaLI", "Conv2d", "IF", "Output"]
    loaded = _round_trip(graph, tmp_path)
    low2, dual2 = loaded[0], loaded[1]
    assert torch.equal(low2.a, low.a)
    for p in ("a1", "a2", "b1"):
        assert torch.equal(getattr(dual2, p), getattr(dual, p)), p
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x)) and float(net(x).mean()) > 0


def test_compare_metadata_kept(tmp_path: Path) -> None:
    """spikeflow's ">=" travels in metadata; a graph without it fires on v > v_threshold (NIR)."""
    net = nn.Sequential(nn.Linear(1, 1, bias=False), sf.neurons.IF(v_threshold=1.0))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    x = torch.full((4, 1, 1), 0.5)                        # v = 0.5, 1.0 == threshold -> spike under >=
    graph = export(net, x)
    assert net(x).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert torch.equal(_round_trip(graph, tmp_path)(x), net(x))
    for node in graph.nodes.values():
        node.metadata = {}
    assert load(graph)(x).flatten().tolist() == [0.0, 0.0, 1.0, 0.0]   # strict: fires at 1.5
    assert torch.equal(load(graph, compare=">=")(x), net(x))


def test_layers_named_input_output(tmp_path: Path) -> None:
    """Module paths equal to the graph's Input/Output names are renamed, not overwritten."""
    from collections import OrderedDict

    net = nn.Sequential(OrderedDict([("input", _drive(3, 4, 1)), ("output", sf.neurons.IF(v_threshold=0.5))]))
    graph = export(net, torch.rand(3, 2, 3))
    assert list(graph.nodes) == ["input", "input_", "output_", "output"]
    assert graph.edges == [("input", "input_"), ("input_", "output_"), ("output_", "output")]
    x = torch.rand(5, 2, 3)
    assert torch.equal(_round_trip(graph, tmp_path)(x), net(x)) and float(net(x).mean()) > 0


def test_graph_layout() -> None:
    """Node kinds and the folded BatchNorm of a PLIF net; dt in the graph's metadata."""
    model, x = _model("plif_nmnist")
    graph = export(model, x, dt=1e-3)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds == ["Input", "Conv2d", "LIF", "SumPool2d", "Threshold", "Conv2d", "LIF", "SumPool2d",
                     "Threshold", "Flatten", "Linear", "LIF", "Linear", "LIF", "Linear", "Output"]
    assert float(graph.metadata["dt"]) == 1e-3
    lif = graph.nodes["features.1"]
    assert lif.metadata["spikeflow_type"] == "PLIF"
    assert np.allclose(lif.tau, 1e-3 / torch.sigmoid(model.features[1].w).item(), rtol=1e-15)
    assert graph.nodes["features.0.module.0"].metadata["folded_batchnorm"] == "features.0.module.1"
    assert isinstance(load(graph)[-1], sf.layers.VotingLayer)
    assert model.training is False and export(model.train(), x) is not None and model.training


def test_persistent_model_exports_from_rest(tmp_path: Path) -> None:
    """snn-iir's persistent states: the graph starts from rest; the model keeps its stored state."""
    model, x = _model("iir_mlp", persistent=True)
    with torch.no_grad():
        model(x)                                           # stores a state
    stored = [m._stored_state for m in model.modules() if getattr(m, "_stored_state", None) is not None]
    assert stored
    loaded = _round_trip(export(model, x), tmp_path)
    after = [m._stored_state for m in model.modules() if getattr(m, "_stored_state", None) is not None]
    assert len(after) == len(stored) and all(a is b for a, b in zip(after, stored))
    model.reset_state()
    assert torch.equal(_spikes(loaded, x)[0], _spikes(model, x)[0])


def test_training_options_travel_in_metadata(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Linear(3, 4), sf.neurons.PLIF(surrogate=sf.surrogate.ATan(alpha=3.0), detach_reset=True),
                        nn.Linear(4, 2), sf.neurons.DecayLIF(surrogate=sf.surrogate.Sigmoid(alpha=5.0)))
    loaded = _round_trip(export(net, torch.rand(2, 1, 3)), tmp_path)
    assert loaded[1].surrogate.config() == net[1].surrogate.config() and loaded[1].detach_reset
    assert loaded[3].surrogate.config() == net[3].surrogate.config() and not loaded[3].detach_reset


def test_he2020_original_dropout_is_random_in_eval() -> None:
    model, x = _model("he2020_snn_cnn", dropout_mode="original")
    with pytest.raises(NIRExportError, match="deterministic"):
        export(model, x)


@pytest.mark.parametrize("layer,match", [
    (sf.neurons.LIF(v_reset=None), "soft reset"),
    (sf.neurons.IIRNeuron(membrane_filter=True), "membrane_filter=True"),
    (sf.layers.DualExpReadout(), "DualExpReadout"),
    (nn.GRU(3, 3), "GRU mixes time steps"),
])
def test_export_errors_name_the_layer(layer: nn.Module, match: str) -> None:
    net = nn.Sequential(nn.Linear(3, 3), layer)
    with pytest.raises(NIRExportError, match=match) as err:
        export(net, torch.rand(2, 1, 3))
    assert "layer '1'" in str(err.value)


def test_export_errors_dual_exp_poles_and_input() -> None:
    syn = sf.layers.DualExpSynapse((3,))
    with torch.no_grad():
        syn.a2.fill_(-0.9)                                 # a1^2 + 4 a2 < 0: complex poles
    with pytest.raises(NIRExportError, match="complex"):
        export(nn.Sequential(syn), torch.rand(2, 1, 3))
    with pytest.raises(ValueError, match=r"sample_input must be a tensor \[T, B, ...\]"):
        export(nn.Sequential(nn.Linear(3, 3)), torch.rand(4, 3))


def test_load_errors_name_the_node() -> None:
    shape = (3,)
    lif = nir.LIF(tau=np.array([2.0, 3.0, 2.0]), r=np.ones(shape), v_leak=np.zeros(shape),
                  v_threshold=np.ones(shape))
    graph = nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3)), lif)
    with pytest.raises(NIRImportError, match="tau has 2 distinct values"):
        load(graph)
    graph = nir.NIRGraph.from_list(nir.Delay(np.ones(shape)))
    with pytest.raises(NIRImportError, match="Delay is not supported"):
        load(graph)
    io = {"input": nir.Input(np.array(shape)), "a": nir.Scale(np.ones(shape)), "b": nir.Scale(np.ones(shape)),
          "output": nir.Output(np.array(shape))}
    cycle = nir.NIRGraph(nodes=io, edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], type_check=False)
    with pytest.raises(NIRImportError, match=r"cycle through nodes \['a', 'b'\]; spikeflow loads DAGs"):
        load(cycle)
    dead = nir.NIRGraph(nodes=io, edges=[("input", "a"), ("input", "b"), ("a", "output")], type_check=False)
    with pytest.raises(NIRImportError, match=r"nodes \['b'\] do not lead to the Output"):
        load(dead)
    leak = nir.LIF(tau=np.full(shape, 2.0), r=np.ones(shape), v_leak=np.full(shape, 0.5),
                   v_threshold=np.ones(shape), v_reset=np.zeros(shape))
    with pytest.raises(NIRImportError, match="v_leak = 0.5 differs from v_reset"):
        load(nir.NIRGraph.from_list(leak))


def test_dag_load_sums_the_edges_into_a_node() -> None:
    """A node with several incoming edges gets their sum (the Output too); nodes run in a
    topological order whatever the order of the graph's node dict."""
    shape = (3,)
    nodes = {"output": nir.Output(np.array(shape)), "b": nir.Scale(np.full(shape, 3.0)),
             "c": nir.Affine(np.eye(3, dtype=np.float32) * 2, np.ones(3, dtype=np.float32)),
             "a": nir.Scale(np.array([1.0, -1.0, 0.5])), "input": nir.Input(np.array(shape))}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "a"), ("input", "b"), ("a", "c"), ("b", "c"),
                                             ("c", "output"), ("a", "output")], type_check=False)
    net = load(graph)
    assert isinstance(net, sf.nir.GraphNet) and list(net.layers) == ["a", "b", "c"]
    x = torch.rand(4, 2, 3)
    a = x * torch.tensor([1.0, -1.0, 0.5])
    assert torch.equal(net(x), ((a + 3 * x) * 2 + 1) + a)
    with pytest.raises(ValueError, match=r"node 'a' reads \['b'\]; sources must be 'input' or earlier"):
        sf.nir.GraphNet({"a": nn.Identity(), "b": nn.Identity()}, {"a": ["b"], "b": ["input"]}, ["a"])


def _sew(name: str = "sew_resnet18", stem: str = "small", neuron: str = "if", seed: int = 0,
         **kw) -> tuple[nn.Module, torch.Tensor]:
    """A SEW-ResNet with its full block layout and tiny widths, active layers, ``[T=2, B=2, 2, H, W]``."""
    size = 16 if stem == "small" else 32
    model = create_model(name, widths=(4, 6, 8, 8), stem=stem, neuron=neuron, num_classes=5, T=2, **kw).eval()
    gen = torch.Generator().manual_seed(seed)
    _excite(model, gen)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, sf.neurons.PLIF):
                m.w.uniform_(0.5, 2.5, generator=gen)    # k in (0.62, 0.92): deep layers fire within T = 2
    return model, torch.rand(2, 2, 2, size, size, generator=gen) * 2.0


def _named_spikes(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Output and each spiking layer's spikes by module path (``.`` as ``_``; a GraphNet's own
    ``layers.`` prefix dropped), so the model and the loaded graph compare layer by layer."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, BaseNeuron):
            key = (name[len("layers."):] if isinstance(model, sf.nir.GraphNet) else name).replace(".", "_")
            hooks.append(m.register_forward_hook(lambda _m, _i, o, key=key: seen.__setitem__(key, o.detach())))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


@pytest.mark.parametrize("name,stem,neuron", [("sew_resnet18", "small", "if"), ("sew_resnet18", "imagenet", "if"),
                                              ("sew_resnet18", "small", "plif"), ("sew_resnet34", "small", "lif")])
def test_sew_resnet_add_round_trip(name: str, stem: str, neuron: str, tmp_path: Path) -> None:
    """SEW-ResNet-18/34 (connect ADD, every block; down-sample shortcuts; the imagenet stem's max
    pooling of spikes) -> nir.write -> nir.read -> load: identical spikes in every spiking layer."""
    model, x = _sew(name, stem, neuron)
    graph = export(model, x)
    into: dict[str, int] = {}
    for _, b in graph.edges:
        into[b] = into.get(b, 0) + 1
    terms, most = 1, 1      # spike tensors summed in a block's input: ADD appends one per block
    for i, block in enumerate(model.layers):
        assert into[f"layers.{i}.conv1.module.0"] == terms
        if block.downsample is not None:
            assert into[f"layers.{i}.downsample.0.module.0"] == terms
        terms = 2 if block.downsample is not None else terms + 1
        most = max(most, terms)
    assert into["head.module.0"] == terms and max(into.values()) == most
    n_down = sum(b.downsample is not None for b in model.layers)
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert kinds >= {"Conv2d", "AvgPool2d", "Flatten", "Affine"} and ("SumPool2d" in kinds) == (stem == "imagenet")
    loaded = _round_trip(graph, tmp_path)
    assert isinstance(loaded, sf.nir.GraphNet)
    (out, spikes), (out2, spikes2) = _named_spikes(model, x), _named_spikes(loaded, x)
    assert torch.equal(out, out2)
    assert sorted(spikes) == sorted(spikes2) and len(spikes) == 1 + 2 * len(model.layers) + n_down
    for k in spikes:
        assert torch.equal(spikes[k], spikes2[k]), k
    rates = [float(s.mean()) for s in spikes.values()]
    assert sum(0 < r < 1 for r in rates) >= 0.9 * len(rates), rates   # the comparison sees activity
    loaded.train()
    loaded(x).square().sum().backward()                  # the loaded DAG trains (surrogate gradients)
    zero = [k for k, p in loaded.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    # spikeflow's max pool (SumPool2d + Threshold(0) tagged MaxPool2d) loads as a max pool: the stem trains too
    assert zero == []


@pytest.mark.parametrize("connect,rule", [("AND", r"A AND S = A \* S"), ("IAND", r"\(NOT A\) AND S")])
def test_sew_and_iand_are_not_expressible(connect: str, rule: str) -> None:
    model, x = _sew(connect=connect)
    with pytest.raises(NIRExportError, match=rf"layer 'layers.0' \(SEWBasicBlock, connect='{connect}'\): O = {rule}"):
        export(model, x)
    model, x = _sew(attention="asa", attention_stages=(3,))
    with pytest.raises(NIRExportError, match="layer 'layers.4.attn1': ASA mixes time steps"):
        export(model, x)


# ------------------------------------------------------------------------------------------ peers
def _drive(n_in: int, n_out: int, seed: int) -> nn.Linear:
    lin = nn.Linear(n_in, n_out)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lin.weight.uniform_(-0.2, 0.8, generator=gen)
        lin.bias.uniform_(-0.1, 0.2, generator=gen)
    return lin


def test_snntorch_both_ways() -> None:
    """snnTorch Leaky(reset_mechanism="zero", reset_delay=False) = DecayLIF(decay=beta, compare=">"):
    u = beta u + I, spike on u > thr, reset to 0. snnTorch writes and reads NIR with dt = 1e-4."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    x = torch.rand(16, 3, 5, generator=torch.Generator().manual_seed(0)) * 1.5
    leaky = snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.full((4,), 0.5), reset_mechanism="zero",
                      reset_delay=False, init_hidden=True)
    net = nn.Sequential(_drive(5, 4, 1), leaky)
    graph = export_to_nir(net, torch.rand(5))
    with torch.no_grad():
        leaky.reset_mem()
        ref = torch.stack([net(xt) for xt in x])
    mine = load(graph, dt=1e-4)
    assert isinstance(mine[-1], sf.neurons.DecayLIF) and mine[-1].compare == ">"
    assert torch.equal(mine(x), ref) and 0 < float(ref.mean()) < 1

    sfnet = nn.Sequential(_drive(5, 4, 2), sf.neurons.DecayLIF(decay=0.75, v_threshold=0.5))
    theirs = import_from_nir(export(sfnet, x, dt=1e-4))
    theirs._modules["1"].reset_mem()
    with torch.no_grad():
        out = torch.stack([theirs(xt)[0] for xt in x])
        assert torch.equal(out, sfnet(x)) and 0 < float(out.mean()) < 1


def test_snntorch_synaptic_loads() -> None:
    """snnTorch Synaptic (syn = alpha syn + x; mem = beta mem + syn) is written as CubaLIF and loads as
    LowPassSynapse(a=alpha) (a Scale in front where w_in dt/tau_syn != 1), then DecayLIF(decay=beta)."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    x = torch.rand(16, 3, 5, generator=torch.Generator().manual_seed(1)) * 0.4
    syn = snn.Synaptic(alpha=torch.full((4,), 0.6), beta=torch.full((4,), 0.8),
                       threshold=torch.full((4,), 0.7), reset_mechanism="zero", reset_delay=False,
                       init_hidden=True)
    net = nn.Sequential(_drive(5, 4, 9), syn)
    graph = export_to_nir(net, torch.rand(5))
    syn.reset_mem()
    with torch.no_grad():
        ref = torch.stack([net(xt) for xt in x])
    mine = load(graph, dt=1e-4)
    assert [type(m).__name__ for m in mine] == ["SeqToBatch", "LowPassSynapse", "DecayLIF"]
    assert torch.equal(mine(x), ref) and 0 < float(ref.mean()) < 1


def test_norse_both_ways() -> None:
    """Norse LIFBoxCell: v += dt tau_mem_inv (v_leak - v + i), spike on v > v_th, reset to v_reset:
    spikeflow's LIF(decay_input=True, compare=">") with tau = 1/(dt tau_mem_inv) steps. Norse 1.1.0
    writes tau = dt / tau_mem_inv (not 1 / tau_mem_inv), so its graphs load with dt = dt_norse**2.
    The two compute (x - v)/tau and dt*tau_inv*(x - v) in float32: compared on inputs where no
    membrane lies within rounding of the threshold (spikes equal)."""
    norse = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir
    from norse.torch.utils.import_nir import from_nir

    dt = 1e-3
    x = torch.rand(16, 3, 5, generator=torch.Generator().manual_seed(0)) * 2.0
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(1 / (4 * dt)),
                                                   v_th=torch.tensor(0.5)), dt=dt)
    net = norse.SequentialState(_drive(5, 4, 3), cell)
    graph = to_nir(net, torch.rand(3, 5), dt=dt)
    state, outs = None, []
    with torch.no_grad():
        for xt in x:
            out, state = net(xt, state)
            outs.append(out)
    ref = torch.stack(outs)
    mine = load(graph, dt=dt * dt)
    assert isinstance(mine[-1], sf.neurons.LIF) and math.isclose(mine[-1].tau, 4.0, rel_tol=1e-6)
    assert torch.equal(mine(x), ref) and 0 < float(ref.mean()) < 1

    sfnet = nn.Sequential(_drive(5, 4, 4), sf.neurons.LIF(tau=4.0, v_threshold=0.5, compare=">"))
    theirs = from_nir(export(sfnet, x, dt=dt), dt=dt)
    state, outs = None, []
    with torch.no_grad():
        for xt in x:
            out, state = theirs(xt, state)
            outs.append(out)
        assert torch.equal(torch.stack(outs), sfnet(x)) and 0 < float(sfnet(x).mean()) < 1


def test_spikingjelly_both_ways() -> None:
    """SpikingJelly's NIR mapping is spikeflow's (tau*dt, r = 1 or tau, v_leak = v_reset); its
    neurons fire on v >= v_threshold, which spikeflow writes in metadata and SpikingJelly's graphs
    need as load(compare=">="). PLIF goes to SpikingJelly as an LIF dividing by tau = 1/k."""
    sj = pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir

    x = torch.rand(16, 3, 5, generator=torch.Generator().manual_seed(0)) * 2.0
    net = nn.Sequential(layer.Linear(5, 4), neuron.LIFNode(tau=3.0, v_threshold=0.5),
                        layer.Linear(4, 3), neuron.IFNode(v_threshold=0.8))
    net[0].load_state_dict(_drive(5, 4, 5).state_dict())
    net[2].load_state_dict(_drive(4, 3, 6).state_dict())
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        ref = net(x)
    functional.reset_net(net)
    mine = load(export_to_nir(net, x, dt=1e-4), dt=1e-4, compare=">=")
    assert [type(m).__name__ for m in mine] == ["SeqToBatch", "LIF", "SeqToBatch", "IF"]
    assert torch.equal(mine(x), ref) and 0 < float(ref.mean()) < 1

    sfnet = nn.Sequential(_drive(5, 4, 7), sf.neurons.LIF(tau=3.0, v_threshold=0.5), _drive(4, 3, 8),
                          sf.neurons.PLIF(init_tau=2.5, v_threshold=0.4))
    theirs = import_from_nir(export(sfnet, x, dt=1e-4), dt=1e-4, step_mode="m")
    with torch.no_grad():
        out = theirs(x)[0]
        assert torch.equal(out, sfnet(x)) and 0 < float(out.mean()) < 1
    del sj


# -------------------------------------------------------------------------------------------- CLI
def _hand_run(tmp_path: Path, name: str, options: dict) -> tuple[Path, nn.Module]:
    """A run folder holding one checkpoint of ``name`` (made directly, without training)."""
    from spikeflow.train import checkpoint as ck
    from spikeflow.train.config import config_from_dict

    cfg = config_from_dict({"model": {"name": name, "options": options},
                            "data": {"name": "n_digits", "T": 3}}).to_dict()
    model = create_model(name, **options)
    _excite(model, torch.Generator().manual_seed(9))
    run = tmp_path / "run"
    run.mkdir()
    ck.atomic_save({"format": ck.FORMAT, "version": ck.VERSION, "config": cfg,
                    "model": model.state_dict(), "model_name": name}, run / "checkpoint_best.pt")
    return run, model.eval()


def test_cli_export_nir_and_torch(tmp_path: Path, capsys) -> None:
    from spikeflow.cli import main

    run, model = _hand_run(tmp_path, "he2020_snn_mlp", {"in_features": 18, "hidden": [8]})
    assert main(["export", str(run), "--format", "nir", "--dt", "1e-3"]) == 0
    assert "model.nir (nir, input [3, 1, 18])" in capsys.readouterr().out
    loaded = load(run / "model.nir")
    x = torch.rand(3, 4, 2, 3, 3) * 2
    with torch.no_grad():
        assert torch.equal(loaded(x.flatten(2)), model(x)) and float(model(x).mean()) > 0
    assert main(["export", str(run), "--format", "torch", "--out", str(tmp_path / "m.pt2")]) == 0
    program = torch.export.load(tmp_path / "m.pt2")
    with torch.no_grad():
        assert torch.equal(program.module()(x[:, :1].flatten(2)), model(x[:, :1]))


def test_cli_export_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from spikeflow.cli import main

    run, _ = _hand_run(tmp_path, "he2020_rnn_mlp", {"in_features": 18, "hidden": [8]})
    assert main(["export", str(run), "--format", "nir"]) == 2
    err = capsys.readouterr().err
    assert "layer 'layers.0': RNN mixes time steps" in err and "Traceback" not in err
    assert main(["export", str(tmp_path / "nothing"), "--format", "nir"]) == 1
    assert "no such run folder or checkpoint" in capsys.readouterr().err


# ----------------------------------------------------- the graph read as NIR's ODEs (independent)
def _euler(graph, x: np.ndarray, dt: float, record: Optional[dict] = None) -> tuple[np.ndarray, float]:
    """Run a graph (a DAG of nodes; IIR subgraphs with their cycle) in float64 as its NIR ODEs with one
    forward-Euler step of ``dt`` per step (feed-forward edges within the step, a node's input the sum
    of its incoming edges, the IIR subgraph's cycle one step late), straight from the NIR
    definitions. Returns the output ``[T, B, ...]`` and the smallest |v - v_threshold| seen;
    ``record`` (if given) gets each neuron node's spikes ``[T, B, ...]`` by node name."""
    import torch.nn.functional as F

    order, preds = _dag_order(graph)
    state: dict = {}
    margin = [math.inf]

    def fire(key, v, node):
        margin[0] = min(margin[0], float(np.min(np.abs(v - node.v_threshold))))
        ge = node.metadata.get("compare") == ">=" if isinstance(node.metadata, dict) else False
        z = (v >= node.v_threshold) if ge else (v > node.v_threshold)
        return z.astype(np.float64), np.where(z, node.v_reset, v)

    def step(key, node, u):
        if isinstance(node, nir.Affine):
            return u @ node.weight.T.astype(np.float64) + node.bias
        if isinstance(node, nir.Linear):
            return u @ node.weight.T.astype(np.float64)
        if isinstance(node, nir.Conv2d):
            return F.conv2d(torch.from_numpy(u), torch.from_numpy(node.weight.astype(np.float64)),
                            torch.from_numpy(node.bias.astype(np.float64)), tuple(node.stride),
                            tuple(node.padding), tuple(node.dilation), int(node.groups)).numpy()
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k = tuple(int(v) for v in node.kernel_size)
            out = F.avg_pool2d(torch.from_numpy(u), k, tuple(int(v) for v in node.stride),
                               tuple(int(v) for v in node.padding)).numpy()
            return out * (k[0] * k[1]) if isinstance(node, nir.SumPool2d) else out
        if isinstance(node, nir.Flatten):
            return u.reshape(u.shape[0], -1)
        if isinstance(node, nir.Threshold):
            return (u > node.threshold).astype(np.float64)
        if isinstance(node, nir.LIF):
            v = state.get(key, np.zeros_like(u))
            v = v + dt / node.tau * (node.v_leak - v + node.r * u)
            z, state[key] = fire(key, v, node)
            return z
        if isinstance(node, nir.IF):
            v = state.get(key, np.zeros_like(u)) + dt * node.r * u
            z, state[key] = fire(key, v, node)
            return z
        if isinstance(node, nir.LI):
            v = state.get(key, np.zeros_like(u))
            state[key] = v + dt / node.tau * (node.v_leak - v + node.r * u)
            return state[key]
        if isinstance(node, nir.CubaLI):
            i, v = state.get(key, (np.zeros_like(u), np.zeros_like(u)))
            i = i + dt / node.tau_syn * (-i + node.w_in * u)
            v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i)
            state[key] = (i, v)
            return v
        if isinstance(node, nir.NIRGraph):                   # LIF <- Scale <- LI <- LIF, cycle delayed
            kinds = {type(n): n for n in node.nodes.values()}
            lif, li, sc = kinds[nir.LIF], kinds[nir.LI], kinds[nir.Scale]
            v, trace, fb = state.get(key, (np.zeros_like(u),) * 3)
            v = v + dt / lif.tau * (lif.v_leak - v + lif.r * (u + fb))
            z, v = fire(key, v, lif)
            trace = trace + dt / li.tau * (li.v_leak - trace + li.r * z)
            state[key] = (v, trace, sc.scale * trace)
            return z
        raise AssertionError(type(node))

    outs = []
    for t in range(x.shape[0]):
        value: dict = {}
        for key in order:
            node = graph.nodes[key]
            if isinstance(node, nir.Input):
                value[key] = x[t]
                continue
            u = sum(value[p] for p in preds[key])              # NIR: the edges into a node are summed
            value[key] = u if isinstance(node, nir.Output) else step(key, node, u)
            if record is not None and isinstance(node, (nir.LIF, nir.IF, nir.NIRGraph)):
                record.setdefault(key, []).append(value[key])
        outs.append(value[order[-1]])
    if record is not None:
        record.update({k: np.stack(v) for k, v in record.items()})
    return np.stack(outs), margin[0]


def _dag_order(graph) -> tuple[list[str], dict]:
    """Kahn's topological order of a DAG (Input first, Output last) and each node's predecessors."""
    preds: dict = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    order: list[str] = []
    while len(order) < len(graph.nodes):
        ready = [k for k in graph.nodes if k not in order and all(p in order for p in preds[k])]
        assert ready, "cycle"
        order += [k for k in ready if not isinstance(graph.nodes[k], nir.Output)] or ready
    assert isinstance(graph.nodes[order[0]], nir.Input) and isinstance(graph.nodes[order[-1]], nir.Output)
    return order, preds


@pytest.mark.parametrize("dt", [1.0, 1e-3])
@pytest.mark.parametrize("name", ["plif_nmnist", "he2020_snn_cnn", "iir_mlp", "iir_mlp_lowpass", "iir_cnn_gesture"])
def test_graph_is_the_nir_ode_euler_step(name: str, dt: float) -> None:
    """The exported graph, simulated in float64 as NIR's ODEs (Euler, step dt) by the transcription
    above, gives the model's spikes: the mapping is the ODEs' semantics, not only self-consistent.
    The float32 model and the float64 reference may differ by rounding, so the smallest distance of a
    membrane from its threshold is checked to exceed that rounding (float32, about 1e-6 here) tenfold."""
    model, x = _model(name)
    graph = export(model, x, dt=dt)
    ref, margin = _euler(graph, x.double().numpy(), dt)
    with torch.no_grad():
        out = model(x)
    assert margin > 1e-5, margin
    assert np.array_equal(out.numpy(), ref.astype(np.float32)) or np.allclose(out.numpy(), ref, atol=1e-6)
    assert float(out.mean()) > 0 or name.startswith("plif")


@pytest.mark.parametrize("dt", [1.0, 1e-3])
@pytest.mark.parametrize("stem,neuron", [("imagenet", "if"), ("small", "plif")])
def test_sew_graph_is_the_nir_ode_euler_step(stem: str, neuron: str, dt: float) -> None:
    """SEW-ResNet-18 (ADD): the float64 Euler reading of its DAG (summed edges into each block's
    successors, SumPool2d + Threshold, AvgPool2d) gives the model's output and spikes."""
    model, x = _sew("sew_resnet18", stem, neuron, seed=1)
    graph = export(model, x, dt=dt)
    record: dict = {}
    ref, margin = _euler(graph, x.double().numpy(), dt, record)
    out, spikes = _named_spikes(model, x)
    assert margin > 1e-5, margin
    assert sorted(k.replace(".", "_") for k in record) == sorted(spikes) and len(spikes) == 20
    for k, z in record.items():
        assert np.array_equal(spikes[k.replace(".", "_")].numpy(), z), k
    assert np.allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5) and float(out.abs().mean()) > 0.1


@pytest.mark.parametrize("dt", [1.0, 1e-4])
def test_neuron_zoo_is_the_nir_ode_euler_step(dt: float) -> None:
    """Every neuron kind (and both LIF charges, a negative reset, >= and >) against the float64
    Euler reading of its NIR node."""
    gen = torch.Generator().manual_seed(11)
    net = nn.Sequential(_drive(6, 8, 1), sf.neurons.LIF(tau=3.0, decay_input=False, v_reset=-0.2),
                        _drive(8, 8, 2), sf.neurons.IF(v_threshold=0.8),
                        _drive(8, 8, 3), sf.neurons.DecayLIF(decay=0.6, v_threshold=0.4, compare=">="),
                        _drive(8, 8, 4), sf.neurons.PLIF(init_tau=3.0),
                        _drive(8, 8, 5), sf.neurons.LIF(tau=2.5, v_threshold=0.6),
                        _drive(8, 6, 6), sf.neurons.IIRNeuron(tau_m=3.0, reset_v=0.7))
    x = torch.rand(12, 3, 6, generator=gen) * 2
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o)) for m in net if isinstance(m, BaseNeuron)]
    with torch.no_grad():
        out = net(x)
    for h in hooks:
        h.remove()
    ref, margin = _euler(export(net, x, dt=dt), x.double().numpy(), dt)
    assert margin > 1e-5, margin
    assert np.array_equal(out.numpy(), ref)
    assert all(0 < float(s.mean()) < 1 for s in seen), [float(s.mean()) for s in seen]


def test_cli_export_help(capsys) -> None:
    from spikeflow.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--format" in out and "docs/nir.md" in out


def test_registered_snn_graph_runs_in_spikingjelly() -> None:
    """he2020_snn_cnn (Conv2d, DecayLIF, AvgPool2d, Flatten, Affine) written by spikeflow runs in
    SpikingJelly (DecayLIF read as LIFNode(decay_input=False, tau=1/(1-decay))) with the same output."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    model, x = _model("he2020_snn_cnn")
    theirs = import_from_nir(export(model, x, dt=1e-4), dt=1e-4, step_mode="m")
    with torch.no_grad():
        out, ref = theirs(x)[0], model(x)
    assert torch.equal(out, ref) and float(ref.mean()) > 0


def test_sew_graph_runs_in_spikingjelly() -> None:
    """SEW-ResNet-18 (ADD, small stem: Conv2d, IF, AvgPool2d, Flatten, Affine and summed edges) written
    by spikeflow runs in SpikingJelly (nirtorch sums the edges into a node) with the same output."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    model, x = _sew("sew_resnet18", "small", "if")
    theirs = import_from_nir(export(model, x, dt=1e-4), dt=1e-4, step_mode="m")
    with torch.no_grad():
        out, ref = theirs(x)[0], model(x)
    assert torch.equal(out, ref) and float(ref.abs().mean()) > 0.1

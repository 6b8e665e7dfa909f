"""Seed fidelity (issue 15, items 2-6): each paper variant of a registered model is pinned to an
independent transcription of the original code's formula (seeds_spec R1-R4) on fixed weights and
inputs, plus the parameter counts of the original scripts. (Item 1, ASA, is in
tests/layers/test_attention.py.) Paper configs must select these variants."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeflow.layers import ASA, DualExpSynapse, SeqToBatch, StepDropout
from spikeflow.models import create_model
from spikeflow.models.he2020 import DropoutResetDecayLIF, FCHead
from spikeflow.neurons import BaseNeuron, IIRNeuron
from spikeflow.report.reproduce import find_experiments, load_experiment

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ item 2: PLIF per-step BatchNorm
def _step_loop(modules: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The original PLIF forward: every stateless layer is called on ``x[t]`` ([B, ...]) once per step
    (so BatchNorm sees the B samples of one step), neurons carry their state from step to step."""
    states: dict[int, object] = {}
    out = []
    for t in range(x.shape[0]):
        h = x[t]
        for i, m in enumerate(modules):
            if isinstance(m, SeqToBatch):
                h = m.module(h)
            elif isinstance(m, BaseNeuron):
                s, states[i] = m.run(h.unsqueeze(0), states.get(i))
                h = s[0]
            else:  # Linear, VotingLayer, p=0 dropout
                h = m(h.unsqueeze(0))[0]
        out.append(h)
    return torch.stack(out)


def _bn_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b for name, b in model.named_buffers() if "running" in name or "num_batches" in name]


def test_plif_net_per_step_bn_equals_the_per_step_loop() -> None:
    torch.manual_seed(0)
    model = create_model("plif_nmnist", input_size=8, channels=4, number_layer=2, dropout=0.0,
                         bn_stats="per_step").train()
    with torch.no_grad():  # a head that fires
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(10.0)
    ref = copy.deepcopy(model)
    x = (torch.rand(5, 3, 2, 8, 8) < 0.4).float() * 2
    for _ in range(2):  # the running statistics of the second batch start from the first's updates
        y = model(x)
        want = _step_loop(list(ref.features) + list(ref.head), x)
        torch.testing.assert_close(y, want, rtol=0, atol=1e-6)
    assert 0 < y.mean() < 1
    for got, exp in zip(_bn_buffers(model), _bn_buffers(ref)):
        torch.testing.assert_close(got, exp, rtol=0, atol=1e-6)
    assert int(model.features[0].module[1].num_batches_tracked) == 2 * 5  # T updates per batch
    pooled = create_model("plif_nmnist", input_size=8, channels=4, number_layer=2, dropout=0.0).train()
    pooled.load_state_dict(ref.state_dict())
    assert not torch.equal(pooled.features(x), model.features(x))  # T*B statistics (spikeflow's default) differ


def test_plif_static_per_step_bn_on_time_varying_input() -> None:
    torch.manual_seed(1)
    model = create_model("plif_mnist", input_size=8, channels=4, hidden=8, head_dropouts=(0.0, 0.0),
                         bn_stats="per_step").train()
    ref = copy.deepcopy(model)
    x = (torch.rand(4, 3, 1, 8, 8) < 0.5).float()  # Poisson-like: the static conv runs per step
    y = model(x)
    want = _step_loop([SeqToBatch(ref.static_conv)] + list(ref.conv) + list(ref.fc), x)
    torch.testing.assert_close(y, want, rtol=0, atol=1e-6)
    for got, exp in zip(_bn_buffers(model), _bn_buffers(ref)):
        torch.testing.assert_close(got, exp, rtol=0, atol=1e-6)


# --------------------------------------------------------- item 3: associative memory time constants
def _snn_iir_forward(model: nn.Module, x: torch.Tensor, tau_m: float, tau_s: float) -> torch.Tensor:
    """snn-iir's associative-memory forward (R1.1/R1.2): per layer a dual-exp IIR synapse with
    a1 = e^-1/tm + e^-1/ts, a2 = -e^-1/tm e^-1/ts, b1 = e^-1/tm - e^-1/ts (trainable, per element),
    then I = W psp + b, v = I - r[t-1] (no membrane filter), s = v > 1, r = e^-1/tm r + s."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    dm, ds = math.exp(-1 / tau_m), math.exp(-1 / tau_s)
    h = x
    for lin in linears:
        a1, a2, b1 = dm + ds, -dm * ds, dm - ds
        p1 = p2 = r = torch.zeros(())
        out = []
        for t in range(h.shape[0]):
            psp = a1 * p1 + a2 * p2 + b1 * h[t]
            p2, p1 = p1, psp
            v = lin(psp) - r
            s = (v > 1.0).float()
            r = dm * r + 1.0 * s
            out.append(s)
        h = torch.stack(out)
    return h


def test_assoc_memory_uses_tau_8_2_in_every_layer() -> None:
    torch.manual_seed(2)
    model = create_model("iir_assoc_memory", input_shape=(12,), num_classes=12).eval()
    synapses = [m for m in model.modules() if isinstance(m, DualExpSynapse)]
    neurons = [m for m in model.modules() if isinstance(m, IIRNeuron)]
    assert len(synapses) == len(neurons) == 4
    assert all((m.tau_m, m.tau_s) == (8.0, 2.0) for m in synapses)
    assert all(m.tau_m == 8.0 and not m.membrane_filter for m in neurons)
    e8, e2 = math.exp(-1 / 8), math.exp(-1 / 2)
    for m in synapses:
        torch.testing.assert_close(m.a1, torch.full_like(m.a1, e8 + e2))
        torch.testing.assert_close(m.a2, torch.full_like(m.a2, -math.exp(-(8 + 2) / (8 * 2))))
        torch.testing.assert_close(m.b1, torch.full_like(m.b1, e8 - e2))
    with torch.no_grad():  # weights that make every layer fire, none saturate
        for lin in [m for m in model.modules() if isinstance(m, nn.Linear)]:
            lin.weight.normal_(0.3 / math.sqrt(lin.in_features), 1.0 / math.sqrt(lin.in_features))
            lin.bias.zero_()
    x = (torch.rand(30, 4, 12) < 0.3).float()
    y = model(x)
    want = _snn_iir_forward(model, x, 8.0, 2.0)
    assert 0 < want.mean() < 1
    assert torch.equal(y, want)
    vision = create_model("iir_assoc_memory", input_shape=(12,), num_classes=12, tau_m=4.0, tau_s=1.0).eval()
    vision.load_state_dict({k: v for k, v in model.state_dict().items() if "weight" in k or "bias" in k},
                           strict=False)
    assert not torch.equal(vision(x), y)  # the former defaults (4, 1) give other spikes


# ------------------------------------------------------------ item 4: He2020 SNN MLP of snn_gesture.py
def test_he2020_snn_mlp_is_2048_512_11() -> None:
    model = create_model("he2020_snn_mlp")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 512), (512, 11)]
    assert n_params(model) == 1_054_731
    assert n_params(create_model("he2020_snn_mlp", hidden=(512, 512))) == 1_317_387


# ------------------------------------------------- item 5: He2020 SNN-CNN dropout (scnn_gesture.py)
class _ActFun(torch.autograd.Function):
    """scnn_gesture.py's spike: forward u > thresh, backward 1/(2 lens) where |u - thresh| < lens."""

    @staticmethod
    def forward(ctx, u, thresh, lens):  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.thresh, ctx.lens = thresh, lens
        return u.gt(thresh).float()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad * ((u - ctx.thresh).abs() < ctx.lens).float() / (2 * ctx.lens), None, None


def _original_scnn(model: nn.Module, x: torch.Tensor, masks: list[torch.Tensor], decay: float, thresh: float,
                   lens: float, coupled: bool = True) -> torch.Tensor:
    """The step loop of scnn_gesture.py (time-first here) on the model's conv/linear weights; ``masks``
    replace its four ``F.dropout`` calls (already scaled by 1/(1-p)), one per call site and step.
    ``coupled=False``: the counterfactual where the reset uses the undropped spike."""
    conv0, conv1, conv2 = [m.module for m in model.layers if isinstance(m, SeqToBatch)
                           and isinstance(m.module, nn.Conv2d)]
    fc1, fc2 = [m for m in model.layers if isinstance(m, nn.Linear)]
    m_c0, m_p1, m_x, m_h1 = masks

    def mem_update(op, inp, mem, spike):
        mem = mem * decay * (1 - spike) + op(inp)
        return mem, _ActFun.apply(mem, thresh, lens)

    def drop(spike, mask):  # (value fed forward, value the reset sees next step)
        return spike * mask, (spike * mask if coupled else spike)

    def pool(inp):
        return F.avg_pool2d(inp, 2)

    T, B = x.shape[:2]
    c0_mem = c0_spike = torch.zeros(B, conv0.out_channels, 8, 8)
    c1_mem = c1_spike = torch.zeros(B, conv1.out_channels, 8, 8)
    p1_mem = p1_spike = torch.zeros(B, conv1.out_channels, 4, 4)
    c2_mem = c2_spike = torch.zeros(B, conv2.out_channels, 4, 4)
    p2_mem = p2_spike = torch.zeros(B, conv2.out_channels, 2, 2)
    h1_mem = h1_spike = torch.zeros(B, fc1.out_features)
    h2_mem = h2_spike = torch.zeros(B, fc2.out_features)
    out = []
    for t in range(T):
        c0_mem, c0_spike = mem_update(conv0, x[t], c0_mem, c0_spike)
        c0_out, c0_spike = drop(c0_spike, m_c0[t])         # c0_spike = F.dropout(c0_spike, p=0.5)
        c1_mem, c1_spike = mem_update(conv1, c0_out, c1_mem, c1_spike)
        p1_mem, p1_spike = mem_update(pool, c1_spike, p1_mem, p1_spike)
        p1_out, p1_spike = drop(p1_spike, m_p1[t])         # p1_spike = F.dropout(p1_spike, p=0.5)
        c2_mem, c2_spike = mem_update(conv2, p1_out, c2_mem, c2_spike)
        p2_mem, p2_spike = mem_update(pool, c2_spike, p2_mem, p2_spike)
        xf = p2_spike.view(B, -1) * m_x[t]                 # x = F.dropout(x, p=0.5)
        h1_mem, h1_spike = mem_update(fc1, xf, h1_mem, h1_spike)
        h1_out, h1_spike = drop(h1_spike, m_h1[t])         # h1_spike = F.dropout(h1_spike, p=0.5)
        h2_mem, h2_spike = mem_update(fc2, h1_out, h2_mem, h2_spike)
        out.append(h2_spike)
    return torch.stack(out)


def _capture_masks(model: nn.Module) -> tuple[list[nn.Module], list[torch.Tensor]]:
    """Seed every dropout of the model and record the masks of the next forward (in call order)."""
    drops = [m for m in model.modules() if isinstance(m, (DropoutResetDecayLIF, StepDropout))]
    masks: list[torch.Tensor] = []
    for i, m in enumerate(drops):
        m.generator = torch.Generator().manual_seed(100 + i)
        if isinstance(m, DropoutResetDecayLIF):
            m.register_forward_hook(lambda mod, inp, out: masks.append(mod.mask))
        else:
            m.register_forward_hook(lambda mod, inp, out: masks.append(mod.last_mask))
            m.record_mask = True
    return drops, masks


@pytest.mark.parametrize("train", [True, False])
def test_he2020_snn_cnn_original_dropout_matches_the_step_loop(train: bool) -> None:
    torch.manual_seed(3)
    width = 1.0  # scnn_gesture.py: lens 0.5
    model = create_model("he2020_snn_cnn", input_size=8, channels=(4, 8, 8), fc=16, dropout_mode="original",
                         surrogate_width=width).train(train)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(3.0)
    drops, masks = _capture_masks(model)
    assert [type(m).__name__ for m in drops] == ["DropoutResetDecayLIF", "DropoutResetDecayLIF", "StepDropout",
                                                 "DropoutResetDecayLIF"]
    x = (torch.rand(8, 3, 2, 8, 8) < 0.5).float()
    y = model(x)
    assert len(masks) == 4 and all(m is not None for m in masks)   # dropout active in eval too
    assert all(set(m.unique().tolist()) == {0.0, 2.0} for m in masks)
    assert all(not torch.equal(m[0], m[1]) for m in masks)          # a new mask every step
    ref_masks = [masks[0], masks[1], masks[2].flatten(2), masks[3]]
    want = _original_scnn(model, x, ref_masks, decay=0.3, thresh=0.3, lens=width / 2)
    assert 0 < want.mean() < 1
    assert torch.equal(y, want)
    # gradients through the dropout-gated reset equal the loop's autograd
    g = torch.randn_like(y)
    (y * g).sum().backward()
    grads = [m.weight.grad.clone() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.zero_grad()
    (_original_scnn(model, x, ref_masks, 0.3, 0.3, width / 2) * g).sum().backward()
    for got, m in zip(grads, [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]):
        torch.testing.assert_close(got, m.weight.grad, rtol=1e-4, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in grads)
    # the dropped spike gates the reset (a dropped spike does not reset, a kept one flips the sign of
    # the decayed membrane): with the reset on the undropped spike the output differs
    with torch.no_grad():
        assert not torch.equal(y, _original_scnn(model, x, ref_masks, 0.3, 0.3, width / 2, coupled=False))


def test_he2020_standard_dropout_is_train_only_and_keeps_state_dict_keys() -> None:
    kw = dict(input_size=8, channels=(4, 8, 8), fc=16)
    standard = create_model("he2020_snn_cnn", **kw).eval()
    original = create_model("he2020_snn_cnn", dropout_mode="original", **kw)
    assert list(standard.state_dict()) == list(original.state_dict())  # one checkpoint loads in both modes
    x = (torch.rand(4, 2, 2, 8, 8) < 0.5).float()
    assert torch.equal(standard(x), standard(x))  # no dropout in evaluation
    assert n_params(create_model("he2020_snn_cnn", dropout_mode="original")) == 2_322_891
    with pytest.raises(ValueError, match="dropout_mode"):
        create_model("he2020_snn_cnn", dropout_mode="always")


# ------------------------------------------------------- item 6: He2020 conv-recurrent heads
def _conv_recurrent_params(cell_gates: int, c_in: int = 2, channels=(64, 128, 128)) -> int:
    """Conv-recurrent layers: one 3x3 conv over [input, hidden] -> gates*hidden, with bias."""
    total, prev = 0, c_in
    for c in channels:
        total += (prev + c) * 9 * cell_gates * c + cell_gates * c
        prev = c
    return total


def test_conv_recurrent_head_parameter_counts() -> None:
    fc_head = (8192 * 256 + 256) + (256 * 11 + 11)  # convLstm_gesture.py: fc1, fc2
    lstm_head = 4 * 256 * (8192 + 256) + 8 * 256 + 4 * 256 * (256 + 256) + 8 * 256 + 256 * 11 + 11
    assert _conv_recurrent_params(4) + fc_head == 4_317_963
    assert n_params(create_model("he2020_convlstm_cnn", head="fc")) == 4_317_963
    assert _conv_recurrent_params(4) + lstm_head == 11_399_691
    assert n_params(create_model("he2020_convlstm_cnn")) == 11_399_691  # spikeflow's recurrent head
    assert n_params(create_model("he2020_convrnn_cnn", head="fc")) == _conv_recurrent_params(1) + fc_head \
        == 2_654_667
    assert n_params(create_model("he2020_convrnn_cnn")) == 2_852_043
    with pytest.raises(ValueError, match="head"):
        create_model("he2020_convlstm_cnn", head="mlp")


@pytest.mark.parametrize("readout", ["last", "rate"])
def test_fc_head_reads_the_last_step_into_plain_fc1_fc2(readout: str) -> None:
    torch.manual_seed(4)
    model = create_model("he2020_convlstm_cnn", input_size=8, channels=(4, 8, 8), fc=16, head="fc",
                         readout=readout, dropout=0.0).eval()
    head = model.layers[-1]
    assert isinstance(head, FCHead)
    seen = []
    head.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = torch.rand(5, 2, 2, 8, 8)
    y = model(x)
    feats = seen[0]  # [T, B, 128*2*2]: pooled, flattened conv-LSTM hidden states
    if readout == "last":  # convLstm_gesture.py: outputs = fc2(fc1(pool2(h)[last].view(B, -1)))
        want = head.fc2(head.fc1(feats[-1]))
        assert torch.equal(y, want.expand_as(y))
    else:
        torch.testing.assert_close(y, head.fc2(head.fc1(feats)), rtol=0, atol=1e-6)


# -------------------------------------------------------------------- the paper configs use them
def _model(path: Path) -> nn.Module:
    cfg = load_experiment(path, "full").config
    with torch.device("meta"):
        return create_model(cfg["model"]["name"], **(cfg["model"].get("options") or {}))


def test_paper_configs_select_the_original_variants() -> None:
    for path in find_experiments("plif", CONFIGS):
        bn = [m for m in _model(path).modules() if isinstance(m, SeqToBatch)
              and any(isinstance(c, nn.BatchNorm2d) for c in m.modules())]
        assert bn and all(m.bn_stats == "per_step" for m in bn), path.name
    for path in find_experiments("asa", CONFIGS):
        asa = [m for m in _model(path).modules() if isinstance(m, ASA)]
        if path.stem.endswith("_asa"):
            assert asa and all(m.faithful for m in asa), path.name
    memory = _model(CONFIGS / "snn_iir" / "associative_memory.yaml")
    assert {m.tau_m for m in memory.modules() if isinstance(m, (IIRNeuron, DualExpSynapse))} == {8.0}
    he = {p.stem: p for p in find_experiments("he2020", CONFIGS)}
    assert n_params(_model(he["gesture_snn_mlp_25ms"])) == 1_054_731
    assert n_params(_model(he["gesture_convlstm_cnn_25ms"])) == 4_317_963
    assert isinstance(_model(he["gesture_convrnn_cnn_10ms"]).layers[-1], FCHead)
    snn_cnn = _model(he["gesture_snn_cnn_25ms"])
    assert sum(isinstance(m, DropoutResetDecayLIF) for m in snn_cnn.modules()) == 3

"""ASA attention: shapes, batch size 1, per-sample vs batch-union selection, faithful parity with a
loop re-statement of the original algorithm, gradients to the TCA map."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeflow.layers import ASA
from spikeflow.layers.attention import topk_indicator


def _identity_map(asa: ASA) -> ASA:
    """Make the TCA score equal to 2x the (spatially constant) input: fc = identity."""
    with torch.no_grad():
        asa.fc.weight.copy_(torch.eye(asa.T))
    return asa


def _constant_maps(values: torch.Tensor, h: int = 3, w: int = 3) -> torch.Tensor:
    """``values [T, B, C]`` -> ``x [T, B, C, h, w]`` constant over space (mean = max = value)."""
    return values[..., None, None].expand(*values.shape, h, w).contiguous()


def _original_asa(asa: ASA, x: torch.Tensor) -> torch.Tensor:
    """The published algorithm restated with its batch-first loops and index assignments
    (``mask[:, t, idx] = 1`` with ``idx`` of shape [N, k] -> union over the batch; XOR)."""
    xb = x.permute(1, 0, 2, 3, 4)  # [N, T, C, H, W]
    n, T, C, H, W = xb.shape
    avg = nn.AdaptiveAvgPool3d((None, 1, 1))(xb).view(n, T, C)
    mx = nn.AdaptiveMaxPool3d((None, 1, 1))(xb).view(n, T, C)
    s = 0.5 * (avg + mx) + asa.alpha * avg + asa.beta * mx
    s = asa.fc(s.transpose(1, 2)).transpose(1, 2).detach()  # [N, T, C]
    imp_c = torch.zeros(n, T, C)
    imp_t = torch.zeros(n, T, C)
    for i in range(T):
        idx = s[:, i, :].topk(int(C * asa.lam), dim=1).indices  # [N, k]
        imp_c[:, i, idx] = 1
    for j in range(C):
        idx = s[:, :, j].topk(int(T * asa.lam), dim=1).indices
        imp_t[:, idx, j] = 1
    important = ((imp_c + imp_t) / 2 == 0.5).float()[..., None, None]
    f_im, f_sub = (important * xb).reshape(n, T * C, H, W), ((1 - important) * xb).reshape(n, T * C, H, W)
    a_im = torch.sigmoid(asa.conv_im(torch.cat([f_im.mean(1, keepdim=True) / asa.lam,
                                                f_im.max(1, keepdim=True).values], 1)))
    a_sub = torch.sigmoid(asa.conv_sub(torch.cat([f_sub.mean(1, keepdim=True) / (1 - asa.lam),
                                                  f_sub.max(1, keepdim=True).values], 1)))
    out = (a_im * f_im + a_sub * f_sub).view(n, T, C, H, W)
    return out.permute(1, 0, 2, 3, 4)


@pytest.mark.parametrize("reduction", [1, 2])
@pytest.mark.parametrize("faithful", [False, True])
def test_shape_and_batch_size_one(reduction: int, faithful: bool) -> None:
    torch.manual_seed(0)
    asa = ASA(T=4, C=6, reduction=reduction, faithful=faithful)
    x = torch.randn(4, 1, 6, 5, 7, requires_grad=True)
    y = asa(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_per_sample_selection_differs_from_batch_union() -> None:
    T, C = 2, 4
    # sample 0 prefers channels 0,1 at every step, sample 1 prefers channels 2,3; time preferences differ
    vals = torch.tensor([[[4.0, 3.0, 1.0, 0.5], [0.1, 0.2, 3.5, 4.5]],
                         [[3.8, 2.8, 0.9, 0.4], [0.3, 0.4, 3.7, 4.4]]])  # [T, B, C]
    x = _constant_maps(vals)
    per_sample = _identity_map(ASA(T, C, map_grad="none"))
    union = _identity_map(ASA(T, C, faithful=True))
    score = per_sample.tca_map(x)
    assert torch.allclose(score, 2 * vals)
    m_ps = per_sample.important_mask(score)
    m_un = union.important_mask(score)
    # per sample: channel top-2 per step and step top-1 per channel, XOR
    imp_c = torch.tensor([[[1, 1, 0, 0], [0, 0, 1, 1]], [[1, 1, 0, 0], [0, 0, 1, 1]]], dtype=torch.float)
    # step top-1 per channel: sample 0 -> step 0 everywhere; sample 1 -> step 1 except channel 3
    imp_t = torch.tensor([[[1, 1, 1, 1], [0, 0, 0, 1]], [[0, 0, 0, 0], [1, 1, 1, 0]]], dtype=torch.float)
    assert torch.equal(topk_indicator(score, 2, dim=2), imp_c)
    assert torch.equal(topk_indicator(score, 1, dim=0), imp_t)
    assert torch.equal(m_ps, (imp_c + imp_t) % 2)
    # batch union: every sample gets the OR of all samples' top-k, then XOR
    u_c = imp_c.amax(1, keepdim=True).expand_as(imp_c)
    u_t = imp_t.amax(1, keepdim=True).expand_as(imp_t)
    assert torch.equal(m_un, (u_c + u_t) % 2)
    assert torch.equal(m_un[:, 0], m_un[:, 1])            # union: identical masks in the batch
    assert not torch.equal(m_ps, m_un)                      # ... which differ from per-sample masks
    assert not torch.allclose(per_sample(x), union(x))
    # a sample's per-sample output does not depend on the rest of its batch; the union's does
    assert torch.allclose(per_sample(x)[:, :1], per_sample(x[:, :1]))
    assert not torch.allclose(union(x)[:, :1], union(x[:, :1]))


@pytest.mark.parametrize("shape", [(4, 3, 6, 5, 5), (5, 1, 8, 4, 6)])
def test_faithful_matches_original_algorithm(shape: tuple) -> None:
    torch.manual_seed(1)
    T, B, C = shape[:3]
    asa = ASA(T, C, faithful=True)
    for p in asa.parameters():
        nn.init.normal_(p, std=0.5)
    x = torch.randn(shape)
    assert torch.allclose(asa(x), _original_asa(asa, x), atol=1e-6)


def test_faithful_map_gets_no_gradient_but_ste_does() -> None:
    torch.manual_seed(2)
    x = torch.randn(4, 3, 6, 5, 5)
    faithful = ASA(4, 6, faithful=True)
    faithful(x).square().sum().backward()
    assert faithful.alpha.grad is None and faithful.fc.weight.grad is None
    assert faithful.conv_im.weight.grad is not None
    ste = ASA(4, 6)
    ste(x).square().sum().backward()
    assert ste.alpha.grad is not None and ste.alpha.grad.abs() > 0
    assert ste.fc.weight.grad.abs().sum() > 0


def test_ste_forward_equals_hard_mask_forward() -> None:
    torch.manual_seed(3)
    x = torch.randn(4, 2, 6, 3, 3)
    ste = ASA(4, 6)
    hard = ASA(4, 6, map_grad="none")
    hard.load_state_dict(ste.state_dict())
    assert torch.allclose(ste(x), hard(x), atol=1e-6)


def test_combine_rules() -> None:
    torch.manual_seed(4)
    score = torch.randn(8, 16, 8)
    c = topk_indicator(score, 4, dim=2).bool()
    t = topk_indicator(score, 4, dim=0).bool()
    masks = {rule: ASA(8, 8, combine=rule, map_grad="none").important_mask(score).bool()
             for rule in ("xor", "or", "and")}
    assert torch.equal(masks["xor"], c ^ t)
    assert torch.equal(masks["or"], c | t)
    assert torch.equal(masks["and"], c & t)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="lam"):
        ASA(4, 4, lam=1.0)
    with pytest.raises(ValueError, match="reduction"):
        ASA(2, 4, reduction=4)
    with pytest.raises(ValueError, match="faithful"):
        ASA(4, 4, faithful=True, combine="or")
    with pytest.raises(ValueError, match=r"\[4, B, 4, H, W\]"):
        ASA(4, 4)(torch.randn(3, 2, 4, 5, 5))


@pytest.mark.parametrize("name,kwargs,shape", [
    ("asa_arch_a", dict(T=4, input_size=8, channels=(4, 8, 8), hidden=16, reduction=2), (4, 3, 2, 8, 8)),
    ("asa_arch_b", dict(T=4, input_size=32, channels=8, hidden=16, layers=2), (4, 3, 2, 32, 32)),
])
def test_paper_variant_of_the_asa_nets_runs_the_original_attention(name, kwargs, shape) -> None:
    """``asa_variant="original"`` (every ASA paper config): each ASA layer of the net computes the
    published Attn.py (batch-union top-k, XOR) on its actual input, and a backward pass through the
    whole net leaves the TCA map (fc, alpha, beta) without gradient."""
    from spikeflow.models import create_model

    torch.manual_seed(5)
    net = create_model(name, asa_variant="original", **kwargs).train()
    layers = [m for m in net.modules() if isinstance(m, ASA)]
    assert layers and all(m.faithful and m.map_grad == "none" for m in layers)
    seen = []
    for m in layers:
        with torch.no_grad():
            for p in (m.alpha, m.beta, *m.fc.parameters()):
                p.normal_(std=0.5)
        m.register_forward_hook(lambda mod, i, o: seen.append((mod, i[0].detach(), o.detach())))
    x = torch.rand(shape)
    out = net(x)
    assert len(seen) == len(layers)
    for mod, inp, got in seen:
        assert torch.allclose(got, _original_asa(mod, inp), atol=1e-6)
    out.square().sum().backward()
    for m in layers:
        assert m.alpha.grad is None and m.beta.grad is None
        assert all(p.grad is None for p in m.fc.parameters())
        assert m.conv_im.weight.grad is not None
    # spikeflow's default variant: per-sample top-k, the TCA map trained (straight-through)
    default = create_model(name, **kwargs).train()
    assert all(not m.faithful and m.map_grad == "ste" for m in default.modules() if isinstance(m, ASA))
    assert all(m.faithful for m in create_model(name, faithful=True, **kwargs).modules() if isinstance(m, ASA))
    with pytest.raises(ValueError, match="asa_variant"):
        create_model(name, asa_variant="union", **kwargs)

"""ASA: Advanced Spatial Attention on the membrane input of a spiking layer (Yao et al., ICCV 2023,
"Inherent Redundancy in Spiking Neural Networks"; seeds_spec R3.4).

ASA sits between BatchNorm and the neuron and rescales the membrane input ``x [T, B, C, H, W]``:

1. **TCA map** (temporal-channel importance), per sample ``b``, step ``t``, channel ``c``::

       A = mean_{H,W} x,   M = max_{H,W} x                                  [T, B, C]
       s = 0.5 (A + M) + alpha A + beta M          (alpha, beta scalars, init 0.5)
       s = fc(s) along T: Linear(T, T) (reduction 1) or Linear(T, T/r)-ReLU-Linear(T/r, T)

2. **Selection**: ``imp_c[t, b, c] = 1`` if ``c`` is among the ``int(C lam)`` largest ``s[t, b, :]``
   (top-k channels per step); ``imp_t[t, b, c] = 1`` if ``t`` is among the ``int(T lam)`` largest
   ``s[:, b, c]`` (top-k steps per channel). The important mask ``m`` combines them (``combine``):
   ``"xor"`` exactly one indicator set (the authors' rule), ``"or"``, or ``"and"``.

3. **Two spatial attentions**: ``F_im = m x``, ``F_sub = (1 - m) x``; with means / maxima over the
   ``T*C`` maps of a sample::

       a_im  = sigmoid(conv1([mean_{TC}(F_im) / lam,       max_{TC}(F_im)]))    [B, 1, H, W]
       a_sub = sigmoid(conv2([mean_{TC}(F_sub) / (1 - lam), max_{TC}(F_sub)]))  (3x3, no bias)
       out   = a_im F_im + a_sub F_sub                                           [T, B, C, H, W]

Decisions (the published code, ``models/module/Attn.py``, differs; ``faithful=True`` reproduces it):

* **Per-sample selection.** The original marks indices with ``mask[:, t, topk_idx] = 1`` where
  ``topk_idx`` is ``[N, k]``: every sample gets the *union* of all samples' top-k, so a sample's
  attention depends on the rest of its batch (and on the batch size). Here each sample uses its own
  top-k. ``faithful=True`` takes the union over the batch (same mask for every sample).
* **Batch size 1.** The original ``squeeze()`` also drops ``N`` when ``N == 1``; both modes here keep
  the batch dim explicitly, so ``B = 1`` works (faithful mode then equals per-sample mode).
* **Gradient to the TCA map.** In the original the map only feeds ``topk`` indices, so ``fc``,
  ``alpha`` and ``beta`` never receive a gradient and stay at their initial values. Here
  (``map_grad="ste"``) the forward pass uses the exact hard mask ``m`` and the backward pass uses the
  gradient of a smooth relaxation of the *same* rule (straight-through estimator)::

      soft_c = sigmoid((s - theta_c) / tau_c)   theta_c = midpoint of the k-th and (k+1)-th largest
      soft_t = sigmoid((s - theta_t) / tau_t)   s along C (resp. T); tau = detached std along that axis
      soft   = soft_c + soft_t - 2 soft_c soft_t  (xor) | soft_c + soft_t - soft_c soft_t (or) |
               soft_c soft_t (and)
      m      = hard + soft - soft.detach()

  so ``dL/ds`` says whether a ``(t, c)`` map should move to the important or the sub-important branch.
  ``map_grad="none"`` (and ``faithful=True``) keeps the original behaviour (no gradient).
* **XOR rule kept by default.** ``(imp_c + imp_t) / 2 == 0.5`` selects elements marked by exactly one
  indicator; the paper's text does not settle whether this is intended. We keep it as the default
  because it produced the published numbers (for independent channel and time rankings it marks
  ``2 lam (1 - lam)`` of the ``(t, c)`` pairs, i.e. ``lam`` at the default ``lam = 0.5``, in line
  with the ``1/lam`` and ``1/(1-lam)`` rescaling of the mean branches); ``combine="or"``/``"and"``
  offer the union and the intersection.
* Ties in top-k follow ``torch.topk``. ``k = int(C lam)`` and ``int(T lam)`` as in the original (may
  be 0: then that indicator is all zero). The ``fc`` layers have no bias (the original's reduction-1
  layer has none; the bias of the reduced variant is not documented).

Shape: ``[T, B, C, H, W] -> [T, B, C, H, W]`` with ``T`` and ``C`` fixed at construction.

>>> import torch
>>> asa = ASA(T=4, C=8)
>>> asa(torch.randn(4, 1, 8, 5, 5)).shape
torch.Size([4, 1, 8, 5, 5])
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["ASA", "topk_indicator"]

COMBINES = ("xor", "or", "and")
MAP_GRADS = ("ste", "none")


def topk_indicator(score: Tensor, k: int, dim: int, union_dim: Optional[int] = None) -> Tensor:
    """0/1 tensor marking the ``k`` largest entries of ``score`` along ``dim``.

    With ``union_dim`` the marks are OR-ed over that dim and broadcast back (the original ASA's
    batch union). ``k = 0`` gives zeros.
    """
    out = torch.zeros_like(score)
    k = max(0, min(int(k), score.shape[dim]))
    if k > 0:
        out.scatter_(dim, score.topk(k, dim=dim).indices, 1.0)
    if union_dim is not None:
        out = out.amax(dim=union_dim, keepdim=True).expand_as(score).contiguous()
    return out


def _soft_indicator(score: Tensor, k: int, dim: int) -> Tensor:
    """``sigmoid((score - theta) / tau)``: a smooth top-k along ``dim`` centred between the k-th and
    (k+1)-th largest values, ``tau`` = detached std along ``dim``."""
    n = score.shape[dim]
    s = score.detach()
    ranked = s.sort(dim=dim, descending=True).values
    if k <= 0:
        theta = ranked.narrow(dim, 0, 1) + 1.0
    elif k >= n:
        theta = ranked.narrow(dim, n - 1, 1) - 1.0
    else:
        theta = 0.5 * (ranked.narrow(dim, k - 1, 1) + ranked.narrow(dim, k, 1))
    tau = s.std(dim=dim, keepdim=True, unbiased=False).clamp_min(1e-6) if n > 1 else torch.ones_like(theta)
    return torch.sigmoid((score - theta) / tau)


def _combine(a: Tensor, b: Tensor, rule: str) -> Tensor:
    if rule == "xor":
        return a + b - 2 * a * b
    if rule == "or":
        return a + b - a * b
    return a * b


class ASA(nn.Module):
    """Advanced Spatial Attention on membrane inputs ``[T, B, C, H, W]`` (see the module docstring).

    Args:
        T: number of steps (the TCA ``fc`` acts along time).
        C: channels.
        lam: fraction ``lam`` in ``(0, 1)`` for the top-k sizes and the mean rescaling (0.5).
        reduction: ``1`` -> ``Linear(T, T)``; ``r > 1`` -> ``Linear(T, T//r)-ReLU-Linear(T//r, T)``.
        faithful: reproduce the original exactly: batch-union selection, XOR, no map gradient.
        combine: ``"xor"`` (original), ``"or"`` or ``"and"`` (per-sample mode only).
        map_grad: ``"ste"`` straight-through gradient to the TCA map, ``"none"`` no gradient
            (default: ``"ste"``, or ``"none"`` when ``faithful``).
    """

    def __init__(self, T: int, C: int, lam: float = 0.5, reduction: int = 1, faithful: bool = False,
                 combine: str = "xor", map_grad: Optional[str] = None) -> None:
        super().__init__()
        for name, v in (("T", T), ("C", C), ("reduction", reduction)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ASA: {name} must be an int >= 1, got {v!r}")
        if not isinstance(lam, (int, float)) or not 0.0 < float(lam) < 1.0:
            raise ValueError(f"ASA: lam must be a number in (0, 1), got {lam!r}")
        if reduction > 1 and T // reduction < 1:
            raise ValueError(f"ASA: reduction={reduction} leaves no hidden unit for T={T} (T//reduction = 0)")
        if combine not in COMBINES:
            raise ValueError(f"ASA: combine must be one of {COMBINES}, got {combine!r}")
        if map_grad is None:
            map_grad = "none" if faithful else "ste"
        if map_grad not in MAP_GRADS:
            raise ValueError(f"ASA: map_grad must be one of {MAP_GRADS}, got {map_grad!r}")
        if faithful and (combine != "xor" or map_grad != "none"):
            raise ValueError("ASA: faithful=True is the original rule (XOR, no map gradient); "
                             f"got combine={combine!r}, map_grad={map_grad!r}")
        self.T, self.C, self.lam, self.reduction = T, C, float(lam), reduction
        self.faithful, self.combine, self.map_grad = bool(faithful), combine, map_grad
        self.k_c, self.k_t = int(C * self.lam), int(T * self.lam)
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.beta = nn.Parameter(torch.tensor(0.5))
        if reduction == 1:
            self.fc: nn.Module = nn.Linear(T, T, bias=False)
        else:
            self.fc = nn.Sequential(nn.Linear(T, T // reduction, bias=False), nn.ReLU(),
                                    nn.Linear(T // reduction, T, bias=False))
        self.conv_im = nn.Conv2d(2, 1, 3, padding=1, bias=False)
        self.conv_sub = nn.Conv2d(2, 1, 3, padding=1, bias=False)

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 5 or x.shape[0] != self.T or x.shape[2] != self.C:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"ASA(T={self.T}, C={self.C}) expects x of shape [{self.T}, B, {self.C}, H, W], "
                             f"got {shape}")

    def tca_map(self, x: Tensor) -> Tensor:
        """The temporal-channel score ``s`` ``[T, B, C]`` of ``x [T, B, C, H, W]``."""
        self._check(x)
        avg, mx = x.mean(dim=(3, 4)), x.amax(dim=(3, 4))
        s = 0.5 * (avg + mx) + self.alpha * avg + self.beta * mx
        return self.fc(s.permute(1, 2, 0)).permute(2, 0, 1)  # along T

    def important_mask(self, score: Tensor) -> Tensor:
        """The important mask ``m`` ``[T, B, C]`` from the score ``[T, B, C]`` (0/1 in the forward
        pass; carries the straight-through gradient when ``map_grad="ste"``)."""
        union = 1 if self.faithful else None
        imp_c = topk_indicator(score.detach(), self.k_c, dim=2, union_dim=union)
        imp_t = topk_indicator(score.detach(), self.k_t, dim=0, union_dim=union)
        hard = _combine(imp_c, imp_t, self.combine)
        if self.map_grad == "none" or not score.requires_grad:
            return hard
        soft = _combine(_soft_indicator(score, self.k_c, 2), _soft_indicator(score, self.k_t, 0), self.combine)
        return hard + soft - soft.detach()

    @staticmethod
    def _spatial(conv: nn.Conv2d, f: Tensor, scale: float) -> Tensor:
        flat = f.permute(1, 0, 2, 3, 4).flatten(1, 2)  # [B, T*C, H, W]
        pooled = torch.cat([flat.mean(1, keepdim=True) / scale, flat.amax(1, keepdim=True)], dim=1)
        return torch.sigmoid(conv(pooled)).unsqueeze(0)  # [1, B, 1, H, W]

    def forward(self, x: Tensor) -> Tensor:
        m = self.important_mask(self.tca_map(x))[..., None, None]
        f_im, f_sub = m * x, (1 - m) * x
        return (self._spatial(self.conv_im, f_im, self.lam) * f_im
                + self._spatial(self.conv_sub, f_sub, 1.0 - self.lam) * f_sub)

    def extra_repr(self) -> str:
        return (f"T={self.T}, C={self.C}, lam={self.lam}, reduction={self.reduction}, "
                f"faithful={self.faithful}, combine={self.combine!r}, map_grad={self.map_grad!r}")

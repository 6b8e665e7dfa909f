"""Image transforms in plain torch (no torchvision): pure functions + frozen dataclasses.

Images are float tensors ``[C, H, W]`` or batches ``[B, C, H, W]`` (values in [0, 1] before
:class:`Normalize`). Random transforms draw one set of parameters per image from an explicit
``torch.Generator`` passed at call time (``None`` = torch's global generator, which DataLoader
workers seed deterministically). Nothing mutates its input.

Geometry uses ``affine_grid``/``grid_sample`` with ``align_corners=False``: pixel centres sit at
``(i + 0.5)`` so the image centre is the rotation centre, as in torchvision. Areas that come from
outside the image are filled with 0.

    >>> import torch
    >>> x = torch.rand(1, 8, 8)
    >>> flip = RandomHorizontalFlip(p=1.0)
    >>> bool(torch.equal(flip(flip(x)), x))
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Per-dataset normalisation constants (mean, std) per channel, as used by the PLIF recipes.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def _batched(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Let a ``[B, C, H, W]`` function accept a single ``[C, H, W]`` image too."""

    def wrapper(x: Tensor, *args, **kwargs) -> Tensor:
        if x.dim() == 3:
            return fn(x.unsqueeze(0), *args, **kwargs).squeeze(0)
        if x.dim() != 4:
            raise ValueError(f"expected an image [C, H, W] or a batch [B, C, H, W], got {tuple(x.shape)}")
        return fn(x, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


# ----------------------------------------------------------------------------- pure functions
@_batched
def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(x - mean[c]) / std[c]`` per channel."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


@_batched
def affine(x: Tensor, angle: Tensor, translate: Tensor, scale: Tensor, mode: str = "nearest") -> Tensor:
    """Rotate by ``angle`` degrees (counter-clockwise), scale, then shift by ``translate`` pixels.

    ``angle``, ``scale``: ``[B]``; ``translate``: ``[B, 2]`` as (dx right, dy down). The output
    pixel ``p`` samples the input at ``R(angle)^T (p - c - t) / scale + c`` (``c`` = centre).
    """
    b, _, h, w = x.shape
    a = torch.deg2rad(angle.to(torch.float64)).reshape(b)
    cos, sin = torch.cos(a), torch.sin(a)
    s = scale.to(torch.float64).reshape(b)
    theta = torch.empty(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos / s, -sin * h / w / s
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h / s, cos / s
    t = translate.to(torch.float64).reshape(b, 2) * torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64)
    theta[:, :, 2] = -torch.einsum("bij,bj->bi", theta[:, :, :2], t)
    return _warp(x, theta, (h, w), mode)


@_batched
def resized_crop(x: Tensor, boxes: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Crop ``boxes`` ``[B, 4]`` = (top, left, height, width) in pixels and resize to ``size``."""
    b, _, h, w = x.shape
    top, left, bh, bw = boxes.to(torch.float64).unbind(-1)
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 2] = bw / w, (2 * left + bw) / w - 1
    theta[:, 1, 1], theta[:, 1, 2] = bh / h, (2 * top + bh) / h - 1
    return _warp(x, theta, size, mode)


def _warp(x: Tensor, theta: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if mode not in ("nearest", "bilinear", "bicubic"):
        raise ValueError(f"mode must be 'nearest', 'bilinear' or 'bicubic', got {mode!r}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    grid = F.affine_grid(theta.to(dtype=dtype, device=x.device), [x.shape[0], x.shape[1], *size],
                         align_corners=False)
    return F.grid_sample(x.to(dtype), grid, mode=mode, padding_mode="zeros", align_corners=False)


@_batched
def crop(x: Tensor, top: Tensor, left: Tensor, size: tuple[int, int], padding: int = 0) -> Tensor:
    """Zero-pad by ``padding`` then crop ``size`` at per-image offsets ``top``/``left`` ``[B]``."""
    h, w = size
    xp = F.pad(x, (padding,) * 4) if padding else x
    if not (top.min() >= 0 and left.min() >= 0 and top.max() + h <= xp.shape[-2]
            and left.max() + w <= xp.shape[-1]):
        raise ValueError(f"crop {size} at the given offsets leaves the padded image {tuple(xp.shape[-2:])}")
    rows = (top.long().view(-1, 1) + torch.arange(h)).to(x.device)
    cols = (left.long().view(-1, 1) + torch.arange(w)).to(x.device)
    bidx = torch.arange(x.shape[0], device=x.device).view(-1, 1, 1)
    return xp.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@_batched
def hflip(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mirror left-right the images where ``mask`` ``[B]`` is True (all when ``None``)."""
    if mask is None:
        return x.flip(-1)
    return torch.where(mask.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)


# ----------------------------------------------------------------------------- transforms
@dataclass(frozen=True)
class Normalize:
    """Per-channel normalisation, e.g. ``Normalize(*NORMALIZATION["mnist"])``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return normalize(x, self.mean, self.std)


@dataclass(frozen=True)
class RandomAffine:
    """torchvision-style random affine: angle ~ U(-degrees, degrees); shift ~ round(U(-t*W, t*W))
    pixels (and H); scale ~ U(scale). PLIF's MNIST recipe is ``RandomAffine(30, (0.15, 0.15),
    (0.85, 1.11))``; ``RandomAffine(15)`` is a plain random rotation."""

    degrees: float
    translate: tuple[float, float] | None = None
    scale: tuple[float, float] | None = None
    mode: str = "nearest"

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b = 1 if x.dim() == 3 else x.shape[0]
        h, w = x.shape[-2:]
        angle = _uniform(b, -self.degrees, self.degrees, generator)
        shift = torch.zeros(b, 2, dtype=torch.float64)
        if self.translate is not None:
            shift[:, 0] = torch.round(_uniform(b, -self.translate[0] * w, self.translate[0] * w, generator))
            shift[:, 1] = torch.round(_uniform(b, -self.translate[1] * h, self.translate[1] * h, generator))
        scale = _uniform(b, *self.scale, generator) if self.scale is not None else torch.ones(b, dtype=torch.float64)
        return affine(x, angle, shift, scale, self.mode)


@dataclass(frozen=True)
class RandomResizedCrop:
    """torchvision's RandomResizedCrop: area fraction ~ U(scale), log aspect ~ U(log ratio), up to
    10 tries per image, else a centre crop; then bilinear resize to ``size`` (no antialiasing)."""

    size: tuple[int, int] | int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    mode: str = "bilinear"

    def boxes(self, b: int, h: int, w: int, generator: torch.Generator | None = None) -> Tensor:
        """Per-image crop boxes ``[b, 4]`` = (top, left, height, width)."""
        tries = 10
        area = _uniform(b * tries, *self.scale, generator).view(b, tries) * h * w
        log_r = _uniform(b * tries, math.log(self.ratio[0]), math.log(self.ratio[1]), generator)
        aspect = torch.exp(log_r).view(b, tries)
        cw = torch.round(torch.sqrt(area * aspect))
        ch = torch.round(torch.sqrt(area / aspect))
        ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((b,), -1))
        u = torch.rand(b, 2, generator=generator, dtype=torch.float64)
        out = torch.empty(b, 4, dtype=torch.float64)
        for i in range(b):
            if first[i] >= 0:
                bh, bw = ch[i, first[i]], cw[i, first[i]]
                top, left = torch.floor(u[i, 0] * (h - bh + 1)), torch.floor(u[i, 1] * (w - bw + 1))
            else:  # centre crop with the aspect ratio clamped into ``ratio``
                r = w / h
                bw, bh = (w, round(w / self.ratio[0])) if r < self.ratio[0] else (
                    (round(h * self.ratio[1]), h) if r > self.ratio[1] else (w, h))
                bh, bw = float(min(bh, h)), float(min(bw, w))
                top, left = (h - bh) // 2, (w - bw) // 2
            out[i] = torch.tensor([float(top), float(left), float(bh), float(bw)])
        return out

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b = 1 if x.dim() == 3 else x.shape[0]
        size = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
        return resized_crop(x, self.boxes(b, *x.shape[-2:], generator), size, self.mode)


@dataclass(frozen=True)
class RandomCrop:
    """Zero-pad by ``padding`` pixels and crop ``size`` at a uniform random offset (CIFAR-10: 32, 4)."""

    size: tuple[int, int] | int
    padding: int = 0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b = 1 if x.dim() == 3 else x.shape[0]
        h, w = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
        hp, wp = x.shape[-2] + 2 * self.padding, x.shape[-1] + 2 * self.padding
        if h > hp or w > wp:
            raise ValueError(f"crop size {(h, w)} is larger than the padded image {(hp, wp)}")
        top = torch.randint(0, hp - h + 1, (b,), generator=generator)
        left = torch.randint(0, wp - w + 1, (b,), generator=generator)
        return crop(x, top, left, (h, w), self.padding)


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Mirror left-right with probability ``p`` per image."""

    p: float = 0.5

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b = 1 if x.dim() == 3 else x.shape[0]
        return hflip(x, torch.rand(b, generator=generator) < self.p)


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order, passing the same generator along."""

    transforms: tuple[Callable[..., Tensor], ...]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x


@dataclass(frozen=True)
class RandomApply:
    """With probability ``p`` per image apply all ``transforms`` in sequence (torchvision's
    RandomApply; snn-iir's MNIST augmentation uses it with p=0.5)."""

    transforms: tuple[Callable[..., Tensor], ...]
    p: float = 0.5

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b = 1 if x.dim() == 3 else x.shape[0]
        apply = torch.rand(b, generator=generator) < self.p
        if not bool(apply.any()):
            return x
        y = Compose(self.transforms)(x, generator)
        if y.shape != x.shape:
            raise ValueError("RandomApply needs shape-preserving transforms")
        m = apply.view(-1, 1, 1, 1) if x.dim() == 4 else apply.view(1, 1, 1)
        return torch.where(m.to(x.device), y, x)


def recipe(name: str, dataset: str, train: bool) -> Callable[..., Tensor] | None:
    """The augmentation of a paper recipe for a dataset split (``None`` = none).

    ``"plif"``: MNIST RandomAffine(30, 0.15, (0.85, 1.11)); CIFAR-10 RandomCrop(32, 4) +
    flip; Fashion-MNIST none. ``"snn_iir"``: snn-iir's MNIST augmentation, with probability 0.5
    per image ``crop -> rot -> crop -> rot`` (the original ``RandomApply([crop, rot,
    Compose([crop, rot])], p=0.5)``: RandomApply runs its whole list in sequence, so the crop and
    the rotation are each drawn twice), crop = RandomResizedCrop(28, (0.85, 1)), rot =
    RandomRotation(15); on MNIST-like 28x28 images. ``"snn_iir_once"``: the same with one crop and
    one rotation (spikeflow's earlier recipe). ``"none"``: none.
    """
    if not train or name == "none":
        return None
    if name == "plif":
        if dataset == "mnist":
            return RandomAffine(30.0, (0.15, 0.15), (0.85, 1.11))
        if dataset == "cifar10":
            return Compose((RandomCrop(32, 4), RandomHorizontalFlip(0.5)))
        return None
    if name in ("snn_iir", "snn_iir_once"):
        crop, rot = RandomResizedCrop(28, (0.85, 1.0)), RandomAffine(15.0)
        if name == "snn_iir_once":
            return RandomApply((crop, rot), p=0.5)
        return RandomApply((crop, rot, Compose((crop, rot))), p=0.5)
    raise ValueError(f"unknown augmentation recipe {name!r}; expected 'plif', 'snn_iir', 'snn_iir_once' "
                     "or 'none'")


__all__ = ["NORMALIZATION", "normalize", "affine", "resized_crop", "crop", "hflip", "Normalize",
           "RandomAffine", "RandomResizedCrop", "RandomCrop", "RandomHorizontalFlip", "Compose",
           "RandomApply", "recipe"]

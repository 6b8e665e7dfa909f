"""Torch-only image transforms: known answers (identity, rot90, shifts, flips, crops) and seeding."""
import pytest
import torch

from spikeflow.data import transforms as T


def _img(c=1, h=6, w=6, b=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (c, h, w) if b is None else (b, c, h, w)
    return torch.rand(shape, generator=g)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_identity_affine(mode):
    x = _img(b=3, h=5, w=7)
    y = T.affine(x, torch.zeros(3), torch.zeros(3, 2), torch.ones(3), mode)
    assert torch.allclose(x, y, atol=1e-6)


@pytest.mark.parametrize("size", [4, 5])
def test_rotation_90_is_rot90_counter_clockwise(size):
    x = _img(c=2, h=size, w=size)
    y = T.affine(x, torch.tensor([90.0]), torch.zeros(1, 2), torch.ones(1), "nearest")
    assert torch.equal(y, torch.rot90(x, 1, dims=(-2, -1)))


def test_translation_shifts_and_fills_zero():
    x = _img(h=5, w=6)
    y = T.affine(x, torch.zeros(1), torch.tensor([[2.0, -1.0]]), torch.ones(1), "nearest")
    ref = torch.zeros_like(x)
    ref[:, :4, 2:] = x[:, 1:, :4]  # right by 2, up by 1
    assert torch.equal(y, ref)


def test_scale_maps_around_centre():
    x = torch.arange(16.0).view(1, 4, 4)
    y = T.affine(x, torch.zeros(1), torch.zeros(1, 2), torch.tensor([2.0]), "nearest")
    assert y[0, 0, 0] == x[0, 1, 1] and y[0, 3, 3] == x[0, 2, 2]


def test_random_affine_seeded_and_per_image():
    x = _img(b=4, h=8, w=8)
    t = T.RandomAffine(30.0, (0.15, 0.15), (0.85, 1.11))
    a = t(x, torch.Generator().manual_seed(3))
    b = t(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    same = T.RandomAffine(30.0)(x[:1].expand(4, -1, -1, -1), torch.Generator().manual_seed(1))
    assert not torch.equal(same[0], same[1])  # one parameter draw per image
    assert x.equal(_img(b=4, h=8, w=8))  # input untouched


def test_flip_twice_identity_and_mask():
    x = _img(b=3)
    f = T.RandomHorizontalFlip(1.0)
    assert torch.equal(f(x), x.flip(-1)) and torch.equal(f(f(x)), x)
    m = T.hflip(x, torch.tensor([True, False, True]))
    assert torch.equal(m[1], x[1]) and torch.equal(m[2], x[2].flip(-1))
    assert torch.equal(T.RandomHorizontalFlip(0.0)(x), x)


def test_random_crop_with_padding():
    x = _img(c=3, h=5, w=5, b=2)
    assert torch.equal(T.RandomCrop(5)(x), x)
    y = T.crop(x, torch.tensor([0, 4]), torch.tensor([1, 0]), (5, 5), padding=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    assert torch.equal(y[0], padded[0, :, 0:5, 1:6]) and torch.equal(y[1], padded[1, :, 4:9, 0:5])
    out = T.RandomCrop(5, padding=2)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="larger"):
        T.RandomCrop(10, padding=1)(x)


def test_resized_crop_full_box_is_identity_and_quadrant_upsamples():
    x = _img(b=2, h=6, w=6)
    full = T.RandomResizedCrop(6, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(full(x, torch.Generator().manual_seed(0)), x, atol=1e-6)
    q = T.resized_crop(x, torch.tensor([[0.0, 0.0, 3.0, 3.0]] * 2), (6, 6), "nearest")
    assert torch.equal(q, x[..., :3, :3].repeat_interleave(2, -1).repeat_interleave(2, -2))
    boxes = T.RandomResizedCrop(28, (0.85, 1.0)).boxes(100, 28, 28, torch.Generator().manual_seed(0))
    area = boxes[:, 2] * boxes[:, 3] / 28 ** 2
    assert boxes[:, 2].max() <= 28 and area.min() > 0.78 and area.max() <= 1.0
    assert (boxes[:, 0] + boxes[:, 2]).max() <= 28 and (boxes[:, 1] + boxes[:, 3]).max() <= 28


def test_normalize_and_recipes():
    x = torch.full((1, 2, 2), 0.5)
    n = T.Normalize(*T.NORMALIZATION["fashion_mnist"])(x)
    assert torch.allclose(n, torch.full_like(x, (0.5 - 0.2860) / 0.3530))
    c = T.Normalize(*T.NORMALIZATION["cifar10"])(torch.zeros(3, 1, 1))
    assert torch.allclose(c.view(-1), -torch.tensor([0.4914, 0.4822, 0.4465]) / torch.tensor([0.2023, 0.1994, 0.2010]))
    assert T.recipe("plif", "fashion_mnist", True) is None and T.recipe("plif", "mnist", False) is None
    aug = T.recipe("snn_iir", "mnist", True)
    y = aug(_img(b=8, h=28, w=28), torch.Generator().manual_seed(0))
    assert y.shape == (8, 1, 28, 28)
    with pytest.raises(ValueError, match="recipe"):
        T.recipe("autoaugment", "mnist", True)


def test_random_apply_probability():
    x = _img(b=200, h=4, w=4)
    y = T.RandomApply((T.RandomHorizontalFlip(1.0),), p=0.5)(x, torch.Generator().manual_seed(0))
    changed = (y != x).flatten(1).any(1).float().mean()
    assert 0.38 < float(changed) < 0.62


def test_snn_iir_recipe_draws_crop_and_rotation_twice():
    """snn-iir: ``RandomApply([crop, rot, Compose([crop, rot])], p=0.5)`` -- transcribed here as the
    per-image rule "one coin; if heads: crop, rot, crop, rot" with the same generator stream."""
    x = _img(b=6, h=28, w=28)
    got = T.recipe("snn_iir", "mnist", True)(x, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    coin = torch.rand(6, generator=g) < 0.5
    crop, rot = T.RandomResizedCrop(28, (0.85, 1.0)), T.RandomAffine(15.0)
    y = x
    for t in (crop, rot, crop, rot):
        y = t(y, g)
    want = torch.where(coin.view(-1, 1, 1, 1), y, x)
    assert torch.equal(got, want)
    assert 0 < int(coin.sum()) < 6  # both branches exercised
    once = T.recipe("snn_iir_once", "mnist", True)(x, torch.Generator().manual_seed(1))
    assert not torch.equal(once, got)

"""digits: the fixed saved stratified split and item shapes."""
import numpy as np
import pytest

import spikeflow as sf
from spikeflow.data.digits import digits_split_indices, load_digits_arrays


def test_split_fixed_stratified_disjoint():
    train, test = digits_split_indices()
    _, y = load_digits_arrays()
    assert (len(train), len(test)) == (1438, 359)
    assert np.intersect1d(train, test).size == 0 and np.union1d(train, test).size == 1797
    per_class = np.bincount(y[test], minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(per_class - 0.2) < 0.01)
    assert test[:6].tolist() == [0, 2, 12, 13, 14, 18]  # the saved indices never change


def test_items_and_upscale():
    ds = sf.data.create_dataset("digits", split="train")
    x, y = ds[0]
    assert x.shape == (1, 8, 8) and x.dtype.is_floating_point and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert y == int(load_digits_arrays()[1][digits_split_indices()[0][0]])
    big = sf.data.create_dataset("digits", split="test", size=16)
    assert big[0][0].shape == (1, 16, 16)
    # bilinear upscaling keeps the mean intensity closely
    assert abs(float(big[0][0].mean()) - float(sf.data.create_dataset("digits", split="test")[0][0].mean())) < 0.02


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match=r"digits: unknown option\(s\) \['vla_size'\]"):
        sf.data.create_dataset("digits", split="test", vla_size=10)

"""Multi-clip scoring (ASA rule) and majority vote."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeflow.data.clips import clip_accuracy, clip_correct, majority_vote


def test_clip_correct_needs_more_than_half():
    preds = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [2, 2, 2, 2]])
    assert clip_correct(preds, np.array([1, 1, 0])).tolist() == [False, True, False]
    assert clip_accuracy(torch.tensor(preds), torch.tensor([1, 1, 2])) == pytest.approx(200 / 3)


def test_majority_vote_ties_go_to_smaller_class():
    preds = torch.tensor([[3, 1, 3, 1], [0, 2, 2, 5]])
    assert majority_vote(preds).tolist() == [1, 2]
    assert majority_vote(np.array([[4]]), n_classes=11).tolist() == [4]


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        clip_correct(np.zeros(3), np.zeros(3))

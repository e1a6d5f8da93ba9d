import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import joint.data
from joint.data import digits


def test_digits_split_is_fixed_stratified_and_disjoint():
    a, b = joint.data.load("digits"), joint.data.load("digits")
    assert (len(a.train), len(a.val), len(a.test)) == (1077, 360, 360)
    assert torch.equal(a.test.inputs, b.test.inputs)
    for split in (a.train, a.val, a.test):
        counts = torch.bincount(split.labels, minlength=10).float()
        assert counts.min() / counts.max() > 0.9  # stratified: classes balanced as in the dataset
    train, val, test = digits.split_indices(load_digits().target)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1797))
    assert a.train.inputs.min() >= 0 and a.train.inputs.max() <= 1
    assert a.input_shape == (1, 8, 8) and a.model()(a.test.inputs[:2]).shape == (2, 10)


def test_unknown_benchmark():
    with pytest.raises(ValueError,
                       match="unknown benchmark 'mnist'; allowed: cifar10, digits, speech_commands, tiny_imagenet"):
        joint.data.load("mnist")

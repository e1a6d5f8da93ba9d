"""The offline quick benchmark: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes)."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ..models import resnet8_digits
from .benchmark import Benchmark
from .tensors import TensorData

SPLIT_SEED = 14  # fixed: every run, method and seed sees the same split
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 60/20/20 partition of the sample indices into train, val and test (fixed seed)."""
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=VAL_FRACTION / (1 - TEST_FRACTION), stratify=labels[rest],
                                  random_state=SPLIT_SEED)
    return train, val, test


def load() -> Benchmark:
    """The digits split 60/20/20 into train/val/test, pixels scaled to [0, 1], input 1x8x8."""
    digits = load_digits()
    x = torch.from_numpy((digits.images / 16.0).astype(np.float32)[:, None])
    y = torch.from_numpy(digits.target.astype(np.int64))
    train, val, test = (TensorData(x[i], y[i]) for i in split_indices(digits.target))
    return Benchmark("digits", train, val, test, (1, 8, 8), 10, resnet8_digits,
                     source="scikit-learn's bundled digits")

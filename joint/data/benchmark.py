"""Benchmark: what every dataset module returns (splits, input shape, classes, the model the paper uses on it)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset


@dataclass
class Benchmark:
    """The three splits of a dataset, its input shape, and the float model searched on it."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    input_shape: tuple[int, ...]
    num_classes: int
    model: Callable[[], nn.Module]
    class_weights: torch.Tensor | None = field(default=None, repr=False)
    source: str = ""  # which copy of the data was read (file or folder name, no machine paths), for the records

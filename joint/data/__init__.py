"""Benchmarks: one module per dataset, each giving train/val/test splits and the model the paper uses on it."""
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


def _digits(root: str, download: bool) -> Benchmark:
    from . import digits
    return digits.load()


def _speech_commands(root: str, download: bool) -> Benchmark:
    from . import speech_commands
    return speech_commands.load(root, download)


def _cifar10(root: str, download: bool) -> Benchmark:
    from . import cifar10
    return cifar10.load(root, download)


def _tiny_imagenet(root: str, download: bool) -> Benchmark:
    from . import tiny_imagenet
    return tiny_imagenet.load(root, download)


MODELS = {"digits": "resnet8_digits", "cifar10": "resnet8", "speech_commands": "dscnn",
          "tiny_imagenet": "resnet18_tiny"}  # the model of each benchmark (joint.models.build), known without data
CLASSES = {"digits": 10, "cifar10": 10, "speech_commands": 12, "tiny_imagenet": 200}  # known without data
LOADERS: dict[str, Callable[[str, bool], Benchmark]] = {"digits": _digits, "speech_commands": _speech_commands,
                                                        "cifar10": _cifar10, "tiny_imagenet": _tiny_imagenet}


def identity(name: str, root: str = "data") -> str:
    """Which copy of `name` a load from `root` reads, named without reading it ("" where there is only one copy):
    part of what identifies a run, since copies split differently."""
    if name == "cifar10":
        from . import cifar10
        return cifar10.identity(root)
    return ""


def load(name: str, root: str = "data", download: bool = True) -> Benchmark:
    """The benchmark `name`, read from (or downloaded into) `root`."""
    if name not in LOADERS:
        raise ValueError(f"unknown benchmark {name!r}; allowed: {', '.join(sorted(LOADERS))}")
    return LOADERS[name](root, download)

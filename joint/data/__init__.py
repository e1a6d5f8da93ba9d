"""Benchmarks: one module per dataset, each giving train/val/test splits and the model the paper uses on it."""
from __future__ import annotations

from collections.abc import Callable

from .benchmark import Benchmark

# each dataset module is imported when it is asked for, so `import joint` loads no torchaudio, scikit-learn or
# torchvision datasets code


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

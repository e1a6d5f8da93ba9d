"""Tiny ImageNet for ResNet-18: 90,000/10,000 train/val from the training set, the official val set as test.

Inputs are 3x64x64 in [0, 1], not normalised, as in the authors' scripts. Departure: val gets the test transform
(no flip), so model selection is deterministic. Also the pieces of the paper's two-stage warm-up: ImageNet weights,
224-px views of the same samples, and the copy into the reduced-stem 64-px model.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.models import ResNet18_Weights

from ..models import resnet18_tiny
from .benchmark import Benchmark
from .cifar10 import split_indices as _split
from .download import Archive, DatasetError, ensure

ARCHIVE = Archive("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de",
                  "tiny-imagenet-200")
NUM_CLASSES = 200
VAL_FRACTION = 0.1
TRAIN_64 = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor()])
TEST_64 = transforms.ToTensor()
_RESIZE_224 = [transforms.Resize(256, transforms.InterpolationMode.BILINEAR), transforms.CenterCrop(224)]
TRAIN_224 = transforms.Compose([*_RESIZE_224, transforms.RandomHorizontalFlip(), transforms.ToTensor()])
TEST_224 = transforms.Compose([*_RESIZE_224, transforms.ToTensor()])
FRESH_IN_REDUCED_STEM = ("conv1", "fc")  # top-level modules of the 64-px model that keep their initialisation

Sample = tuple[Path, int]


class Images(Dataset):
    """(image, label) pairs read from image files, converted to RGB (some Tiny ImageNet JPEGs are greyscale) and
    passed through `transform`."""

    def __init__(self, samples: list[Sample], transform: Callable):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


def split_indices(n: int = 100_000, val: int = 10_000) -> tuple[list[int], list[int]]:
    """Train and val indices of the n training images, `val` of them in val (fixed seed, as for CIFAR-10)."""
    return _split(n, val)


def classes(folder: Path) -> list[str]:
    """The wnids of wnids.txt, sorted: a class's index is its wnid's position."""
    return sorted(line.strip() for line in (folder / "wnids.txt").read_text().splitlines() if line.strip())


def train_samples(folder: Path, wnids: list[str]) -> list[Sample]:
    """Every train/<wnid>/images/*.JPEG with its label, in ImageFolder's order (by class, then by file name)."""
    return [(path, label) for label, wnid in enumerate(wnids)
            for path in sorted((folder / "train" / wnid / "images").glob("*.JPEG"))]


def official_val_samples(folder: Path, wnids: list[str]) -> list[Sample]:
    """The official val images labelled by val/val_annotations.txt (file name, wnid, box), sorted by file name."""
    label = {wnid: i for i, wnid in enumerate(wnids)}
    annotations = folder / "val" / "val_annotations.txt"
    rows = [line.split("\t") for line in annotations.read_text().splitlines() if line]
    unknown = sorted({row[1] for row in rows} - set(label))
    if unknown:
        raise DatasetError(f"{annotations} names wnids not in wnids.txt ({', '.join(unknown)}); delete {folder} and "
                           f"extract it afresh")
    return sorted((folder / "val" / "images" / row[0], label[row[1]]) for row in rows)


def load(root: str, download: bool) -> Benchmark:
    """Tiny ImageNet from (or downloaded into) `root`: flipped train, un-augmented val and test, ResNet-18 (64 px)."""
    folder = ensure(ARCHIVE, root, download)
    wnids = classes(folder)
    samples = train_samples(folder, wnids)
    train_indices, val_indices = split_indices(len(samples), round(VAL_FRACTION * len(samples)))
    train = Images([samples[i] for i in train_indices], TRAIN_64)
    val = Images([samples[i] for i in val_indices], TEST_64)
    test = Images(official_val_samples(folder, wnids), TEST_64)
    return Benchmark("tiny_imagenet", train, val, test, (3, 64, 64), NUM_CLASSES, resnet18_tiny,
                     source=f"{ARCHIVE.filename} (official)")


def views_224(benchmark: Benchmark) -> tuple[Images, Images]:
    """The benchmark's train and val samples at 224 px, for the first warm-up stage on the ImageNet-stem model."""
    return Images(benchmark.train.samples, TRAIN_224), Images(benchmark.val.samples, TEST_224)


def imagenet_pretrained(num_classes: int = NUM_CLASSES,
                        weights: ResNet18_Weights | None = ResNet18_Weights.IMAGENET1K_V1) -> nn.Module:
    """torchvision's ResNet-18 with `weights` (fetched into the torch hub cache) and a fresh num_classes-way FC."""
    try:
        model = torchvision.models.resnet18(weights=weights)
    except (OSError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise DatasetError(f"could not get the ResNet-18 weights {weights.url} ({reason}); download the file into "
                           f"{Path(torch.hub.get_dir()) / 'checkpoints'}") from None
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def to_reduced_stem(model224: nn.Module) -> nn.Module:
    """A 64-px resnet18_tiny holding the 224-px model's weights, except the stem conv and the FC, which stay freshly
    initialised (the stem's kernel size differs, and the paper re-initialises the FC)."""
    model = resnet18_tiny(model224.fc.out_features)
    source = model224.state_dict()
    model.load_state_dict({name: fresh if name.split(".")[0] in FRESH_IN_REDUCED_STEM else source[name]
                           for name, fresh in model.state_dict().items()})
    return model

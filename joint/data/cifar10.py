"""CIFAR-10 for the MLPerf Tiny ResNet-8: 40,000/10,000 train/val from the training set, the full 10,000-image test set.

Inputs are 3x32x32 in [0, 1], not normalised, as in the authors' scripts. Departure: there the val subset inherits the
training augmentation (a random split of the augmented dataset); here val gets the test transform, so model selection
is deterministic.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torchvision
from torch.utils.data import Dataset
from torchvision import transforms

from ..models import resnet8
from . import Benchmark
from .download import Archive, DatasetError, ensure

ARCHIVE = Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                  "cifar-10-batches-py")
SPLIT_SEED = 14  # fixed: every run, method and seed sees the same split
VAL_FRACTION = 0.2
TRAIN_TRANSFORM = transforms.Compose([transforms.RandomRotation(15), transforms.RandomAffine(0, translate=(0.1, 0.1)),
                                      transforms.RandomHorizontalFlip(0.5), transforms.ToTensor()])
TEST_TRANSFORM = transforms.ToTensor()


class TransformedSubset(Dataset):
    """The samples `indices` of a dataset of (image, label) pairs, images passed through `transform`: train and val
    share one copy of the images but not the augmentation."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], transform: Callable):
        self.dataset, self.indices, self.transform = dataset, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[self.indices[i]]
        return self.transform(image), label


def split_indices(n: int = 50_000, val: int = 10_000, seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    """Train and val indices of n samples, `val` of them in val: the partition random_split(range(n), [n - val, val])
    makes with a generator seeded `seed`, so it does not depend on the global RNG."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return order[:n - val], order[n - val:]


def read(root: Path, train: bool, transform: Callable | None) -> torchvision.datasets.CIFAR10:
    """One half of the extracted dataset under `root`, read by torchvision, which checks every batch file's MD5."""
    try:
        return torchvision.datasets.CIFAR10(root, train=train, transform=transform, download=False)
    except RuntimeError:
        raise DatasetError(f"{root / ARCHIVE.folder} is incomplete or corrupted (a batch file has the wrong MD5); "
                           f"delete it and run again to extract it afresh") from None


def load(root: str, download: bool) -> Benchmark:
    """CIFAR-10 from (or downloaded into) `root`: augmented train, un-augmented val and test, ResNet-8."""
    folder = ensure(ARCHIVE, root, download)
    full, test = read(folder.parent, True, None), read(folder.parent, False, TEST_TRANSFORM)
    train_indices, val_indices = split_indices(len(full), round(VAL_FRACTION * len(full)))
    train = TransformedSubset(full, train_indices, TRAIN_TRANSFORM)
    val = TransformedSubset(full, val_indices, TEST_TRANSFORM)
    return Benchmark("cifar10", train, val, test, (3, 32, 32), 10, resnet8)

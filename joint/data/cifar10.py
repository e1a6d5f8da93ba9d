"""CIFAR-10 for the MLPerf Tiny ResNet-8: 40,000/10,000 train/val from the training set, the full 10,000-image test set.

Read from the official python archive, or from an image-folder copy (train/<class>/*, test/<class>/*, PNG or JPEG,
the layout torchvision's ImageFolder reads) as a folder or as the cifar10-jpeg.tar.gz archive. Images are decoded
once into one uint8 tensor and augmented a batch at a time. Inputs are 3x32x32 in [0, 1], not normalised, as in the
authors' scripts. Departure: there the val subset inherits the training augmentation (a random split of the augmented
dataset); here val is not augmented, so model selection is deterministic.
"""
from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torchvision
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image

from ..models import resnet8
from .benchmark import Benchmark
from .download import Archive, DatasetError, ensure, file_digest
from .tensors import TensorData, random_affine

ARCHIVE = Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                  "cifar-10-batches-py")
IMAGE_FOLDER = "cifar10-jpeg"  # an image-folder copy under the data root (or the data root itself)
IMAGE_ARCHIVE = "cifar10-jpeg.tar.gz"  # the JPEG re-encoding of all 60,000 images, in class folders
IMAGE_ARCHIVE_MD5 = "98d793a5d3939f5abc83acba78177aa7"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLIT_SEED = 14  # fixed: every run, method and seed sees the same split
VAL_FRACTION = 0.2


def augment(x: Tensor) -> Tensor:
    """The paper's training augmentation: RandomRotation(15), RandomAffine(translate 0.1), RandomHorizontalFlip."""
    return random_affine(x, degrees=15.0, translate=0.1, flip=0.5)


def split_indices(n: int = 50_000, val: int = 10_000, seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    """Train and val indices of n samples, `val` of them in val: the partition random_split(range(n), [n - val, val])
    makes with a generator seeded `seed`, so it does not depend on the global RNG."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return order[:n - val], order[n - val:]


Split = tuple[Tensor, Tensor]  # uint8 images (N, 3, 32, 32) and int64 labels


def read_official(root: Path) -> tuple[Split, Split]:
    """The extracted official archive under `root`, read by torchvision, which checks every batch file's MD5."""
    halves = []
    for train in (True, False):
        try:
            data = torchvision.datasets.CIFAR10(root, train=train, download=False)
        except RuntimeError:
            raise DatasetError(f"{root / ARCHIVE.folder} is incomplete or corrupted (a batch file has the wrong MD5); "
                               f"delete it and run again to extract it afresh") from None
        halves.append((torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(data.targets)))
    return halves[0], halves[1]


def _decode(data: bytes, name: str) -> Tensor:
    try:
        image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError:
        raise DatasetError(f"{name} is not a readable PNG or JPEG image; replace or delete it") from None
    if tuple(image.shape[1:]) != (32, 32):
        raise DatasetError(f"{name} is {image.shape[2]}x{image.shape[1]} pixels; CIFAR-10 images are 32x32")
    return image


def _folder_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.glob("*/*/*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path.read_bytes()


def _archive_files(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile():
                    yield member.name.split("/", 1)[-1], tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DatasetError(f"{path.name} is corrupted ({' '.join(str(err).split())}); replace it") from None


def read_images(files: Iterator[tuple[str, bytes]], where: str) -> tuple[Split, Split]:
    """Train and test splits from (path, bytes) pairs laid out as <split>/<class>/<image>, ordered by class then
    file name; a missing or unknown class, an unreadable image or one of the wrong size is a one-line error."""
    found: dict[str, dict[str, list[tuple[str, Tensor]]]] = {"train": {}, "test": {}}
    for name, data in files:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in found or parts[2].startswith(".") \
                or not parts[2].lower().endswith(IMAGE_SUFFIXES):
            continue
        split, label, file = parts
        if label not in CLASSES:
            raise DatasetError(f"{where}/{split}/{label} is not a CIFAR-10 class; allowed: {', '.join(CLASSES)}")
        found[split].setdefault(label, []).append((file, _decode(data, f"{where}/{name}")))
    halves = []
    for split, classes in found.items():
        missing = [c for c in CLASSES if c not in classes]
        if missing:
            raise DatasetError(f"{where}/{split} has no images of class {', '.join(missing)}; an image-folder copy "
                               f"holds train/<class>/ and test/<class>/ for each of {', '.join(CLASSES)}")
        images, labels = [], []
        for label, name in enumerate(CLASSES):
            for _, image in sorted(classes[name], key=lambda item: item[0]):
                images.append(image)
                labels.append(label)
        halves.append((torch.stack(images), torch.tensor(labels)))
    return halves[0], halves[1]


def _is_image_folder(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def find(root: Path, download: bool) -> tuple[str, Path]:
    """Which copy to read, in order: the official archive (extracted or not), an image folder (root/cifar10-jpeg
    or root itself), the JPEG archive; else the official archive is downloaded when allowed."""
    if (root / ARCHIVE.folder).is_dir() or (root / ARCHIVE.filename).exists():
        return "official", root
    for folder in (root / IMAGE_FOLDER, root):
        if _is_image_folder(folder):
            return "folder", folder
    if (root / IMAGE_ARCHIVE).exists():
        return "archive", root / IMAGE_ARCHIVE
    if download:
        return "official", root
    raise DatasetError(f"no CIFAR-10 in {root} and downloads are off; put there {ARCHIVE.filename} ({ARCHIVE.url}), "
                       f"an image folder {IMAGE_FOLDER}/ with train/<class>/ and test/<class>/, or {IMAGE_ARCHIVE}")


def identity(root: str | Path) -> str:
    """Which copy `read` would take, named without reading it, so runs on different copies never share a record:
    the official archive, the JPEG archive (its checksum is verified when read), or an image folder named by the
    digest of its file names and sizes."""
    kind, path = find(Path(root), True)
    if kind == "official":
        return f"official {ARCHIVE.filename}"
    if kind == "archive":
        return f"{IMAGE_ARCHIVE} md5 {IMAGE_ARCHIVE_MD5}"
    listing = hashlib.sha256()
    for file in sorted(path.glob("*/*/*")):
        if file.is_file() and file.parts[-3] in ("train", "test"):
            listing.update(f"{file.relative_to(path).as_posix()} {file.stat().st_size}\n".encode())
    return f"image folder {path.name}/ files {listing.hexdigest()[:16]}"


def read(root: str | Path, download: bool) -> tuple[Split, Split, str]:
    """Train and test splits of the copy `find` picks, and a one-line description of where they came from."""
    kind, path = find(Path(root), download)
    if kind == "official":
        folder = ensure(ARCHIVE, path, download)
        return (*read_official(folder.parent), f"official archive {ARCHIVE.filename}")
    if kind == "folder":
        return (*read_images(_folder_files(path), path.name), f"image folder {path.name}/ (PNG/JPEG files)")
    if file_digest(path) != IMAGE_ARCHIVE_MD5:
        raise DatasetError(f"{path} has the wrong checksum (expected md5 {IMAGE_ARCHIVE_MD5}); replace it with the "
                           f"original {IMAGE_ARCHIVE}")
    return (*read_images(_archive_files(path), IMAGE_FOLDER), f"{IMAGE_ARCHIVE} (JPEG re-encoding, md5 "
                                                               f"{IMAGE_ARCHIVE_MD5})")


def load(root: str, download: bool) -> Benchmark:
    """CIFAR-10 from `root` (see `find`): augmented train, un-augmented val and test, ResNet-8."""
    (images, labels), (test_images, test_labels), source = read(root, download)
    train_indices, val_indices = (torch.tensor(i) for i in split_indices(len(labels), round(VAL_FRACTION *
                                                                                           len(labels))))
    train = TensorData(images[train_indices], labels[train_indices], augment)
    val = TensorData(images[val_indices], labels[val_indices])
    return Benchmark("cifar10", train, val, TensorData(test_images, test_labels), (3, 32, 32), 10, resnet8,
                     source=source)

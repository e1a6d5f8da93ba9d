import dataclasses
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch.utils.data import random_split

import joint.data
from joint.data import cifar10
from joint.data.download import DatasetError, file_digest
from joint.experiments import RunConfig, Store, run

PER_BATCH, TEST_IMAGES = 4, 6  # 5 training batches: 20 training images, 4 of them in val (20 %)
RNG = np.random.default_rng(0)


def batch(n: int, first_label: int) -> dict:
    """A batch pickle's content in CIFAR's format: uint8 rows of 3072 (R, G, B planes) and integer labels. The keys
    are str, as the real Python 2 pickles read with encoding="latin1" give them (Python 3 bytes keys would stay bytes).
    """
    return {"batch_label": "fake", "labels": [(first_label + i) % 10 for i in range(n)],
            "data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": ["x.png"] * n}


def write_archive(path: Path) -> None:
    """A cifar-10-python.tar.gz with the real layout (cifar-10-batches-py/...) holding few images."""
    files = {f"data_batch_{b}": batch(PER_BATCH, b) for b in range(1, 6)}
    files["test_batch"] = batch(TEST_IMAGES, 0)
    files["batches.meta"] = {"label_names": [f"class{c}" for c in range(10)], "num_vis": 3072}
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = pickle.dumps(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def patch_checksum(monkeypatch, file: Path) -> None:
    monkeypatch.setattr(cifar10, "ARCHIVE", dataclasses.replace(cifar10.ARCHIVE, checksum=file_digest(file)))


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A data root holding a fake archive, its checksum patched in, torchvision's per-batch MD5s bypassed."""
    write_archive(tmp_path / cifar10.ARCHIVE.filename)
    patch_checksum(monkeypatch, tmp_path / cifar10.ARCHIVE.filename)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    return tmp_path


def test_split_has_the_real_sizes_and_is_random_split_with_a_fixed_generator():
    train, val = cifar10.split_indices()
    assert (len(train), len(val)) == (40_000, 10_000)
    assert sorted(train + val) == list(range(50_000))
    reference = random_split(range(50_000), [40_000, 10_000], generator=torch.Generator().manual_seed(14))
    assert (train, val) == (list(reference[0].indices), list(reference[1].indices))
    torch.manual_seed(123)  # the global RNG plays no part
    assert cifar10.split_indices() == (train, val)


def test_load_splits_shapes_labels_and_transforms(root):
    a, b = joint.data.load("cifar10", str(root), download=False), cifar10.load(str(root), download=False)
    assert (len(a.train), len(a.val), len(a.test)) == (16, 4, TEST_IMAGES)
    assert not set(a.train.indices) & set(a.val.indices)
    assert (a.train.indices, a.val.indices) == (b.train.indices, b.val.indices)
    assert (a.name, a.input_shape, a.num_classes) == ("cifar10", (3, 32, 32), 10)
    assert a.val.dataset is a.train.dataset  # one copy of the images
    for split in (a.train, a.val, a.test):
        x, y = split[0]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        assert isinstance(y, int) and 0 <= y < 10
    index = a.val.indices[0]
    raw = torch.from_numpy(a.train.dataset.data[index]).permute(2, 0, 1) / 255
    assert torch.allclose(a.val[0][0], raw)  # val: ToTensor only, pixels untouched
    assert a.val[0][1] == a.train.dataset.targets[index] == index % PER_BATCH + index // PER_BATCH + 1
    assert [a.test[i][1] for i in range(TEST_IMAGES)] == list(range(TEST_IMAGES))
    torch.manual_seed(0)
    assert not torch.equal(a.train[0][0], a.train[0][0])  # augmented afresh at every read
    assert torch.equal(a.test[0][0], a.test[0][0]) and torch.equal(a.val[0][0], a.val[0][0])
    assert a.model()(torch.stack([a.test[i][0] for i in range(2)])).shape == (2, 10)


def test_batches_failing_torchvisions_md5_give_a_dataset_error(tmp_path, monkeypatch):
    write_archive(tmp_path / cifar10.ARCHIVE.filename)
    patch_checksum(monkeypatch, tmp_path / cifar10.ARCHIVE.filename)
    with pytest.raises(DatasetError, match="incomplete or corrupted") as err:
        cifar10.load(str(tmp_path), download=False)
    assert "\n" not in str(err.value) and str(tmp_path / "cifar-10-batches-py") in str(err.value)


def test_a_cpu_profile_run_trains_end_to_end_on_the_loader(root, tmp_path):
    store = Store(results=tmp_path / "results", cache=tmp_path / "cache", data_root=root, download=False,
                  progress=False, device="cpu")
    record = run(RunConfig("cifar10", "joint", 1.0, "mpic", profile="cpu"), store)
    assert record["config"]["act_bits"] == [2, 4, 8] and record["phases"]["search"]["epochs"] >= 5
    assert 0 <= record["metrics"]["test_accuracy"] <= 1 and record["metrics"]["mpic_cycles"] > 0
    assert record["profile_settings"]["batch_size"] == 32

import dataclasses
import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import random_split

import joint.data
from joint import experiments, quant
from joint.config import RunConfig
from joint.data import cifar10
from joint.data.download import DatasetError, file_digest
from joint.experiments import run
from joint.store import Store, load_model

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
    assert torch.equal(a.train.labels, b.train.labels) and torch.equal(a.val.inputs, b.val.inputs)
    assert (a.name, a.input_shape, a.num_classes) == ("cifar10", (3, 32, 32), 10)
    assert a.source == "official archive cifar-10-python.tar.gz"
    official = torchvision.datasets.CIFAR10(root, train=True, download=False)
    train_indices, val_indices = cifar10.split_indices(20, 4)
    for i, index in enumerate(val_indices):  # val: the official images at the split's indices, pixels untouched
        assert torch.equal(a.val.inputs[i], torch.from_numpy(official.data[index]).permute(2, 0, 1))
        assert a.val.labels[i] == official.targets[index] == index % PER_BATCH + index // PER_BATCH + 1
    assert [a.test[i][1] for i in range(TEST_IMAGES)] == list(range(TEST_IMAGES))
    for split in (a.train, a.val, a.test):
        x, y = split[0]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        assert isinstance(y, int) and 0 <= y < 10
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
    assert record["profile_settings"]["batch_size"] == 64 and record["profile_settings"]["channels_last"]
    config = RunConfig("cifar10", "joint", 1.0, "mpic", profile="cpu")
    assert record["key"] == store.key(config) != config.key()  # the data copy is part of the run's name
    assert record["data_identity"] == "official cifar-10-python.tar.gz"
    assert record["environment"] == {"cpu": experiments.cpu_model(), "threads": torch.get_num_threads(),
                                     "device": "cpu", "compiled_quantizer": quant.compiled()}
    assert load_model(record, store).training is False  # found by the key it was recorded under


def test_each_copy_of_the_data_names_its_own_runs_and_warm_up(root, tmp_path, monkeypatch):
    write_image_folder(tmp_path / "folder" / "cifar10-jpeg")
    write_image_folder(tmp_path / "other" / "cifar10-jpeg", per_class=(2, 1))
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / cifar10.IMAGE_ARCHIVE).write_bytes(b"not read to name it")
    stores = [Store(results=tmp_path / "results", cache=tmp_path / "cache", data_root=where, download=False)
              for where in (root, tmp_path / "folder", tmp_path / "other", tmp_path / "archive")]
    config = RunConfig("cifar10", "w8a8", profile="cpu")
    assert len({s.data_identity("cifar10") for s in stores}) == 4
    assert len({s.record_path(config) for s in stores}) == 4 and len({s.model_path(config) for s in stores}) == 4
    assert len({s.warmup_path("cifar10", "cpu", 0) for s in stores}) == 4
    assert stores[1].data_identity("cifar10") == Store(data_root=tmp_path / "folder").data_identity("cifar10")
    digits = RunConfig("digits", "w8a8", profile="smoke")
    assert stores[0].key(digits) == digits.key()  # one copy only: the key is the config's


def write_image_folder(folder: Path, per_class=(3, 1), suffix=".png", size=32) -> None:
    """A CIFAR-10 image-folder copy: train/<class>/ and test/<class>/ with small random images in `suffix` format."""
    rng = np.random.default_rng(1)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(cifar10.CLASSES):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                pixels[0, 0] = label  # the class, readable back from the image (exact in PNG)
                Image.fromarray(pixels).save(folder / split / name / f"{i:04d}{suffix}")


def test_an_image_folder_copy_gives_the_same_split_rule_labels_and_pixels(tmp_path):
    write_image_folder(tmp_path / "cifar10-jpeg")
    bench = cifar10.load(str(tmp_path), download=False)
    assert (len(bench.train), len(bench.val), len(bench.test)) == (24, 6, 10)
    assert bench.source == "image folder cifar10-jpeg/ (PNG/JPEG files)"
    labels = torch.arange(10).repeat_interleave(3)  # by class, then file name
    train_indices, val_indices = cifar10.split_indices(30, 6)
    assert torch.equal(bench.train.labels, labels[train_indices]) and torch.equal(bench.val.labels, labels[val_indices])
    assert torch.equal(bench.val.inputs[:, 0, 0, 0], bench.val.labels.to(torch.uint8))  # pixels as saved
    assert torch.equal(bench.test.labels, torch.arange(10)) and bench.train.augment is cifar10.augment
    assert bench.val.augment is None and bench.test.augment is None
    alone = cifar10.load(str(tmp_path / "cifar10-jpeg"), download=False)  # the data root may be the copy itself
    assert torch.equal(alone.train.inputs, bench.train.inputs)


def test_jpeg_files_and_the_archive_read_in_place_with_its_checksum_verified(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "src" / "cifar10-jpeg", suffix=".jpg")
    folder = cifar10.load(str(tmp_path / "src"), download=False)
    archive = tmp_path / "data" / cifar10.IMAGE_ARCHIVE
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar10-jpeg", arcname="cifar10-jpeg")
    with pytest.raises(DatasetError, match="has the wrong checksum .*md5 98d793a5d3939f5abc83acba78177aa7"):
        cifar10.load(str(archive.parent), download=False)
    monkeypatch.setattr(cifar10, "IMAGE_ARCHIVE_MD5", file_digest(archive))
    archive.parent.chmod(0o555)  # read in place: nothing is extracted or written beside it
    try:
        from_archive = cifar10.load(str(archive.parent), download=False)
    finally:
        archive.parent.chmod(0o755)
    assert sorted(p.name for p in archive.parent.iterdir()) == [cifar10.IMAGE_ARCHIVE]
    assert from_archive.source.startswith("cifar10-jpeg.tar.gz (JPEG re-encoding, md5 ")
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(from_archive, split).inputs, getattr(folder, split).inputs)
        assert torch.equal(getattr(from_archive, split).labels, getattr(folder, split).labels)


@pytest.mark.parametrize("damage,message", [
    (lambda f: shutil.rmtree(f / "train" / "cat"), r"cifar10-jpeg/train has no images of class cat; an image-folder"),
    (lambda f: (f / "test" / "dog" / "0000.png").write_bytes(b"broken"),
     r"cifar10-jpeg/test/dog/0000.png is not a readable PNG or JPEG image"),
    (lambda f: Image.new("RGB", (28, 30)).save(f / "train" / "ship" / "0001.png"),
     r"cifar10-jpeg/train/ship/0001.png is 28x30 pixels; CIFAR-10 images are 32x32"),
    (lambda f: (f / "train" / "cow").mkdir(), None),  # an empty extra folder holds no image: ignored
    (lambda f: write_image_folder(f / "extra", (1, 0)), None),  # not train/ or test/: ignored
])
def test_a_damaged_image_folder_is_one_line_naming_what_is_wrong(tmp_path, damage, message):
    folder = tmp_path / "cifar10-jpeg"
    write_image_folder(folder)
    damage(folder)
    if message is None:
        assert len(cifar10.load(str(tmp_path), download=False).train) == 24
        return
    with pytest.raises(DatasetError, match=message) as err:
        cifar10.load(str(tmp_path), download=False)
    assert "\n" not in str(err.value)


def test_an_image_of_an_unknown_class_is_one_line(tmp_path):
    folder = tmp_path / "cifar10-jpeg"
    write_image_folder(folder)
    (folder / "train" / "cow").mkdir()
    Image.new("RGB", (32, 32)).save(folder / "train" / "cow" / "0000.png")
    with pytest.raises(DatasetError, match="cifar10-jpeg/train/cow is not a CIFAR-10 class; allowed: airplane, "):
        cifar10.load(str(tmp_path), download=False)


def test_the_official_archive_comes_first_and_nothing_found_lists_every_layout(root, tmp_path):
    write_image_folder(root / "cifar10-jpeg")
    assert cifar10.find(root, download=False) == ("official", root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"no CIFAR-10 in .*empty and downloads are off; put there "
                                           r"cifar-10-python.tar.gz \(https://.*\), an image folder cifar10-jpeg/ "
                                           r"with train/<class>/ and test/<class>/, or cifar10-jpeg.tar.gz"):
        cifar10.find(empty, download=False)
    assert cifar10.find(empty, download=True) == ("official", empty)

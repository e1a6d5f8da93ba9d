import dataclasses
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import joint.data
from joint.data import tiny_imagenet as tin
from joint.data.download import DatasetError, file_digest

WNIDS = ["n02", "n01", "n03"]  # listed unsorted: labels follow the sorted order n01, n02, n03
PER_CLASS = 10  # 30 training images, 3 of them in val (10 %)
GREY = "train/n01/images/n01_3.JPEG"
# official val image -> wnid, as val_annotations.txt gives them
VAL = {"val_0.JPEG": "n03", "val_1.JPEG": "n01", "val_2.JPEG": "n02", "val_3.JPEG": "n01", "val_4.JPEG": "n03"}
RNG = np.random.default_rng(0)


def write_jpeg(path: Path, grey: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (64, 64) if grey else (64, 64, 3)
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(path, "JPEG")


def write_archive(path: Path, content: Path) -> None:
    """A tiny-imagenet-200.zip with the real layout: wnids.txt, train/<wnid>/images, val/images and annotations."""
    top = content / "tiny-imagenet-200"
    (top / "val").mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    for wnid in WNIDS:
        (top / "train" / wnid / f"{wnid}_boxes.txt").parent.mkdir(parents=True)
        (top / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(PER_CLASS):
            name = f"train/{wnid}/images/{wnid}_{i}.JPEG"
            write_jpeg(top / name, grey=name == GREY)
    for name in VAL:
        write_jpeg(top / "val" / "images" / name)
    (top / "val" / "val_annotations.txt").write_text("".join(f"{n}\t{w}\t0\t0\t63\t63\n" for n, w in VAL.items()))
    with zipfile.ZipFile(path, "w") as z:
        for file in sorted(top.rglob("*")):
            z.write(file, file.relative_to(content).as_posix())


def patch_checksum(monkeypatch, file: Path) -> None:
    monkeypatch.setattr(tin, "ARCHIVE", dataclasses.replace(tin.ARCHIVE, checksum=file_digest(file)))


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A data root holding a fake archive, its checksum patched in."""
    data = tmp_path / "data"
    data.mkdir()
    write_archive(data / tin.ARCHIVE.filename, tmp_path / "src")
    patch_checksum(monkeypatch, data / tin.ARCHIVE.filename)
    return data


def test_split_has_the_real_sizes_and_a_fixed_seed():
    train, val = tin.split_indices()
    assert (len(train), len(val)) == (90_000, 10_000)
    assert sorted(train + val) == list(range(100_000))
    torch.manual_seed(123)
    assert tin.split_indices() == (train, val)


def test_load_labels_splits_shapes_and_transforms(root):
    a, b = joint.data.load("tiny_imagenet", str(root), download=False), tin.load(str(root), download=False)
    assert (len(a.train), len(a.val), len(a.test)) == (27, 3, len(VAL))
    assert (a.name, a.input_shape, a.num_classes) == ("tiny_imagenet", (3, 64, 64), 200)
    assert not {p for p, _ in a.train.samples} & {p for p, _ in a.val.samples}
    assert (a.train.samples, a.val.samples) == (b.train.samples, b.val.samples)
    for path, label in a.train.samples + a.val.samples:
        assert path.parent.parent.name == sorted(WNIDS)[label]
    assert [(p.name, label) for p, label in a.test.samples] == [(n, sorted(WNIDS).index(w)) for n, w in VAL.items()]
    grey = [s for s in a.train.samples + a.val.samples if s[0].as_posix().endswith(GREY)]
    x, _ = tin.Images(grey, tin.TEST_64)[0]
    assert x.shape == (3, 64, 64) and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey made RGB
    for split in (a.train, a.val, a.test):
        x, y = split[0]
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    torch.manual_seed(0)
    plain = tin.Images(a.train.samples, tin.TEST_64)[0][0]
    reads = [a.train[0][0] for _ in range(8)]
    assert {torch.equal(x, plain) for x in reads} == {True, False}  # flipped at random
    assert all(torch.equal(x, plain) or torch.equal(x, plain.flip(-1)) for x in reads)
    assert torch.equal(a.test[0][0], a.test[0][0]) and torch.equal(a.val[0][0], a.val[0][0])
    train224, val224 = tin.views_224(a)
    assert (train224.samples, val224.samples) == (a.train.samples, a.val.samples)
    assert train224[0][0].shape == val224[0][0].shape == (3, 224, 224)


def test_annotations_naming_an_unknown_wnid_are_an_error(root):
    folder = tin.load(str(root), download=False).test.samples[0][0].parents[2]
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\t0\t0\t63\t63\n")
    with pytest.raises(DatasetError, match="n99"):
        tin.load(str(root), download=False)


def test_missing_weights_name_the_url_and_the_hub_folder(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(DatasetError) as err:
        tin.imagenet_pretrained()
    message = str(err.value)
    assert "\n" not in message and tin.ResNet18_Weights.IMAGENET1K_V1.url in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_reduced_stem_copies_everything_but_the_stem_conv_and_the_fc():
    model224 = tin.imagenet_pretrained(weights=None)
    assert (model224.fc.in_features, model224.fc.out_features) == (512, 200)
    assert model224.conv1.kernel_size == (7, 7)
    with torch.no_grad():
        for tensor in model224.state_dict().values():
            tensor.copy_(torch.randint_like(tensor, 1, 100))  # buffers too, so that none matches by chance
    model = tin.to_reduced_stem(model224)
    source, copied = model224.state_dict(), model.state_dict()
    assert source.keys() == copied.keys()
    fresh = [name for name in copied if not torch.equal(copied[name], source[name])]
    assert fresh == ["conv1.weight", "fc.weight", "fc.bias"]
    assert model.conv1.kernel_size == (3, 3) and model.fc.out_features == 200
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 200)

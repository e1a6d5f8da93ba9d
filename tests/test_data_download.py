import dataclasses
import io
import tarfile

import pytest

from joint.data import cifar10, tiny_imagenet
from joint.data.download import Archive, DatasetError, ensure, file_digest

LOADERS = [(cifar10, "."), (tiny_imagenet, "tiny-imagenet-200")]  # the folder the message names


@pytest.mark.parametrize("module,folder", LOADERS)
def test_missing_dataset_with_downloads_off_is_one_line_naming_the_url_and_folder(tmp_path, module, folder):
    with pytest.raises(DatasetError) as err:
        module.load(str(tmp_path), download=False)
    message = str(err.value)
    assert "\n" not in message and module.ARCHIVE.url in message and str(tmp_path / folder) in message


@pytest.mark.parametrize("module,folder", LOADERS)
def test_corrupted_archive_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, module, folder):
    archive = tmp_path / module.ARCHIVE.filename
    archive.write_bytes(b"not an archive at all" * 50)
    checksum = file_digest(archive, module.ARCHIVE.algorithm)
    monkeypatch.setattr(module, "ARCHIVE", dataclasses.replace(module.ARCHIVE, checksum=checksum))
    with pytest.raises(DatasetError, match="is corrupted") as err:
        module.load(str(tmp_path), download=False)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == [archive]


def test_an_archive_with_the_wrong_checksum_is_refused_before_extraction(tmp_path):
    archive = tmp_path / cifar10.ARCHIVE.filename
    archive.write_bytes(b"something else")
    with pytest.raises(DatasetError, match="has the wrong checksum .*delete it and run again"):
        cifar10.load(str(tmp_path), download=True)
    assert list(tmp_path.iterdir()) == [archive]


def make_tar(path, top: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))


def test_download_verifies_the_checksum_then_extracts_all_or_nothing(tmp_path):
    source = tmp_path / "src" / "thing.tar.gz"
    source.parent.mkdir()
    make_tar(source, "thing")
    archive = Archive(source.as_uri(), file_digest(source), "thing")
    root = tmp_path / "data"
    folder = ensure(archive, root, download=True)
    assert folder == root / "thing" and (folder / "hello.txt").read_text() == "hello"
    assert sorted(p.name for p in root.iterdir()) == ["thing", "thing.tar.gz"]  # no partial or staging left
    bad = dataclasses.replace(archive, checksum="0" * 32, folder="other")
    (root / "thing.tar.gz").unlink()
    with pytest.raises(DatasetError, match="has the wrong checksum .* it was deleted, try again"):
        ensure(bad, root, download=True)
    assert sorted(p.name for p in root.iterdir()) == ["thing"]

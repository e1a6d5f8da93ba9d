"""Fetching dataset archives: checksum-verified downloads and extraction that never leaves a half-made folder."""
from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


class DatasetError(ValueError):
    """A dataset that is missing, corrupted or cannot be fetched: the message says what to do, in one line."""


@dataclass(frozen=True)
class Archive:
    """One file of a dataset: where it comes from, its checksum, and the folder its extraction must produce."""

    url: str
    checksum: str
    folder: str  # relative to the dataset root; its presence means "extracted and complete"
    algorithm: str = "md5"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def file_digest(path: Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fetch(archive: Archive, target: Path) -> None:
    """Download to a temporary name, check the MD5, then rename: a killed download leaves no file that looks done."""
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(archive.url) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"could not download {archive.url} ({' '.join(str(err).split())}); download it by hand into "
                           f"{target.parent}") from None
    if file_digest(partial, archive.algorithm) != archive.checksum:
        partial.unlink()
        raise DatasetError(f"the download of {archive.url} has the wrong checksum (expected {archive.algorithm} "
                           f"{archive.checksum}); it was deleted, try again")
    partial.replace(target)


def _extract(path: Path, into: Path) -> None:
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                z.extractall(into)
        else:
            with tarfile.open(path) as t:
                t.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        reason = " ".join(str(err).split())
        raise DatasetError(f"{path} is corrupted ({reason}); delete it and run again to download it afresh") from None


def ensure(archive: Archive, root: str | Path, download: bool, strip: str | None = None) -> Path:
    """The extracted folder root/archive.folder: present already, or extracted from root/<archive file> (downloaded
    first when allowed). Extraction goes to a temporary folder renamed at the end, so a killed run leaves nothing
    half-extracted. `strip`: the archive's top folder whose content becomes archive.folder (None: the archive's
    top folder is archive.folder itself)."""
    root = Path(root)
    folder = root / archive.folder
    if folder.is_dir():
        return folder
    file = root / archive.filename
    if not file.exists():
        if not download:
            raise DatasetError(f"{folder} is missing and downloads are off; download {archive.url} into {root} "
                               f"(or allow downloads)")
        root.mkdir(parents=True, exist_ok=True)
        _fetch(archive, file)
    elif file_digest(file, archive.algorithm) != archive.checksum:
        raise DatasetError(f"{file} has the wrong checksum (expected {archive.algorithm} {archive.checksum}); delete "
                           f"it and run again to download it afresh")
    staging = root / f".{archive.folder.replace('/', '_')}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _extract(file, staging)
        source = staging / (strip if strip is not None else Path(archive.folder).name)
        if not source.is_dir():
            raise DatasetError(f"{file} does not contain the folder {source.name}; delete it and download it afresh")
        folder.parent.mkdir(parents=True, exist_ok=True)
        source.replace(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder

"""Google Speech Commands v2, 12 classes (10 keywords, silence, unknown), as 1x49x10 MFCCs for the DS-CNN."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

from ..models import dscnn
from .benchmark import Benchmark
from .download import Archive, DatasetError, ensure
from .tensors import TensorData

WORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
CLASSES = (*WORDS, "_silence_", "_unknown_")
SILENCE, UNKNOWN = 10, 11
SAMPLE_RATE = 16000
CLIP = SAMPLE_RATE  # every clip is 1 s
HOP = SAMPLE_RATE // 2  # silence windows: 1 s every 0.5 s
NOISE_FOLDER = "_background_noise_"
TRAIN_NOISE = ("dude_miaowing", "white_noise", "exercise_bike", "doing_the_dishes", "pink_noise")
VAL_NOISE = ("running_tap",)
MFCC_SETTINGS = dict(sample_rate=SAMPLE_RATE, n_mfcc=10, dct_type=2, norm="ortho", log_mels=True,
                     melkwargs=dict(n_fft=512, win_length=480, hop_length=320, f_min=20, f_max=4000, n_mels=40,
                                    center=False, norm=None))
CHUNK = 2000  # clips decoded and transformed at a time: the 85k training waveforms would take 5.4 GB at once

TRAIN_ARCHIVE = Archive("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                        "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
                        "SpeechCommands/speech_commands_v0.02", algorithm="sha256")
TEST_ARCHIVE = Archive("http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz",
                       "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df",
                       "SpeechCommands/speech_commands_test_set_v0.02", algorithm="sha256")


def label_of(folder: str) -> int:
    """The class index of a clip from its folder name: a keyword, _silence_, or anything else as _unknown_."""
    if folder in WORDS:
        return WORDS.index(folder)
    return SILENCE if folder == "_silence_" else UNKNOWN


def window_starts(num_samples: int) -> list[int]:
    """Starts of the 1 s silence windows (0.5 s hop) cut from a noise file; as in TFDS and MLPerf Tiny, a window
    must end before the file does, which gives the protocol's 668 training windows."""
    return list(range(0, num_samples - CLIP, HOP))


def class_weights(labels: torch.Tensor, num_classes: int = len(CLASSES)) -> torch.Tensor:
    """weight_c = N / count_c over the training labels (0 for a class without clips, which no target can hit)."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    return torch.where(counts > 0, len(labels) / counts.clamp(min=1), 0.0)


def fit_length(wave: np.ndarray, length: int = CLIP) -> np.ndarray:
    """The waveform right-zero-padded or cut to `length` samples."""
    return np.pad(wave[:length], (0, max(0, length - len(wave))))


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz int16 mono WAV as float32 in [-1, 1) (int16 / 2^15), decoded with soundfile."""
    samples, rate = soundfile.read(path, dtype="int16")
    if rate != SAMPLE_RATE or samples.ndim != 1:
        raise DatasetError(f"{path} is not 16 kHz mono; delete the dataset folder and extract it afresh")
    return samples.astype(np.float32) / 2 ** 15


def read_list(path: Path) -> set[str]:
    """The clip paths ("word/file.wav") listed in validation_list.txt or testing_list.txt."""
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def clip_files(folder: Path) -> list[str]:
    """Every clip "word/file.wav" of an extracted archive, sorted, background-noise recordings excluded."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*.wav") if p.parent.name != NOISE_FOLDER)


def split_files(folder: Path) -> tuple[list[str], list[str]]:
    """The train and val clips of the train/val archive: val is validation_list.txt, train every clip in neither
    list (testing_list.txt clips belong to the separate test archive)."""
    val, test = read_list(folder / "validation_list.txt"), read_list(folder / "testing_list.txt")
    clips = clip_files(folder)
    return [c for c in clips if c not in val and c not in test], [c for c in clips if c in val]


def mfcc(waves: torch.Tensor) -> torch.Tensor:
    """The n x 1 x 49 x 10 (time x coefficients) MFCC inputs of n 1-s waveforms."""
    transform = torchaudio.transforms.MFCC(**MFCC_SETTINGS)
    return transform(waves).transpose(1, 2).unsqueeze(1).contiguous()


def clip_features(folder: Path, clips: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """MFCCs and labels of the clips "word/file.wav" under `folder`, computed in chunks to bound memory."""
    chunks = []
    for i in range(0, len(clips), CHUNK):
        waves = np.stack([fit_length(read_wav(folder / c)) for c in clips[i:i + CHUNK]])
        chunks.append(mfcc(torch.from_numpy(waves)))
    labels = torch.tensor([label_of(c.split("/")[0]) for c in clips], dtype=torch.int64)
    return torch.cat(chunks) if chunks else torch.empty(0, 1, 49, 10), labels


def silence_features(noise_folder: Path, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """MFCCs and (silence) labels of the 1 s windows cut from the named background-noise recordings."""
    windows = []
    for name in names:
        noise = read_wav(noise_folder / f"{name}.wav")
        windows += [noise[s:s + CLIP] for s in window_starts(len(noise))]
    x = mfcc(torch.from_numpy(np.stack(windows))) if windows else torch.empty(0, 1, 49, 10)
    return x, torch.full((len(windows),), SILENCE, dtype=torch.int64)


def settings_hash() -> str:
    """A short digest of everything the cached features depend on, so changed settings never reuse a stale cache."""
    settings = (MFCC_SETTINGS, CLIP, HOP, TRAIN_NOISE, VAL_NOISE, CLASSES, TRAIN_ARCHIVE, TEST_ARCHIVE)
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:12]


def build_split(split: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of `split` (train, val or test) computed from the extracted archives."""
    if split == "test":
        folder = ensure(TEST_ARCHIVE, root, download, strip="")
        return clip_features(folder, clip_files(folder))
    folder = ensure(TRAIN_ARCHIVE, root, download, strip="")
    train, val = split_files(folder)
    clips, noise = (train, TRAIN_NOISE) if split == "train" else (val, VAL_NOISE)
    (x, y), (xs, ys) = clip_features(folder, clips), silence_features(folder / NOISE_FOLDER, noise)
    return torch.cat([x, xs]), torch.cat([y, ys])


def cached_split(split: str, root: Path, download: bool) -> TensorData:
    """The split's features, read from root/SpeechCommands/mfcc-<split>-<settings hash>.pt, built and written
    atomically (temporary file, then rename) on first use: later loads decode no WAV."""
    cache = root / "SpeechCommands" / f"mfcc-{split}-{settings_hash()}.pt"
    if not cache.exists():
        x, y = build_split(split, root, download)
        partial = cache.with_name(cache.name + ".partial")
        torch.save({"x": x, "y": y}, partial)
        os.replace(partial, cache)
    data = torch.load(cache)
    return TensorData(data["x"], data["y"])


def load(root: str | Path = "data", download: bool = True) -> Benchmark:
    """Speech Commands v2: train/val from the main archive (plus silence windows), test from the test archive;
    inputs 1x49x10 MFCCs, class weights N/count_c of the train split for the weighted cross-entropy."""
    root = Path(root)
    train, val, test = (cached_split(split, root, download) for split in ("train", "val", "test"))
    return Benchmark("speech_commands", train, val, test, (1, 49, 10), len(CLASSES), dscnn,
                     class_weights=class_weights(train.labels),
                     source=f"{TRAIN_ARCHIVE.filename} and {TEST_ARCHIVE.filename} (official)")

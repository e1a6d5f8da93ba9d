import dataclasses
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import joint.data
from joint.config import RunConfig
from joint.data import speech_commands as sc
from joint.data.download import DatasetError, file_digest
from joint.experiments import run
from joint.store import Store

RNG = np.random.default_rng(0)
# clip name -> length in samples; the lists below put some in val and test, the rest is train
CLIPS = {"yes/a_nohash_0.wav": 16000, "yes/b_nohash_0.wav": 16000, "yes/c_nohash_0.wav": 16000,
         "yes/d_nohash_0.wav": 16000, "no/a_nohash_0.wav": 16000, "no/short_nohash_0.wav": 8000,
         "no/e_nohash_0.wav": 16000, "bed/a_nohash_0.wav": 16000, "bed/b_nohash_0.wav": 16000,
         "bed/long_nohash_0.wav": 20000}
VAL_LIST = ["yes/c_nohash_0.wav", "bed/b_nohash_0.wav"]
TEST_LIST = ["yes/d_nohash_0.wav", "no/e_nohash_0.wav"]
TRAIN = ["bed/a_nohash_0.wav", "bed/long_nohash_0.wav", "no/a_nohash_0.wav", "no/short_nohash_0.wav",
         "yes/a_nohash_0.wav", "yes/b_nohash_0.wav"]
# noise file -> (length in samples, number of 1 s windows with a 0.5 s hop that end before the file does)
NOISE = {"dude_miaowing": (36800, 3), "white_noise": (32000, 2), "exercise_bike": (15000, 0),
         "doing_the_dishes": (49600, 5), "pink_noise": (16000, 0), "running_tap": (41600, 4)}
TEST_CLIPS = ["yes/t1_nohash_0.wav", "yes/t2_nohash_0.wav", "_silence_/s1.wav", "_unknown_/u1_nohash_0.wav",
              "_unknown_/u2_nohash_0.wav", "marvin/m1_nohash_0.wav"]


def write_wav(path: Path, samples: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, RNG.integers(-2 ** 15, 2 ** 15, samples, dtype=np.int16), 16000, subtype="PCM_16")


def make_archive(path: Path, content: Path) -> None:
    """A tar.gz holding the content of `content` with no top folder, as the real archives."""
    with tarfile.open(path, "w:gz") as tar:
        for entry in sorted(content.iterdir()):
            tar.add(entry, arcname=entry.name)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A data root holding fake Speech Commands archives in the real format, their checksums patched in."""
    main, test = tmp_path / "src" / "main", tmp_path / "src" / "test"
    for name, samples in CLIPS.items():
        write_wav(main / name, samples)
    for name, (samples, _) in NOISE.items():
        write_wav(main / "_background_noise_" / f"{name}.wav", samples)
    (main / "validation_list.txt").write_text("\n".join(VAL_LIST) + "\n")
    (main / "testing_list.txt").write_text("\n".join(TEST_LIST) + "\n")
    (main / "README.md").write_text("fake")
    for name in TEST_CLIPS:
        write_wav(test / name, 16000)
    data = tmp_path / "data"
    data.mkdir()
    for archive, content in ((sc.TRAIN_ARCHIVE, main), (sc.TEST_ARCHIVE, test)):
        make_archive(data / archive.filename, content)
    patch_checksums(monkeypatch, data)
    return data


def patch_checksums(monkeypatch, data: Path) -> None:
    for attribute in ("TRAIN_ARCHIVE", "TEST_ARCHIVE"):
        archive = getattr(sc, attribute)
        if (data / archive.filename).exists():
            digest = file_digest(data / archive.filename, "sha256")
            monkeypatch.setattr(sc, attribute, dataclasses.replace(archive, checksum=digest))


def test_labels_windows_weights_and_padding_are_pure_rules():
    words = ("down", "yes", "_silence_", "_unknown_", "bed", "marvin")
    assert [sc.label_of(w) for w in words] == [0, 9, 10, 11, 11, 11]
    assert sc.CLASSES[10:] == ("_silence_", "_unknown_")
    assert sc.window_starts(36800) == [0, 8000, 16000]
    assert sc.window_starts(32000) == [0, 8000]  # a window ending exactly at the end is left out (TFDS rule)
    assert sc.window_starts(16000) == [] and sc.window_starts(100) == []
    counts = torch.tensor([3134, 3106, 3037, 3130, 2970, 3086, 3019, 3111, 2948, 3228, 668, 54074])
    weights = sc.class_weights(torch.repeat_interleave(torch.arange(12), counts))
    assert weights.dtype == torch.float32 and weights.shape == (12,)
    assert weights[11] == pytest.approx(1.58, abs=0.01) and weights[10] == pytest.approx(128.0, abs=0.1)
    assert ((weights[:10] > 26) & (weights[:10] < 29.1)).all()
    assert sc.class_weights(torch.tensor([0, 0, 1, 11]))[[0, 1, 2, 11]].tolist() == [2.0, 4.0, 0.0, 4.0]
    short = sc.fit_length(np.ones(10, np.float32))
    assert short.shape == (16000,) and short.dtype == np.float32 and short[:10].all() and not short[10:].any()
    assert sc.fit_length(np.ones(20000, np.float32)).shape == (16000,)


def test_fake_dataset_splits_labels_features_and_weights(root):
    bench = joint.data.load("speech_commands", str(root), download=False)
    folder = root / sc.TRAIN_ARCHIVE.folder
    assert folder.is_dir() and (root / sc.TEST_ARCHIVE.folder / "yes").is_dir()  # no top folder in the archives
    train, val = sc.split_files(folder)
    assert train == TRAIN and val == sorted(VAL_LIST)
    assert not set(TEST_LIST) & (set(train) | set(val))

    x, y = bench.train.inputs, bench.train.labels
    silence = sum(n for name, (_, n) in NOISE.items() if name in sc.TRAIN_NOISE)
    assert len(y) == len(TRAIN) + silence == 16
    assert y.tolist() == [11, 11, 3, 3, 9, 9] + [10] * silence
    assert bench.val.labels.tolist() == [11, 9] + [10] * NOISE["running_tap"][1]
    assert sorted(bench.test.labels.tolist()) == [9, 9, 10, 11, 11, 11]
    for split in (bench.train, bench.val, bench.test):
        assert split.inputs.shape[1:] == (1, 49, 10) and torch.isfinite(split.inputs).all()

    short = sc.read_wav(folder / "no/short_nohash_0.wav")
    assert len(short) == 8000 and np.abs(short).max() <= 1
    padded = np.concatenate([short, np.zeros(8000, np.float32)])
    assert torch.allclose(x[TRAIN.index("no/short_nohash_0.wav")], sc.mfcc(torch.from_numpy(padded[None]))[0])
    noise = sc.read_wav(folder / "_background_noise_/dude_miaowing.wav")
    assert torch.allclose(x[len(TRAIN) + 1], sc.mfcc(torch.from_numpy(noise[None, 8000:24000]))[0])

    assert bench.class_weights.dtype == torch.float32
    expected = torch.zeros(12)
    expected[[3, 9, 10, 11]] = torch.tensor([16 / 2, 16 / 2, 16 / 10, 16 / 2])  # N / count_c, 0 for absent classes
    assert torch.allclose(bench.class_weights, expected)
    assert (bench.name, bench.input_shape, bench.num_classes) == ("speech_commands", (1, 49, 10), 12)
    assert bench.model()(x[:2]).shape == (2, 12)


def test_features_are_cached_and_a_second_load_decodes_nothing(root, monkeypatch):
    first = sc.load(root, download=False)
    caches = sorted(p.name for p in (root / "SpeechCommands").iterdir() if p.is_file())
    assert len(caches) == 3 and all(n.startswith("mfcc-") and n.endswith(f"-{sc.settings_hash()}.pt") for n in caches)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached load decoded a WAV")

    monkeypatch.setattr(soundfile, "read", no_decoding)
    second = sc.load(root, download=False)
    for a, b in ((first.train, second.train), (first.val, second.val), (first.test, second.test)):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)


def load_corrupted(tmp_path: Path, monkeypatch) -> DatasetError:
    """The error of a load whose train archive is garbage bytes with the right checksum."""
    (tmp_path / sc.TRAIN_ARCHIVE.filename).write_bytes(b"not a tar archive" * 100)
    patch_checksums(monkeypatch, tmp_path)
    with pytest.raises(DatasetError, match="is corrupted") as err:
        sc.load(tmp_path, download=False)
    assert str(err.value).endswith("delete it and run again to download it afresh")
    return err.value


def test_corrupted_archive_leaves_no_folder(tmp_path, monkeypatch):
    load_corrupted(tmp_path, monkeypatch)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [sc.TRAIN_ARCHIVE.filename]


def test_corrupted_archive_error_is_one_line(tmp_path, monkeypatch):
    assert "\n" not in str(load_corrupted(tmp_path, monkeypatch))


def test_missing_dataset_without_downloads_names_url_and_folder(tmp_path):
    with pytest.raises(DatasetError) as err:
        joint.data.load("speech_commands", str(tmp_path), download=False)
    message = str(err.value)
    assert "\n" not in message and sc.TRAIN_ARCHIVE.url in message
    assert str(tmp_path / "SpeechCommands" / "speech_commands_v0.02") in message


def test_a_cpu_profile_run_trains_end_to_end_on_the_loader(root, tmp_path):
    store = Store(results=tmp_path / "results", cache=tmp_path / "cache", data_root=root, download=False,
                  progress=False, device="cpu")
    record = run(RunConfig("speech_commands", "w4a8", profile="cpu"), store)
    settings = record["profile_settings"]
    assert settings["batch_size"] == 100 and settings["finetune"]["selection"] == "loss"
    assert 0 <= record["metrics"]["test_accuracy"] <= 1 and record["metrics"]["size_kb"] == 22.016 / 2

"""The record and model store: where each run's JSON record, trained model, checkpoints, PIT seed and warm-up live,
written atomically and read back (a damaged record is a one-line error), and load_model to rebuild a recorded net."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import compact
from . import data as datasets
from . import methods, models
from .arch import Arch
from .config import RunConfig
from .pit import prunable
from .profiles import get_profile
from .quant import compile_mode, profile_compile
from .train import pick_device

ROOT = Path(__file__).resolve().parents[1]


def project_path(path: str | Path) -> Path:
    """`path` itself if absolute, else relative to the repository root (so notebooks find results from any cwd)."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


def _digest(text: str, length: int) -> str:
    """A short stable name for `text` (a config key with its data copy, or a data copy alone)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass
class Store:
    """Where records (results/<profile>/runs/<key>.json) and resumable checkpoints (a git-ignored cache) live."""

    results: Path = Path("results")
    cache: Path = Path(".cache")
    progress: bool = True
    data_root: Path = Path("data")
    device: str = "auto"  # "auto": CUDA when present, else the CPU
    download: bool = True
    _benchmarks: dict = field(default_factory=dict, repr=False)
    _identities: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.results, self.cache, self.data_root = Path(self.results), Path(self.cache), Path(self.data_root)

    def torch_device(self) -> torch.device:
        return pick_device(self.device)

    def data_identity(self, benchmark: str) -> str:
        """Which copy of `benchmark`'s data this store reads ("" where there is only one), named once."""
        if benchmark not in self._identities:
            self._identities[benchmark] = datasets.identity(benchmark, str(self.data_root))
        return self._identities[benchmark]

    def key(self, config: RunConfig) -> str:
        """The name of a run's record, model and checkpoints: its config's key, and the data copy it reads."""
        copy = self.data_identity(config.benchmark)
        return config.key() if not copy else _digest(f"{config.key()} {copy}", 16)

    def record_path(self, config: RunConfig) -> Path:
        return self.results / config.profile / "runs" / f"{self.key(config)}.json"

    def environment_tag(self, profile: str, benchmark: str) -> str:
        """What changes a model's last bits besides its settings and data: device, threads and the compile mode a
        run of `profile` trains in (cached training is reused only where all three agree)."""
        with profile_compile(get_profile(profile, benchmark).compile):
            mode = compile_mode()
        return f"{self.torch_device().type}-t{torch.get_num_threads()}-c{mode}"

    def checkpoint(self, config: RunConfig, phase: str) -> Path:
        tag = self.environment_tag(config.profile, config.benchmark)
        path = self.cache / config.profile / "checkpoints" / f"{self.key(config)}-{phase}-{tag}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def model_path(self, config: RunConfig | dict) -> Path:
        """Where the trained model of a run (a config, or a record, by the key it was written under) is kept, beside
        its record."""
        if isinstance(config, dict):
            return self.results / config["config"]["profile"] / "models" / f"{config['key']}.pt"
        return self.results / config.profile / "models" / f"{self.key(config)}.pt"

    def warmup_path(self, benchmark: str, profile: str, seed: int) -> Path:
        """Where the float warm-up of a benchmark, profile and seed is cached (named by its own settings, the data
        copy it read and the environment that trained it)."""
        fingerprint = get_profile(profile, benchmark).warmup_fingerprint()
        copy = self.data_identity(benchmark)
        if copy:
            fingerprint += "-" + _digest(copy, 8)
        tag = self.environment_tag(profile, benchmark)
        return self.cache / profile / "warmup" / f"{benchmark}-seed{seed}-{fingerprint}-{tag}.pt"

    def has_warmup(self, benchmark: str, profile: str, seed: int) -> bool:
        """Whether the float warm-up needs no training: its float run is recorded with its model, or it is cached."""
        recorded = RunConfig(benchmark, "float", profile=profile, seed=seed)
        return (self.record_path(recorded).exists() and self.model_path(recorded).exists()) or \
            self.warmup_path(benchmark, profile, seed).exists()

    def write_record(self, config: RunConfig, record: dict) -> None:
        """Write a run's record (atomically) and drop its resumable checkpoints, which it no longer needs."""
        write_json(self.record_path(config), record)
        for phase in ("search", "finetune", "pit_search", "pit_finetune"):
            self.checkpoint(config, phase).unlink(missing_ok=True)

    def read_record(self, config: RunConfig) -> dict | None:
        """The record of `config`, or None if it was not run; a damaged file is a one-line error."""
        return read_record_file(self.record_path(config))

    def benchmark(self, name: str) -> datasets.Benchmark:
        if name not in self._benchmarks:
            self._benchmarks[name] = datasets.load(name, str(self.data_root), self.download)
        return self._benchmarks[name]


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, None if there is no such file; a damaged file is a one-line error saying what to do
    (nothing is deleted or rewritten)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{shown(path)} is not valid JSON ({err.msg} at line {err.lineno}); restore it with "
                         f"'git checkout -- {shown(path)}' or delete it to run that run again") from None


RECORD_FIELDS = ("key", "config", "phases", "metrics")  # what every run record holds


def read_record_file(path: Path) -> dict | None:
    """The run record in `path`, None if there is no such file; a file that is not valid JSON, or not a record, is a
    one-line error saying what to do (nothing is deleted or rewritten)."""
    record = read_json(path)
    missing = [] if record is None else [f for f in RECORD_FIELDS if not isinstance(record, dict) or f not in record]
    if missing:
        raise ValueError(f"{shown(path)} is not a run record (no {', '.join(missing)}); restore it with "
                         f"'git checkout -- {shown(path)}' or delete it to run that run again")
    return record


def shown(path: str | Path) -> str:
    """`path` as printed in outputs: relative to the repository root, so no machine's absolute path ends up in
    executed notebooks and tables."""
    return Path(os.path.relpath(Path(path).resolve(), ROOT)).as_posix()


def write_torch(path: Path, obj: object) -> None:
    """Save `obj` with torch.save atomically, as write_json does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path.with_name(path.name + ".tmp"))
    os.replace(path.with_name(path.name + ".tmp"), path)


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


FLOAT_FORMAT, PIT_FORMAT = "joint-float-1", "joint-pit-1"  # a float state dict; a PIT-pruned float state dict


def load_model(record: dict, store: Store | None = None) -> torch.nn.Module:
    """The trained model of a recorded run, rebuilt from the file kept beside its record, in eval mode: the float
    model, the PIT-pruned float model, or the frozen searchable net (quantized runs), which evaluates bit for bit as
    when its record was written. No data is needed."""
    store = store or Store()
    config = RunConfig.of(record["config"])
    path = store.model_path(record)
    if not path.exists():
        raise ValueError(f"{shown(path)} is missing: this run was recorded without its model; delete its record "
                         f"{shown(store.results / config.profile / 'runs' / (record['key'] + '.json'))} and run it "
                         f"again to keep one")
    data = torch.load(path, weights_only=True)
    model, shape = models.build(datasets.MODELS[config.benchmark])
    if data.get("format") == FLOAT_FORMAT:
        model.load_state_dict(data["state"])
        return model.eval()
    if data.get("format") == PIT_FORMAT:
        pruned = pruned_structure(model, shape, Arch.from_dict(record["arch"]))
        pruned.load_state_dict(data["state"])
        return pruned.eval()
    if methods.get(config.method).seeded:
        seed = read_record_file(store.results / config.profile / "runs" / f"{record['seed']['key']}.json")
        if seed is None:
            raise ValueError(f"the PIT seed of this sequential run (method pit, lam={config.pit_lam:g}) is not "
                             f"recorded in {shown(store.results / config.profile / 'runs')}")
        model = pruned_structure(model, shape, Arch.from_dict(seed["arch"]))
    return compact.load(model, shape, data).eval()


def pruned_structure(model: torch.nn.Module, input_shape: tuple[int, ...], arch: Arch) -> torch.nn.Module:
    """`model` with the channels a recorded PIT architecture pruned removed (weights as they were)."""
    net = prunable(model, torch.zeros(1, *input_shape))
    net.keep(arch)
    return net.export()

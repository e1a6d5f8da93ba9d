"""Experiments: RunConfig, run() and sweep(), and the store of run records (one JSON per run)."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__
from . import cost as cost_models
from . import data as datasets
from . import compact, methods, models, quant
from .graph import describe, searchable
from .pit import prunable
from .profiles import PROFILES, Profile, get_profile
from .arch import Arch
from .search import SearchSpace, at_activation_bits
from .train import Penalty, evaluate, pick_device, train_phase


ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("00_tour", "01_size_pareto", "02_training_time", "03_cost_model_ablation")


def project_path(path: str | Path) -> Path:
    """`path` itself if absolute, else relative to the repository root (so notebooks find results from any cwd)."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


@dataclass(frozen=True)
class RunConfig:
    """One run = one Pareto point: a method on a benchmark, at one lambda and cost model, with one seed."""

    benchmark: str
    method: str
    lam: float = 0.0
    cost: str = "size"
    profile: str = "quick"
    seed: int = 0
    pit_lam: float | None = None  # sequential only: the PIT lambda of the pruned seed it starts from
    act_bits: tuple[int, ...] | None = None  # activation precisions; None: the cost model's target (searches)

    def __post_init__(self):
        if self.benchmark not in datasets.LOADERS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; allowed: {', '.join(sorted(datasets.LOADERS))}")
        method = methods.get(self.method)
        get_profile(self.profile, self.benchmark)
        cost_models.get(self.cost)
        if isinstance(self.lam, bool) or not isinstance(self.lam, (int, float)) or not 0 <= self.lam < math.inf:
            raise ValueError(f"lam must be a finite number >= 0; got {self.lam!r}")
        if self.lam and not method.searches:
            raise ValueError(f"lam must be 0 for method {self.method!r}, which does not search; got {self.lam!r}")
        if method.seeded != (self.pit_lam is not None):
            raise ValueError(f"pit_lam (the PIT lambda of the seed) is required for method 'sequential' and only for "
                             f"it; got pit_lam={self.pit_lam!r} with method {self.method!r}")
        if self.pit_lam is not None:
            if isinstance(self.pit_lam, bool) or not isinstance(self.pit_lam, (int, float)) or \
                    not 0 <= self.pit_lam < math.inf:
                raise ValueError(f"pit_lam must be a finite number >= 0; got {self.pit_lam!r}")
            object.__setattr__(self, "pit_lam", float(self.pit_lam))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {self.seed!r}")
        object.__setattr__(self, "lam", float(self.lam))
        object.__setattr__(self, "act_bits", self._resolve_act_bits(method))

    def _resolve_act_bits(self, method: methods.Method) -> tuple[int, ...] | None:
        """The activation precision set this run uses, spelled out, so equal runs get equal keys."""
        if method.space is None:
            if self.act_bits is not None:
                raise ValueError(f"act_bits must be None for method {self.method!r}, which is not quantized; "
                                 f"got {self.act_bits!r}")
            return None
        if not method.searches:
            fixed = method.space.act_bits
            if self.act_bits is not None and tuple(sorted(self.act_bits)) != fixed:
                raise ValueError(f"act_bits of method {self.method!r} are fixed to {fixed}; got {self.act_bits!r}")
            return fixed
        if self.act_bits is None:
            return cost_models.search_act_bits(self.cost)
        bits = SearchSpace(act_bits=self.act_bits).act_bits
        target = cost_models.TARGET_ACT_BITS[self.cost]
        if target is not None and not set(bits) <= set(target):
            raise ValueError(f"act_bits {bits} are not all supported by cost model {self.cost!r}; allowed: "
                             f"a subset of {target}")
        return bits

    def space(self) -> SearchSpace | None:
        """The search space of this run: its method's, with this run's activation precisions."""
        space = methods.get(self.method).space
        return None if space is None else replace(space, act_bits=self.act_bits)

    def seed_config(self) -> RunConfig:
        """The PIT run whose pruned model seeds this sequential run."""
        return RunConfig(self.benchmark, "pit", self.pit_lam, "size", self.profile, self.seed)

    def key(self) -> str:
        """Stable name of the run's record: a hash of every field and of the profile's settings."""
        fields = {**asdict(self), "profile_settings": get_profile(self.profile, self.benchmark).fingerprint()}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


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
        return config.key() if not copy else hashlib.sha256(f"{config.key()} {copy}".encode()).hexdigest()[:16]

    def record_path(self, config: RunConfig) -> Path:
        return self.results / config.profile / "runs" / f"{self.key(config)}.json"

    def checkpoint(self, config: RunConfig, phase: str) -> Path:
        path = self.cache / config.profile / "checkpoints" / f"{self.key(config)}-{phase}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def pit_seed(self, config: RunConfig) -> Path:
        """Where the pruned, fine-tuned float model of a PIT run is kept (the seed of the sequential runs)."""
        return self.cache / config.profile / "pit-seeds" / f"{self.key(config)}.pt"

    def model_path(self, config: RunConfig | dict) -> Path:
        """Where the trained model of a run (a config, or a record, by the key it was written under) is kept, beside
        its record (see save_model)."""
        if isinstance(config, dict):
            return self.results / config["config"]["profile"] / "models" / f"{config['key']}.pt"
        return self.results / config.profile / "models" / f"{self.key(config)}.pt"

    def warmup_path(self, benchmark: str, profile: str, seed: int) -> Path:
        """Where the float warm-up of a benchmark, profile and seed is cached (named by its own settings and the
        data copy it read only)."""
        fingerprint = get_profile(profile, benchmark).warmup_fingerprint()
        copy = self.data_identity(benchmark)
        if copy:
            fingerprint += "-" + hashlib.sha256(copy.encode()).hexdigest()[:8]
        return self.cache / profile / "warmup" / f"{benchmark}-seed{seed}-{fingerprint}.pt"

    def read_record(self, config: RunConfig) -> dict | None:
        """The record of `config`, or None if it was not run; a file that is not valid JSON is a one-line error."""
        return read_json(self.record_path(config))

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


def shown(path: str | Path) -> str:
    """`path` as printed in outputs: relative to the repository root, so no machine's absolute path ends up in
    executed notebooks and tables."""
    return Path(os.path.relpath(Path(path).resolve(), ROOT)).as_posix()


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path.with_name(path.name + ".tmp"))
    os.replace(path.with_name(path.name + ".tmp"), path)


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _phase_record(result) -> dict:
    return {"epochs": result.epochs, "seconds": result.seconds, "best_epoch": result.best_epoch,
            "val_accuracy": result.val_accuracy, "curve": result.curve}


def _settings(prof: Profile) -> dict:
    phases = ("pretrain",) * (prof.pretrain is not None) + ("warmup", "search", "finetune", "pit_search",
                                                            "pit_finetune")
    return {"fingerprint": prof.fingerprint(), "batch_size": prof.batch_size, "workers": prof.workers,
            "channels_last": prof.channels_last, **{phase: asdict(getattr(prof, phase)) for phase in phases}}


def _training(prof: Profile, store: Store, bench: datasets.Benchmark, seed: int) -> dict:
    """The keyword arguments every train_phase call of a run shares."""
    return dict(batch_size=prof.batch_size, seed=seed, class_weights=bench.class_weights, progress=store.progress,
                device=store.torch_device(), workers=prof.workers, channels_last=prof.channels_last)


def warmup(benchmark: str, profile: str, seed: int, store: Store) -> tuple[torch.nn.Module, dict]:
    """The float model trained once per benchmark, profile and seed, cached and shared by every method and lambda;
    a recorded float run's model is the same model, so a fresh clone with the records trains no warm-up."""
    prof = get_profile(profile, benchmark)
    bench = store.benchmark(benchmark)
    torch.manual_seed(seed)
    model = bench.model()
    done = store.warmup_path(benchmark, profile, seed)
    if done.exists():
        saved = torch.load(done, weights_only=False)
        model.load_state_dict(saved["model"])
        return model.eval(), saved["phase"]
    recorded = RunConfig(benchmark, "float", profile=profile, seed=seed)
    record = store.read_record(recorded)
    if record is not None and store.model_path(recorded).exists():
        phase = {k: v for k, v in record["phases"]["warmup"].items() if k != "shared"}
        return load_model(record, store), phase
    done.parent.mkdir(parents=True, exist_ok=True)
    common = _training(prof, store, bench, seed)
    phase = {}
    if prof.pretrain is not None:
        model, phase["pretrain"] = _pretrain(benchmark, prof, bench, done, common)
    result = train_phase(model, prof.warmup, bench.train, bench.val, checkpoint=done.with_suffix(".resume.pt"),
                         desc=f"{benchmark} warm-up", **common)
    phase.update(_phase_record(result))
    _atomic_torch_save({"model": model.state_dict(), "phase": phase}, done)
    done.with_suffix(".resume.pt").unlink(missing_ok=True)
    done.with_suffix(".pretrain.pt").unlink(missing_ok=True)
    return model.eval(), phase


def _pretrain(benchmark: str, prof: Profile, bench: datasets.Benchmark, done: Path, common: dict):
    """Tiny ImageNet's first warm-up stage: the ImageNet-pretrained ResNet-18 fine-tuned at 224 px, then moved to
    the 64-px reduced-stem model (stem conv and classifier re-initialised), as the paper's scripts do."""
    if benchmark != "tiny_imagenet":
        raise ValueError(f"a pretrain stage is defined for tiny_imagenet only; got benchmark {benchmark!r}")
    from .data import tiny_imagenet

    big = tiny_imagenet.imagenet_pretrained(bench.num_classes)
    train224, val224 = tiny_imagenet.views_224(bench)
    result = train_phase(big, prof.pretrain, train224, val224, checkpoint=done.with_suffix(".pretrain.pt"),
                         desc=f"{benchmark} warm-up at 224 px", **common)
    torch.manual_seed(common["seed"])  # the fresh stem and classifier: the same whether or not stage A resumed
    return tiny_imagenet.to_reduced_stem(big), _phase_record(result)


def run(config: RunConfig, store: Store | None = None) -> dict:
    """The record of `config`: read from the store if the run finished before, else trained, measured and written."""
    store = store or Store()
    record = store.read_record(config)
    if record is None:
        save_record(config, compute(config, store), store)
        record = store.read_record(config)  # as a later call reads it (JSON lists, not tuples)
    return record


def save_record(config: RunConfig, record: dict, store: Store) -> None:
    """Write a run's record (atomically) and drop its resumable checkpoints, which it no longer needs."""
    write_json(store.record_path(config), record)
    for phase in ("search", "finetune", "pit_search", "pit_finetune"):
        store.checkpoint(config, phase).unlink(missing_ok=True)


def compute(config: RunConfig, store: Store) -> dict:
    """Train and measure one run and return its record, without writing it (a remote worker returns it to the
    driver, which writes it). Checkpoints, the warm-up and PIT seeds go to the store's cache."""
    prof, method = get_profile(config.profile, config.benchmark), methods.get(config.method)
    bench = store.benchmark(config.benchmark)
    warm, warm_phase = warmup(config.benchmark, config.profile, config.seed, store)
    example = torch.stack([bench.val[i][0] for i in range(min(64, len(bench.val)))])  # real, un-augmented inputs
    record = {"key": store.key(config), "config": asdict(config), "profile_settings": _settings(prof),
              "data": bench.source, "data_identity": store.data_identity(config.benchmark),
              "phases": {"warmup": {**warm_phase, "shared": True}}}
    if method.seeded:
        seed_config = config.seed_config()
        if not (store.pit_seed(seed_config).exists() and store.record_path(seed_config).exists()):
            raise ValueError(f"the sequential run needs its PIT seed (method pit, lam={config.pit_lam:g}), which is "
                             f"not recorded; run it first: python -m joint run --method pit --lam {config.pit_lam:g} "
                             f"--profile {config.profile}")
        record["seed"] = {"key": store.key(seed_config), "pit_lam": config.pit_lam}
        start = load_pit_seed(store.pit_seed(seed_config), warm, example)
        result = _run_quantized(config, prof, config.space(), method.phases, start, warm, example, bench, store)
    elif config.method == "pit":
        result = _run_pit(config, prof, warm, example, bench, store)
    elif method.space is None:
        weights = sum(layer.weights for layer in describe(warm, example[:1]))
        result = {"space": None, "arch": None, "phases": {}, "model": {"format": FLOAT_FORMAT,
                                                                      "state": warm.state_dict()},
                  "metrics": {**_accuracies(warm, bench, store), "size_kb": weights * 32 / 8000, "bitops": None,
                              "mpic_cycles": None, "ne16_cycles": None, "pruned_fraction": 0.0}}
    else:
        result = _run_quantized(config, prof, config.space(), method.phases, warm, warm, example, bench, store)
    record["phases"].update(result.pop("phases"))
    _atomic_torch_save(result.pop("model"), store.model_path(config))
    record.update(result)
    record["versions"] = {"joint": __version__, "torch": torch.__version__, "python": platform.python_version()}
    record["environment"] = environment(store.torch_device())
    return record


def environment(device: torch.device) -> dict:
    """What changes a run's last bits besides its config: threads, device, and whether the quantizer ran compiled."""
    return {"threads": torch.get_num_threads(), "device": str(device), "compiled_quantizer": quant.compiled()}


FLOAT_FORMAT, PIT_FORMAT = "joint-float-1", "joint-pit-1"  # a float state dict; a PIT-pruned float state dict


def load_model(record: dict, store: Store | None = None) -> torch.nn.Module:
    """The trained model of a recorded run, rebuilt from the file kept beside its record, in eval mode: the float
    model, the PIT-pruned float model, or the frozen searchable net (quantized runs), which evaluates bit for bit as
    when its record was written. No data is needed."""
    store = store or Store()
    config = RunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items()})
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
        seed = read_json(store.results / config.profile / "runs" / f"{record['seed']['key']}.json")
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


def load_pit_seed(path: Path, warm: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """Rebuild a PIT run's pruned, fine-tuned float model: its masks select the channels, then its weights load."""
    saved = torch.load(path, weights_only=True)
    net = prunable(warm, example)
    net.load_state_dict(saved["pit"])
    pruned = net.export()
    pruned.load_state_dict(saved["pruned"])
    return pruned.eval()


def _run_pit(config: RunConfig, prof: Profile, warm: torch.nn.Module, example: torch.Tensor,
             bench: datasets.Benchmark, store: Store, finetune: bool = True) -> dict:
    """PIT search on the float model, export of the pruned network, its fine-tune; the result seeds MixPrec.
    Without `finetune`, the masked model at the end of the search is measured instead (a scan)."""
    net = prunable(warm, example)
    reference = net.discrete_cost()
    common = _training(prof, store, bench, config.seed)
    phases = {"pit_search": _phase_record(train_phase(
        net, prof.pit_search, bench.train, bench.val, penalty=Penalty(config.lam, "params", reference),
        checkpoint=store.checkpoint(config, "pit_search"), desc=f"pit search lam={config.lam:g}", **common))}
    if all(len(kept) == 1 for g, kept in net.kept().items() if not net.fixed[g]):
        raise ValueError(f"PIT lam={config.lam:g} pruned every prunable channel group down to its one keep-alive "
                         f"channel; use a smaller lambda (nothing was recorded for this run)")
    arch = net.arch()
    if not finetune:
        return {"phases": phases, "metrics": {**_accuracies(net, bench, store), "size_kb": arch.size_kb(),
                                              "pruned_fraction": pruned_fraction(arch, warm, example),
                                              "search_cost": net.discrete_cost(), "cost_reference": reference}}
    pruned = net.export()
    phases["pit_finetune"] = _phase_record(train_phase(
        pruned, prof.pit_finetune, bench.train, bench.val, checkpoint=store.checkpoint(config, "pit_finetune"),
        desc="pit fine-tune", **common))
    _atomic_torch_save({"pit": net.state_dict(), "pruned": pruned.state_dict()}, store.pit_seed(config))
    return {"space": None, "phases": phases, "arch": arch.to_dict(),
            "model": {"format": PIT_FORMAT, "state": pruned.state_dict()},
            "metrics": {**_accuracies(pruned, bench, store), "size_kb": arch.size_kb(),
                        "bitops": None, "mpic_cycles": None, "ne16_cycles": None,
                        "pruned_fraction": pruned_fraction(arch, warm, example), "parameters": net.discrete_cost(),
                        "cost_reference": reference}}


def _accuracies(model: torch.nn.Module, bench: datasets.Benchmark, store: Store,
                splits: tuple[str, ...] = ("test", "val")) -> dict:
    """Final accuracy of a trained model on each split."""
    return {f"{split}_accuracy": evaluate(model, getattr(bench, split), class_weights=bench.class_weights,
                                          device=store.torch_device())[0] for split in splits}


def _run_quantized(config: RunConfig, prof: Profile, space: SearchSpace, phases: tuple[str, ...],
                   start: torch.nn.Module, warm: torch.nn.Module, example: torch.Tensor, bench: datasets.Benchmark,
                   store: Store) -> dict:
    """Quantized phases from the float model `start` (the warm-up, or a PIT seed); the penalty is normalised by
    the all-8-bit cost of the unpruned warm-up, so a lambda means the same for every starting model."""
    net = searchable(start, space, example)
    reference = searchable(warm, SearchSpace((8,), (8,)), example).arch().cost(config.cost)
    common = _training(prof, store, bench, config.seed)
    out = {"space": asdict(space), "phases": {}, "warnings": []}
    for phase in phases:
        if phase == "search":
            result = train_phase(net, prof.search, bench.train, bench.val, penalty=Penalty(config.lam, config.cost,
                                 reference), checkpoint=store.checkpoint(config, "search"),
                                 desc=f"{config.method} search lam={config.lam:g}", **common)
            if config.lam > 0 and net.at_initial_choice():
                out["warnings"].append(
                    f"the search never left its starting architecture (every channel and activation still at its "
                    f"initial, highest precision) at lam={config.lam:g}: the precision logits did not move before the "
                    f"temperature froze them; raise the profile's search arch_lr or epochs, lower its "
                    f"temperature_decay, or raise lam")
        else:
            net.freeze()
            result = train_phase(net, prof.finetune, bench.train, bench.val,
                                 checkpoint=store.checkpoint(config, "finetune"),
                                 desc=f"{config.method} fine-tune", **common)
        out["phases"][phase] = _phase_record(result)
    arch = net.arch()
    accuracies = _accuracies(net, bench, store)
    ne16_accuracy = accuracies["test_accuracy"]
    if any(bits != 8 for bits in arch.activations.values()):  # NE16 runs 8-bit activations only: measure it so
        as_ne16 = at_activation_bits(net, 8) if 8 in space.act_bits else None
        ne16_accuracy = None if as_ne16 is None else _accuracies(as_ne16, bench, store, ("test",))["test_accuracy"]
    out["metrics"] = {**accuracies, "size_kb": arch.size_kb(),
                      "bitops": arch.cost("bitops"), "mpic_cycles": arch.cost("mpic"), "ne16_cycles": arch.cost("ne16"),
                      "ne16_accuracy": ne16_accuracy,
                      "pruned_fraction": pruned_fraction(arch, warm, example), "cost_reference": reference,
                      "search_cost": arch.cost(config.cost)}
    out["arch"] = arch.to_dict()
    out["model"] = compact.pack(net)
    return out


def pruned_fraction(arch: Arch, original: torch.nn.Module, example: torch.Tensor) -> float:
    """Fraction of the original float model's output channels that `arch` no longer has: pruned to 0 bits, or
    removed before the search (a sequential run's PIT seed)."""
    channels = sum(layer.cout for layer in describe(original, example[:1]))
    return 1 - sum(layer.alive for layer in arch.layers.values()) / channels


def check_scannable(config: RunConfig) -> None:
    """A one-line error unless `config` is a search with a lambda and no seed, which `scan` takes."""
    method = methods.get(config.method)
    if not method.searches or method.seeded:
        raise ValueError(f"scan takes a search with a lambda (joint, mixprec, edmips, pit); got method "
                         f"{config.method!r}")


def scan(config: RunConfig, store: Store | None = None) -> dict:
    """The search phase alone of a search, to choose lambda grids before paying for fine-tunes: what its
    architecture reaches (PIT: the float size at 32 bits). The phase is checkpointed where the run keeps it, so the
    run later resumes after it."""
    check_scannable(config)
    store = store or Store()
    prof, bench = get_profile(config.profile, config.benchmark), store.benchmark(config.benchmark)
    warm, _ = warmup(config.benchmark, config.profile, config.seed, store)
    example = torch.stack([bench.val[i][0] for i in range(min(64, len(bench.val)))])
    if config.method == "pit":
        out = _run_pit(config, prof, warm, example, bench, store, finetune=False)
        out["warnings"], phase = [], out["phases"]["pit_search"]
    else:
        out = _run_quantized(config, prof, config.space(), ("search",), warm, warm, example, bench, store)
        phase = out["phases"]["search"]
    m = out["metrics"]
    return {"lam": config.lam, "cost": config.cost, "size_kb": m["size_kb"],
            "cost_ratio": m["search_cost"] / m["cost_reference"], "pruned_%": 100 * m["pruned_fraction"],
            "val_acc_%": 100 * m["val_accuracy"], "epochs": phase["epochs"], "best_epoch": phase["best_epoch"],
            "seconds": phase["seconds"], "warnings": out["warnings"]}


def sweep(configs: list[RunConfig], store: Store | None = None) -> list[dict]:
    """Records of every config; only the runs not recorded yet are trained (a killed sweep resumes)."""
    store = store or Store()
    pending = [c for c in configs if not store.record_path(c).exists()]
    bar = tqdm(total=len(configs), initial=len(configs) - len(pending), desc="runs", disable=not store.progress)
    records = []
    for config in configs:
        fresh = config in pending
        records.append(run(config, store))
        if fresh:
            bar.update(1)
    bar.close()
    return records


def size_sweep(benchmark: str, profile: str, seed: int = 0) -> list[RunConfig]:
    """Every run of the size and training-time analyses: float, fixed w8a8/w4a8/w2a8, every searched method over
    the lambda grid, PIT over its grid, and the sequential baseline (each PIT seed times the MixPrec grid)."""
    prof = get_profile(profile, benchmark)
    configs = [RunConfig(benchmark, m, profile=profile, seed=seed) for m in ("float", *methods.FIXED)]
    for m in methods.SEARCHED:
        configs += [RunConfig(benchmark, m, lam, "size", profile, seed) for lam in prof.size_grid(m)]
    configs += [RunConfig(benchmark, "pit", lam, "size", profile, seed) for lam in prof.pit_lambdas]
    seeds = prof.pit_lambdas if prof.seed_lambdas is None else prof.seed_lambdas
    configs += [RunConfig(benchmark, "sequential", lam, "size", profile, seed, pit_lam)
                for pit_lam in seeds for lam in prof.sequential_lambdas]
    return configs


ABLATION_COSTS = ("size", "bitops", "mpic", "ne16")


def cost_sweep(benchmark: str, profile: str, seed: int = 0) -> list[RunConfig]:
    """Every run of the cost-model ablation: the fixed w8a8/w4a8/w2a8 baselines, and joint searched with each
    cost model over the lambda grid, each with its target's activation precisions (MPIC: 2/4/8, others: 8)."""
    prof = get_profile(profile, benchmark)
    configs = [RunConfig(benchmark, m, profile=profile, seed=seed) for m in methods.FIXED]
    configs += [RunConfig(benchmark, "joint", lam, cost, profile, seed) for cost in ABLATION_COSTS
                for lam in prof.grid(cost)]
    return configs


def check_parameters(benchmark: str, profile: str, lam: float = 0.0, search_epochs: int | None = None,
                     **paths: str) -> None:
    """Validate a notebook's parameters: one clear line naming the first bad one and the allowed values."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam < math.inf:
        raise ValueError(f"parameter lam={lam!r} must be a finite number >= 0")
    if search_epochs is not None and (isinstance(search_epochs, bool) or not isinstance(search_epochs, int)
                                      or search_epochs < 1):
        raise ValueError(f"parameter search_epochs={search_epochs!r} must be None or an integer >= 1")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"parameter profile={profile!r} is not a profile; allowed: {', '.join(PROFILES)}")
    allowed = PROFILES[profile].benchmarks
    if not isinstance(benchmark, str) or benchmark not in allowed:
        raise ValueError(f"parameter benchmark={benchmark!r} is not a benchmark of profile {profile!r}; "
                         f"allowed: {', '.join(allowed)}")
    for name, value in paths.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"parameter {name}={value!r} must be a non-empty path string")


def data_sources(records: list[dict]) -> str:
    """The data copies the records were trained on (not the copy this machine would read now), one line."""
    return "; ".join(dict.fromkeys(r.get("data", "unknown") for r in records))


def warnings_of(records: list[dict]) -> list[str]:
    """One line per warning a record carries (a search that never moved), naming the run."""
    return [f"warning: {r['config']['method']} lam={r['config']['lam']:g} ({r['config']['cost']}): {text}"
            for r in records for text in r.get("warnings", [])]


def without_timing(record: dict) -> dict:
    """A record less its wall-clock seconds and versions: what must be identical for the same config and seed."""
    clean = json.loads(json.dumps(record))
    for phase in clean["phases"].values():
        phase.pop("seconds", None)
    clean.pop("versions", None)
    return clean

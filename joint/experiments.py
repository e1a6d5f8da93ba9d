"""Experiments: RunConfig, profiles, run() and sweep(), and the store of run records (one JSON per run)."""
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
from . import methods
from .graph import describe, searchable
from .pit import prunable
from .search import SearchSpace
from .train import Penalty, PhaseConfig, evaluate, pick_device, train_phase


ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("00_tour", "01_size_pareto", "02_training_time", "03_cost_model_ablation")


def project_path(path: str | Path) -> Path:
    """`path` itself if absolute, else relative to the repository root (so notebooks find results from any cwd)."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


@dataclass(frozen=True)
class Profile:
    """How much compute a reproduction spends: epochs and hyper-parameters per phase, the lambda grids.

    `overrides` maps a benchmark to the fields that differ for it (the paper tunes each benchmark);
    `for_benchmark` applies them, and every run reads its benchmark's resolved profile."""

    name: str
    description: str
    benchmarks: tuple[str, ...]
    batch_size: int
    warmup: PhaseConfig
    search: PhaseConfig
    finetune: PhaseConfig
    lambdas: tuple[float, ...]  # lambda grid of every searched method, on the cost normalised by its w8a8 value
    pit_search: PhaseConfig
    pit_finetune: PhaseConfig
    pit_lambdas: tuple[float, ...]  # PIT on the float parameter count normalised by the unpruned count
    sequential_lambdas: tuple[float, ...]  # MixPrec lambdas run on every PIT seed
    cost_lambdas: dict[str, tuple[float, ...]] = field(default_factory=dict)  # ablation grid per cost model
    seed_lambdas: tuple[float, ...] | None = None  # PIT lambdas whose seeds the sequential runs use (None: all)
    pretrain: PhaseConfig | None = None  # a first warm-up stage at the pretrained model's resolution (Tiny ImageNet)
    workers: int = 0  # data-loader processes
    overrides: dict[str, dict] = field(default_factory=dict)

    def for_benchmark(self, benchmark: str) -> Profile:
        """This profile with `benchmark`'s overrides applied."""
        return replace(self, **self.overrides.get(benchmark, {}), overrides={})

    def grid(self, cost: str) -> tuple[float, ...]:
        """The lambda grid of a joint search with cost model `cost`: its own grid if it has one, else `lambdas`."""
        return self.cost_lambdas.get(cost, self.lambdas)

    def fingerprint(self) -> str:
        """Hash of every setting that changes a run's result (not the lambda grids, which only list runs)."""
        settings = (self.batch_size, self.warmup, self.search, self.finetune, self.pit_search, self.pit_finetune)
        if self.pretrain is not None:
            settings += (self.pretrain,)
        if self.workers:  # loader processes draw the augmentation from their own random streams
            settings += (("workers", self.workers),)
        return hashlib.sha256(repr(settings).encode()).hexdigest()[:8]


def _paper_profile() -> Profile:
    """protocol.md's hyper-parameters: CIFAR-10 as the base, Speech Commands and Tiny ImageNet as overrides."""
    cifar = PhaseConfig(500)  # Adam 1e-3, wd 1e-4, LambdaLR 0.99^e, early stop 50 after epoch 20: the defaults
    gsc = dict(epochs=200, schedule="milestones", milestones=((50, 2.0), (100, 2.0), (150, 2.5)), selection="loss")
    tin = dict(epochs=50, optimizer="sgd", momentum=0.9, schedule="step", step_size=7, gamma=0.1)
    return Profile(
        "paper", "the paper's protocol per benchmark (GPU)", ("cifar10", "speech_commands", "tiny_imagenet"), 32,
        cifar, replace(cifar, arch_lr=1e-2), cifar,
        # lambda grids on the normalised cost (1 = one all-8-bit network's worth of cost), chosen from the quick
        # profile's scans so that each front runs from the all-8-bit network down to a few percent of it, the
        # span of the paper's figures (CIFAR-10 size: 2.9-75 kB of 77 kB; PIT: 95-245 kB of 309 kB fp32)
        (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        replace(cifar, arch_lr=1e-3, arch_optimizer="adam"), cifar,
        (0.01, 0.02, 0.05, 0.1, 0.2, 0.4), (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
        {"bitops": (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), "mpic": (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 7.0, 10.0),
         "ne16": (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15)},
        seed_lambdas=(0.05,), workers=2,
        overrides={
            "speech_commands": dict(
                batch_size=100, workers=0, warmup=PhaseConfig(**gsc), search=PhaseConfig(**gsc, arch_lr=1e-2),
                finetune=PhaseConfig(**gsc), pit_search=PhaseConfig(**gsc, arch_lr=1e-3, arch_optimizer="adam"),
                pit_finetune=PhaseConfig(**{**gsc, "lr": 5e-4})),
            "tiny_imagenet": dict(
                batch_size=100, workers=4,
                pretrain=PhaseConfig(50, lr=0.1, optimizer="sgd", schedule="cosine"),
                warmup=PhaseConfig(**tin), search=PhaseConfig(**tin, arch_lr=1e-3, temperature_decay=0.45),
                finetune=PhaseConfig(**tin), pit_search=PhaseConfig(**tin, arch_lr=1e-3, arch_optimizer="adam"),
                pit_finetune=PhaseConfig(**{**tin, "weight_decay": 0.0})),
        })


def _quarters(epochs: int) -> dict:
    """Speech Commands' step schedule (halve, halve, divide by 2.5 after 50, 100, 150 of 200 epochs), rescaled."""
    return dict(schedule="milestones", selection="loss",
                milestones=((epochs // 4, 2.0), (epochs // 2, 2.0), (3 * epochs // 4, 2.5)))


def _cpu_profile() -> Profile:
    """The paper's benchmarks at epoch counts and grids meant to finish CIFAR-10 and Speech Commands overnight on a
    CPU (measured upper bound on 2 cores: 9.4 h and 14.2 h): 20 search and 10 fine-tune epochs, the temperature
    annealed to e^-4 over the search."""
    warm = PhaseConfig(50, min_epochs=10, patience=10)
    search, tune = PhaseConfig(20, temperature_decay=0.2, min_epochs=5, patience=10), PhaseConfig(10, min_epochs=3)
    pit = PhaseConfig(20, arch_lr=3e-3, arch_optimizer="adam", min_epochs=5, patience=10)
    return Profile(
        "cpu", "CIFAR-10 and Speech Commands with reduced epochs and grids: overnight on a CPU",
        ("cifar10", "speech_commands"), 32, warm, search, tune, (0.2, 1.0, 5.0, 10.0), pit, tune, (0.05, 0.2),
        (0.5, 5.0), {"mpic": (0.5, 2.0, 7.0), "ne16": (0.01, 0.05, 0.15), "bitops": (0.5, 2.0, 10.0)},
        seed_lambdas=(0.05,), workers=2,
        overrides={"speech_commands": dict(
            batch_size=100, workers=0, warmup=replace(warm, **_quarters(50)), search=replace(search, **_quarters(20)),
            finetune=replace(tune, **_quarters(10)), pit_search=replace(pit, **_quarters(20)),
            pit_finetune=replace(tune, lr=5e-4, **_quarters(10)))})


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", "seconds: CI and the notebooks' default parameters", ("digits",), 64,
        PhaseConfig(3, lr=3e-3, min_epochs=1, patience=3),
        PhaseConfig(2, lr=1e-3, arch_lr=0.1, min_epochs=1, patience=2, temperature_decay=0.5),
        PhaseConfig(2, lr=1e-3, min_epochs=1, patience=2),
        (0.5, 5.0),
        PhaseConfig(2, lr=1e-3, arch_lr=0.05, arch_optimizer="adam", min_epochs=1, patience=2),
        PhaseConfig(2, lr=1e-3, min_epochs=1, patience=2),
        (1.0,), (0.5, 5.0),
        {"bitops": (0.5, 5.0), "mpic": (0.5, 5.0), "ne16": (0.02, 0.1)}),
    "quick": Profile(
        "quick", "offline digits benchmark, every analysis in minutes on 2 CPU cores", ("digits",), 64,
        PhaseConfig(60, lr=3e-3, min_epochs=20, patience=15),
        PhaseConfig(40, lr=1e-3, arch_lr=0.1, min_epochs=30, patience=40, temperature_decay=0.1),
        PhaseConfig(20, lr=1e-3, min_epochs=10, patience=10),
        (0.05, 0.2, 0.5, 0.7, 1.0, 2.0, 5.0, 10.0),
        PhaseConfig(40, lr=1e-3, arch_lr=3e-3, arch_optimizer="adam", min_epochs=30, patience=40),
        PhaseConfig(20, lr=1e-3, min_epochs=10, patience=10),
        (0.02, 0.1, 0.4), (0.2, 1.0, 5.0),
        # a normalised lambda weighs each cost model differently: NE16's straight-through tile counts give every
        # channel a steep gradient, so its front collapses to one channel per layer from lambda 0.2 on; each grid
        # spans its model's front from the all-8-bit network to just before that collapse
        {"bitops": (0.2, 0.5, 1.0, 2.0, 5.0, 10.0), "mpic": (0.2, 0.5, 1.0, 2.0, 5.0, 7.0),
         "ne16": (0.005, 0.01, 0.02, 0.05, 0.1, 0.15)}),
    "cpu": _cpu_profile(),
    "paper": _paper_profile(),
}


def get_profile(name: str, benchmark: str | None = None) -> Profile:
    """The profile `name`, resolved for `benchmark` when given; a one-line error for an unknown profile or a
    benchmark the profile does not cover."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    prof = PROFILES[name]
    if benchmark is None:
        return prof
    if benchmark not in prof.benchmarks:
        raise ValueError(f"benchmark {benchmark!r} is not part of profile {name!r}; "
                         f"allowed: {', '.join(prof.benchmarks)}")
    return prof.for_benchmark(benchmark)


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
        if "search" not in method.phases:
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

    def __post_init__(self):
        self.results, self.cache, self.data_root = Path(self.results), Path(self.cache), Path(self.data_root)

    def torch_device(self) -> torch.device:
        return pick_device(self.device)

    def record_path(self, config: RunConfig) -> Path:
        return self.results / config.profile / "runs" / f"{config.key()}.json"

    def checkpoint(self, config: RunConfig, phase: str) -> Path:
        path = self.cache / config.profile / "checkpoints" / f"{config.key()}-{phase}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def pit_seed(self, config: RunConfig) -> Path:
        """Where the pruned, fine-tuned float model of a PIT run is kept (the seed of the sequential runs)."""
        return self.cache / config.profile / "pit-seeds" / f"{config.key()}.pt"

    def benchmark(self, name: str) -> datasets.Benchmark:
        if name not in self._benchmarks:
            self._benchmarks[name] = datasets.load(name, str(self.data_root), self.download)
        return self._benchmarks[name]


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _phase_record(result) -> dict:
    return {"epochs": result.epochs, "seconds": result.seconds, "best_epoch": result.best_epoch,
            "val_accuracy": result.val_accuracy}


def _settings(prof: Profile) -> dict:
    phases = ("pretrain",) * (prof.pretrain is not None) + ("warmup", "search", "finetune", "pit_search",
                                                            "pit_finetune")
    return {"fingerprint": prof.fingerprint(), "batch_size": prof.batch_size,
            **{phase: asdict(getattr(prof, phase)) for phase in phases}}


def _training(prof: Profile, store: Store, bench: datasets.Benchmark, seed: int) -> dict:
    """The keyword arguments every train_phase call of a run shares."""
    return dict(batch_size=prof.batch_size, seed=seed, class_weights=bench.class_weights, progress=store.progress,
                device=store.torch_device(), workers=prof.workers)


def warmup(benchmark: str, profile: str, seed: int, store: Store) -> tuple[torch.nn.Module, dict]:
    """The float model trained once per benchmark, profile and seed, cached and shared by every method and lambda."""
    prof = get_profile(profile, benchmark)
    bench = store.benchmark(benchmark)
    torch.manual_seed(seed)
    model = bench.model()
    done = store.cache / profile / "warmup" / f"{benchmark}-seed{seed}-{prof.fingerprint()}.pt"
    if done.exists():
        saved = torch.load(done, weights_only=False)
        model.load_state_dict(saved["model"])
        return model.eval(), saved["phase"]
    done.parent.mkdir(parents=True, exist_ok=True)
    common = _training(prof, store, bench, seed)
    phase = {}
    if prof.pretrain is not None:
        model, phase["pretrain"] = _pretrain(benchmark, prof, bench, done, common)
    result = train_phase(model, prof.warmup, bench.train, bench.val, checkpoint=done.with_suffix(".resume.pt"),
                         desc=f"{benchmark} warm-up", **common)
    phase.update(_phase_record(result))
    torch.save({"model": model.state_dict(), "phase": phase}, done.with_suffix(".tmp"))
    os.replace(done.with_suffix(".tmp"), done)
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
    path = store.record_path(config)
    if path.exists():
        return json.loads(path.read_text())
    save_record(config, compute(config, store), store)
    return json.loads(path.read_text())  # as a later call reads it (JSON lists, not tuples)


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
    example = torch.stack([bench.train[i][0] for i in range(min(64, len(bench.train)))])
    record = {"key": config.key(), "config": asdict(config), "profile_settings": _settings(prof),
              "phases": {"warmup": {**warm_phase, "shared": True}}}
    if method.seeded:
        seed_config = config.seed_config()
        if not (store.pit_seed(seed_config).exists() and store.record_path(seed_config).exists()):
            raise ValueError(f"the sequential run needs its PIT seed (method pit, lam={config.pit_lam:g}), which is "
                             f"not recorded; run it first: python -m joint run --method pit --lam {config.pit_lam:g} "
                             f"--profile {config.profile}")
        record["seed"] = {"key": seed_config.key(), "pit_lam": config.pit_lam}
        start = load_pit_seed(store.pit_seed(seed_config), warm, example)
        result = _run_quantized(config, prof, config.space(), method.phases, start, warm, example, bench, store)
    elif config.method == "pit":
        result = _run_pit(config, prof, warm, example, bench, store)
    elif method.space is None:
        weights = sum(layer.weights for layer in describe(warm, example[:1]))
        result = {"space": None, "arch": None, "phases": {},
                  "metrics": {**_accuracies(warm, bench, store), "size_kb": weights * 32 / 8000, "bitops": None,
                              "mpic_cycles": None, "ne16_cycles": None, "pruned_fraction": 0.0}}
    else:
        result = _run_quantized(config, prof, config.space(), method.phases, warm, warm, example, bench, store)
    record["phases"].update(result.pop("phases"))
    record.update(result)
    record["versions"] = {"joint": __version__, "torch": torch.__version__, "python": platform.python_version()}
    return record


def load_pit_seed(path: Path, warm: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """Rebuild a PIT run's pruned, fine-tuned float model: its masks select the channels, then its weights load."""
    saved = torch.load(path, weights_only=True)
    net = prunable(warm, example)
    net.load_state_dict(saved["pit"])
    pruned = net.export()
    pruned.load_state_dict(saved["pruned"])
    return pruned.eval()


def _run_pit(config: RunConfig, prof: Profile, warm: torch.nn.Module, example: torch.Tensor,
             bench: datasets.Benchmark, store: Store) -> dict:
    """PIT search on the float model, export of the pruned network, its fine-tune; the result seeds MixPrec."""
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
    pruned = net.export()
    phases["pit_finetune"] = _phase_record(train_phase(
        pruned, prof.pit_finetune, bench.train, bench.val, checkpoint=store.checkpoint(config, "pit_finetune"),
        desc="pit fine-tune", **common))
    seed_path = store.pit_seed(config)
    seed_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"pit": net.state_dict(), "pruned": pruned.state_dict()}, seed_path.with_name(seed_path.name + ".tmp"))
    os.replace(seed_path.with_name(seed_path.name + ".tmp"), seed_path)
    return {"space": None, "phases": phases, "arch": arch.to_dict(),
            "metrics": {**_accuracies(pruned, bench, store), "size_kb": arch.size_kb(),
                        "bitops": None, "mpic_cycles": None, "ne16_cycles": None,
                        "pruned_fraction": arch.pruned_fraction(), "parameters": net.discrete_cost(),
                        "cost_reference": reference}}


def _accuracies(model: torch.nn.Module, bench: datasets.Benchmark, store: Store) -> dict:
    """Final test and validation accuracy of a trained model."""
    return {f"{split}_accuracy": evaluate(model, getattr(bench, split), class_weights=bench.class_weights,
                                          device=store.torch_device())[0] for split in ("test", "val")}


def _run_quantized(config: RunConfig, prof: Profile, space: SearchSpace, phases: tuple[str, ...],
                   start: torch.nn.Module, warm: torch.nn.Module, example: torch.Tensor, bench: datasets.Benchmark,
                   store: Store) -> dict:
    """Quantized phases from the float model `start` (the warm-up, or a PIT seed); the penalty is normalised by
    the all-8-bit cost of the unpruned warm-up, so a lambda means the same for every starting model."""
    net = searchable(start, space, example)
    reference = searchable(warm, SearchSpace((8,), (8,)), example).arch().cost(config.cost)
    common = _training(prof, store, bench, config.seed)
    out = {"space": asdict(space), "phases": {}}
    for phase in phases:
        if phase == "search":
            result = train_phase(net, prof.search, bench.train, bench.val, penalty=Penalty(config.lam, config.cost,
                                 reference), checkpoint=store.checkpoint(config, "search"),
                                 desc=f"{config.method} search lam={config.lam:g}", **common)
        else:
            net.freeze()
            result = train_phase(net, prof.finetune, bench.train, bench.val,
                                 checkpoint=store.checkpoint(config, "finetune"),
                                 desc=f"{config.method} fine-tune", **common)
        out["phases"][phase] = _phase_record(result)
    arch = net.arch()
    out["metrics"] = {**_accuracies(net, bench, store), "size_kb": arch.size_kb(),
                      "bitops": arch.cost("bitops"), "mpic_cycles": arch.cost("mpic"), "ne16_cycles": arch.cost("ne16"),
                      "pruned_fraction": arch.pruned_fraction(), "cost_reference": reference,
                      "search_cost": arch.cost(config.cost)}
    out["arch"] = arch.to_dict()
    return out


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
        configs += [RunConfig(benchmark, m, lam, "size", profile, seed) for lam in prof.lambdas]
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


def without_timing(record: dict) -> dict:
    """A record less its wall-clock seconds and versions: what must be identical for the same config and seed."""
    clean = json.loads(json.dumps(record))
    for phase in clean["phases"].values():
        phase.pop("seconds", None)
    clean.pop("versions", None)
    return clean

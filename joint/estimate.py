"""How long the pending runs of a profile take: training-step times measured on this device at the profile's batch
size, memory format and compile mode, times the epochs the profile allows each phase, plus each phase's compilation
where the profile compiles whole networks (early stopping can only shorten it; data loading not included)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import data as datasets
from . import methods, models, quant
from .config import RunConfig
from .graph import searchable
from .pit import prunable
from .profiles import Profile, get_profile
from .search import SearchSpace
from .store import Store
from .train import training_forward

# train / val / test samples (docs/protocol.md, Benchmarks); the real loaders produce these sizes
SPLIT_SIZES = {"digits": (1_077, 360, 360), "cifar10": (40_000, 10_000, 10_000),
               "speech_commands": (85_511, 10_102, 4_890), "tiny_imagenet": (90_000, 10_000, 10_000)}



def _timed(step: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Median seconds of one step, and how much longer the first one took (its compilation): a hiccup of a busy
    machine moves no median."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)  # CUDA runs asynchronously
    started = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return median, max(0.0, first - median)


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cost: Callable[[], torch.Tensor] | None):
    """One training step as train_phase runs it: in compile mode "net", through the network compiled whole."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    forward = training_forward(model)

    def step() -> None:
        loss = F.cross_entropy(forward(x), y)
        if cost is not None:
            loss = loss + 1e-9 * cost()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def per_sample_seconds(benchmark: str, device: torch.device, batch: int = 16, repeats: int = 7,
                       channels_last: bool = False, compile: str = "1") -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per training sample of each kind of phase (float, fixed QAT, search with 8-bit or searched
    activations, PIT), per evaluated sample, and per sample of a 224-px ResNet-18 (Tiny ImageNet's first stage),
    at the profile's batch size, memory format and compile mode (a smaller batch costs more per sample); and, in
    compile mode "net", the seconds each kind of phase spends compiling its network (empty otherwise: the
    quantizer's kernels compile once per process, in seconds)."""
    with quant.profile_compile(compile):
        return _measure(benchmark, device, batch, repeats, channels_last)


def _measure(benchmark: str, device: torch.device, batch: int, repeats: int,
             channels_last: bool) -> tuple[dict[str, float], dict[str, float]]:
    model, shape = models.build(datasets.MODELS[benchmark])
    x, y = torch.rand(batch, *shape, device=device), torch.zeros(batch, dtype=torch.long, device=device)
    cpu_x = x.cpu()
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    nets = {"float": (model.to(device, memory_format=layout), None)}
    for kind, space in (("qat", SearchSpace((8,), (8,))), ("search", SearchSpace((0, 2, 4, 8), (8,))),
                        ("search_act", SearchSpace((0, 2, 4, 8), (2, 4, 8)))):
        net = searchable(models.build(datasets.MODELS[benchmark])[0], space, cpu_x).to(device, memory_format=layout)
        nets[kind] = (net, None if kind == "qat" else (lambda net=net: net.cost("size")))
    pit = prunable(models.build(datasets.MODELS[benchmark])[0], cpu_x).to(device, memory_format=layout)
    nets["pit"] = (pit, lambda: pit.cost("params"))
    seconds, compiling = {}, {}
    for kind, (net, cost) in nets.items():
        step, compiling[kind] = _timed(_train_step(net, x, y, cost), repeats)
        seconds[kind] = step / batch
    with torch.no_grad():  # train_phase evaluates the network uncompiled
        seconds["eval"] = _timed(lambda: nets["search"][0].eval()(x), repeats)[0] / batch
    if benchmark == "tiny_imagenet":
        import torchvision

        big = torchvision.models.resnet18(num_classes=200).to(device)
        small = torch.rand(4, 3, 224, 224, device=device)
        step, compiling["pretrain"] = _timed(_train_step(big, small, y[:4], None), 1)
        seconds["pretrain"] = step / 4
    return seconds, compiling if quant.compile_mode() == "net" else {}


@dataclass(frozen=True)
class Estimate:
    """The pending work of one benchmark and the time it should take at most."""

    benchmark: str
    profile: str
    runs: int
    pending: int
    epochs: int
    seconds: float
    per_sample: dict[str, float]
    device: str
    processes: int = 1  # local processes training the runs at once (the warm-up trains alone, first)
    compile_seconds: float = 0.0  # of the total: compiling each phase's network (compile mode "net")
    # the recorded runs (with against_records): the training seconds their records state, each seed's warm-up
    # once, and what this estimate gives for the same runs trained one after another
    recorded_seconds: float = 0.0
    recorded_estimate: float = 0.0

    def line(self) -> str:
        against = ""
        if self.recorded_estimate:
            against = (f"; the {self.runs - self.pending} recorded runs took {_duration(self.recorded_seconds)} of "
                       f"training one after another, against {_duration(self.recorded_estimate)} estimated here "
                       f"({self.recorded_seconds / self.recorded_estimate:.2f}×)")
        if not self.pending:
            return f"{self.benchmark} ({self.profile}): all {self.runs} runs recorded, nothing to train{against}"
        ms = ", ".join(f"{k} {1000 * v:.2f}" for k, v in self.per_sample.items())
        where = self.device + (f" in {self.processes} processes" if self.processes > 1 else "")
        compiling = f", {_duration(self.compile_seconds)} of it compiling" if self.compile_seconds else ""
        return (f"{self.benchmark} ({self.profile}): {self.pending} of {self.runs} runs pending, {self.epochs:,} "
                f"epochs if every phase runs to its epoch cap; expect about {_duration(self.seconds)}{compiling} "
                f"on {where} "
                f"(early stopping can only shorten it; measured ms per sample at the profile's batch size: {ms}; "
                f"data loading not included){against}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _phases(config: RunConfig, prof: Profile) -> list[tuple[str, int]]:
    """(kind of step, epochs) of every phase of a run, at the profile's epoch caps."""
    method = methods.get(config.method)
    if config.method == "pit":
        return [("pit", prof.pit_search.epochs), ("float", prof.pit_finetune.epochs)]
    if method.space is None:
        return []
    search = "qat" if not method.searches else "search_act" if len(config.act_bits) > 1 else "search"
    return [(search if phase == "search" else "qat", getattr(prof, phase).epochs) for phase in method.phases]


def _warmups(prof: Profile) -> list[tuple[str, int]]:
    """(kind of step, epochs) of one training seed's warm-up."""
    return [("float", prof.warmup.epochs)] + ([("pretrain", prof.pretrain.epochs)] if prof.pretrain else [])


def recorded_seconds(records: list[dict]) -> float:
    """Training seconds the records state, summed over their phases; the warm-up every run of a seed shares counts
    once per seed."""
    warmups, seconds = {}, 0.0
    for record in records:
        for phase in record["phases"].values():
            if phase.get("shared"):
                warmups[record["config"].get("seed", 0)] = phase["seconds"] + phase.get("pretrain", {}).get("seconds", 0)
            else:
                seconds += phase["seconds"]
    return seconds + sum(warmups.values())


def estimate(benchmark: str, profile: str, configs: list[RunConfig], store: Store,
             per_sample: dict[str, float] | None = None, processes: int = 1,
             compiling: dict[str, float] | None = None, against_records: bool = False) -> Estimate:
    """The time the runs of `configs` not yet recorded take with every phase at its epoch cap (a profile without
    early stopping runs exactly these epochs), each training seed's warm-up included if not cached, and each phase's
    compilation (`compiling`, seconds per kind of phase); `processes` train the runs at once after the warm-ups
    (steps as long in each as measured here: small steps do not speed up with threads). `against_records`: also the
    recorded runs' training seconds beside this estimate of them, which checks the estimate on this machine."""
    prof = get_profile(profile, benchmark)
    device = store.torch_device()
    train, val, _ = SPLIT_SIZES[benchmark]
    pending, recorded = [], []
    for config in configs:
        (recorded if store.record_path(config).exists() else pending).append(config)
    recorded = recorded if against_records else []
    phases = [phase for c in pending for phase in _phases(c, prof)]
    warmup = [phase for seed in dict.fromkeys(c.seed for c in pending)  # one warm-up per training seed
              if not store.has_warmup(benchmark, profile, seed) for phase in _warmups(prof)]
    done = [phase for c in recorded for phase in _phases(c, prof)]
    done += [phase for _ in dict.fromkeys(c.seed for c in recorded) for phase in _warmups(prof)]
    if per_sample is None:
        per_sample, compiling = per_sample_seconds(benchmark, device, prof.batch_size,
                                                   channels_last=prof.channels_last, compile=prof.compile) \
            if phases or warmup or done else ({}, {})
    compiling = compiling or {}

    def seconds(of: list[tuple[str, int]]) -> float:
        return sum(epochs * (train * per_sample[kind] + val * per_sample["eval"]) for kind, epochs in of)

    def compile_seconds(of: list[tuple[str, int]]) -> float:
        return sum(compiling.get(kind, 0.0) for kind, _ in of)
    processes = max(1, min(processes, len(pending)))
    compile_total = compile_seconds(warmup) + compile_seconds(phases) / processes
    return Estimate(benchmark, profile, len(configs), len(pending), sum(e for _, e in phases + warmup),
                    seconds(warmup) + seconds(phases) / processes + compile_total, per_sample, str(device),
                    processes, compile_total, recorded_seconds([store.read_record(c) for c in recorded]),
                    seconds(done) + compile_seconds(done))

"""Experiments: training and measuring one run (run, compute), the shared warm-up, sweeps and lambda scans."""
from __future__ import annotations

import json
import math
import platform
import shutil
import subprocess
from dataclasses import asdict, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import compact
from . import data as datasets
from . import methods, quant
from .arch import Arch
from .config import RunConfig
from .graph import describe, searchable
from .pit import prunable
from .profiles import PROFILES, Profile, get_profile
from .search import SearchSpace, at_activation_bits
from .store import FLOAT_FORMAT, PIT_FORMAT, ROOT, Store, load_model, write_torch
from .train import Penalty, evaluate, train_phase

NOTEBOOKS = ("00_tour", "01_size_pareto", "02_training_time", "03_cost_model_ablation", "04_search_study")


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
    """The float model trained once per benchmark, profile and seed, shared by every method and lambda: the recorded
    float run's model where there is one (a fresh clone trains no warm-up, and a cache never overrides a record),
    else the cache's (trained in the same environment), else trained now (in the profile's compile mode) and
    cached."""
    with quant.profile_compile(get_profile(profile, benchmark).compile):
        return _warmup(benchmark, profile, seed, store)


def _warmup(benchmark: str, profile: str, seed: int, store: Store) -> tuple[torch.nn.Module, dict]:
    prof = get_profile(profile, benchmark)
    bench = store.benchmark(benchmark)
    recorded = RunConfig(benchmark, "float", profile=profile, seed=seed)
    record = store.read_record(recorded)
    if record is not None and store.model_path(recorded).exists():
        phase = {k: v for k, v in record["phases"]["warmup"].items() if k != "shared"}
        return load_model(record, store), phase
    torch.manual_seed(seed)
    model = bench.model()
    done = store.warmup_path(benchmark, profile, seed)
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
    write_torch(done, {"model": model.state_dict(), "phase": phase})
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
        store.write_record(config, compute(config, store))
        record = store.read_record(config)  # as a later call reads it (JSON lists, not tuples)
    return record


def compute(config: RunConfig, store: Store) -> dict:
    """Train and measure one run and return its record, without writing it (a remote worker returns it to the
    driver, which writes it), in its profile's compile mode unless JOINT_COMPILE names one. Checkpoints, the
    warm-up and PIT seeds go to the store's cache."""
    with quant.profile_compile(config.settings().compile):
        return _compute(config, store)


def _compute(config: RunConfig, store: Store) -> dict:
    prof, method = config.settings(), methods.get(config.method)
    bench = store.benchmark(config.benchmark)
    quant.track_kernels()  # the record says whether every quantizer kernel of this run ran compiled
    warm, warm_phase = warmup(config.benchmark, config.profile, config.seed, store)
    example = torch.stack([bench.val[i][0] for i in range(min(64, len(bench.val)))])  # real, un-augmented inputs
    record = {"key": store.key(config), "config": config.to_dict(), "profile_settings": _settings(prof),
              "data": bench.source, "data_identity": store.data_identity(config.benchmark),
              "phases": {"warmup": {**warm_phase, "shared": True}}}
    if method.seeded:
        seed_config = config.seed_config()
        seed_record = store.read_record(seed_config)
        if seed_record is None or not store.model_path(seed_config).exists():
            raise ValueError(f"the sequential run needs its PIT seed (method pit, lam={config.pit_lam:g}), which is "
                             f"not recorded with its model; run it first: python -m joint run --method pit --lam "
                             f"{config.pit_lam:g} --profile {config.profile}")
        record["seed"] = {"key": store.key(seed_config), "pit_lam": config.pit_lam}
        start = load_model(seed_record, store)  # the recorded PIT model: a fresh clone has it
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
    write_torch(store.model_path(config), result.pop("model"))
    record.update(result)
    record["versions"] = {"joint": installed_version(), "commit": code_commit(), "torch": torch.__version__,
                          "python": platform.python_version()}
    record["environment"] = environment(store.torch_device())
    return record


def environment(device: torch.device) -> dict:
    """What changes a run's last bits besides its config: the processor, threads, device, whether the quantizer ran
    compiled, and (only where it did) whether each training step ran compiled whole."""
    whole = {"compiled_whole": True} if quant.compile_mode() == "net" else {}
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "device": str(device),
            "compiled_quantizer": quant.compiled(), **whole}


def cpu_model() -> str:
    """The processor's model name (its vector units decide the last bits of a CPU run), as the OS reports it."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine() or "unknown"


def code_commit() -> str:
    """The git commit of the code that trains, "+changes" when joint/ differs from it; "unknown" outside a checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "joint") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def installed_version() -> str:
    """The joint version pip installed (pyproject.toml's), for the records; a source tree never installed says so."""
    try:
        return version("joint")
    except PackageNotFoundError:
        return "not installed"


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
    if "search" in phases and prof.search.compensate:
        net.compensate()
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


def remeasure(record: dict, store: Store) -> dict:
    """The test and validation accuracy of a record's committed model, measured again (no training)."""
    config = RunConfig.of(record["config"])
    return _accuracies(load_model(record, store), store.benchmark(config.benchmark), store)


def retrain(record: dict, store: Store, scratch: Path) -> dict:
    """The record's run trained again from its config in `scratch` (results and cache of its own, nothing written
    into `store`), from the same recorded warm-up and PIT seed; the record that training gives."""
    config = RunConfig.of(record["config"])
    fresh = replace(store, results=scratch / "results", cache=scratch / "cache", progress=store.progress)
    needed = [] if config.method == "float" else [RunConfig(config.benchmark, "float", profile=config.profile,
                                                            seed=config.seed)]
    if config.pit_lam is not None:
        needed.append(config.seed_config())
    for dependency in needed:
        for source, target in ((store.record_path(dependency), fresh.record_path(dependency)),
                               (store.model_path(dependency), fresh.model_path(dependency))):
            if source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    return compute(config, fresh)


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
    with quant.profile_compile(config.settings().compile):
        return _scan(config, store or Store())


def _scan(config: RunConfig, store: Store) -> dict:
    prof, bench = config.settings(), store.benchmark(config.benchmark)
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


class RunsFailed(ValueError):
    """Runs of a sweep that raised, one line each; every other run was trained and its record written."""

    def __init__(self, failures: dict[RunConfig, str], total: int):
        lines = [f"  {config.label()}: {(message.strip().splitlines() or ['no message'])[0]}"
                 for config, message in failures.items()]
        head = f"{len(failures)} of {total} runs failed (the other records are written):"
        super().__init__("\n".join([head, *lines]))


def sweep(configs: list[RunConfig], store: Store | None = None) -> list[dict]:
    """Records of every config; only the runs not recorded yet are trained (a killed sweep resumes). A run that
    raises does not stop the others: RunsFailed names every failed run at the end."""
    store = store or Store()
    pending = [c for c in configs if not store.record_path(c).exists()]
    recorded = {c: store.read_record(c) for c in configs if c not in pending}  # a damaged one: one line, nothing run
    bar = tqdm(total=len(configs), initial=len(configs) - len(pending), desc="runs", disable=not store.progress)
    records, failed = [], {}
    for config in configs:
        try:
            records.append(recorded[config] if config in recorded else run(config, store))
        except Exception as err:  # noqa: BLE001 - reported with the run named, after the other runs
            failed[config] = f"{type(err).__name__}: {err}" if not isinstance(err, ValueError) else str(err)
        if config in pending:
            bar.update(1)
    bar.close()
    if failed:
        raise RunsFailed(failed, len(configs))
    return records


def size_sweep(benchmark: str, profile: str, seed: int = 0) -> list[RunConfig]:
    """Every run of the size and training-time analyses: float, fixed w8a8/w4a8/w2a8, every searched method over
    the lambda grid, PIT over its grid, and the sequential baseline (each PIT seed times its MixPrec grid); then, for
    each of the profile's repeat seeds, float, the fixed baselines and joint at its repeat lambdas again."""
    prof = get_profile(profile, benchmark)
    configs = [RunConfig(benchmark, m, profile=profile, seed=seed) for m in ("float", *methods.FIXED)]
    for m in methods.SEARCHED:
        configs += [RunConfig(benchmark, m, lam, "size", profile, seed) for lam in prof.size_grid(m)]
    configs += [RunConfig(benchmark, "pit", lam, "size", profile, seed) for lam in prof.pit_lambdas]
    seeds = prof.pit_lambdas if prof.seed_lambdas is None else prof.seed_lambdas
    configs += [RunConfig(benchmark, "sequential", lam, "size", profile, seed, pit_lam)
                for pit_lam in seeds for lam in prof.sequential_grid(pit_lam)]
    for repeat in prof.repeat_seeds:
        configs += [RunConfig(benchmark, m, profile=profile, seed=repeat) for m in ("float", *methods.FIXED)]
        configs += [RunConfig(benchmark, "joint", lam, "size", profile, repeat) for lam in prof.repeat_lambdas]
    return list(dict.fromkeys(configs))


ABLATION_COSTS = ("size", "bitops", "mpic", "ne16")


def cost_sweep(benchmark: str, profile: str, seed: int = 0) -> list[RunConfig]:
    """Every run of the cost-model ablation: the fixed w8a8/w4a8/w2a8 baselines, and joint searched with each
    cost model over the lambda grid, each with its target's activation precisions (MPIC: 2/4/8, others: 8)."""
    prof = get_profile(profile, benchmark)
    configs = [RunConfig(benchmark, m, profile=profile, seed=seed) for m in methods.FIXED]
    configs += [RunConfig(benchmark, "joint", lam, cost, profile, seed) for cost in ABLATION_COSTS
                for lam in prof.grid(cost)]
    return configs


def study_sweep(benchmark: str, profile: str, seed: int = 0) -> list[RunConfig]:
    """Every run of the search study: w8a8 (the reference for the first search epochs); joint and MixPrec at each
    study lambda with the search as profiled and with each variant (a variant that does not change MixPrec gives
    its plain run); EdMIPS and PIT -> MixPrec (with its PIT seed) as profiled and at the chosen variant, so that the
    joint points meet every size baseline trained with the same settings. Empty for a profile without a study."""
    prof = get_profile(profile, benchmark)
    if not prof.study_lambdas:
        return []
    configs = [RunConfig(benchmark, "w8a8", profile=profile, seed=seed)]
    for variant in (None, *prof.study_variants):
        configs += [RunConfig(benchmark, m, lam, "size", profile, seed, variant=variant)
                    for lam in prof.study_lambdas for m in ("joint", "mixprec")]
    pit_lam = (prof.seed_lambdas or prof.pit_lambdas)[0]
    configs.append(RunConfig(benchmark, "pit", pit_lam, "size", profile, seed))  # the sequential runs' seed
    for variant in dict.fromkeys((None, prof.study_choice)):
        configs += [RunConfig(benchmark, "edmips", lam, "size", profile, seed, variant=variant)
                    for lam in prof.study_lambdas]
        configs += [RunConfig(benchmark, "sequential", lam, "size", profile, seed, pit_lam, variant=variant)
                    for lam in prof.study_lambdas]
    return list(dict.fromkeys(configs))


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


def before_the_ramp(records: list[dict]) -> list[str]:
    """One line if searched runs among `records` were trained without the lambda ramp, the search default since the
    search study (docs/search_study.md): the committed cpu records predate it. Empty otherwise."""
    searched = [r for r in records if "search" in r["phases"]]
    unramped = [r for r in searched if not r["profile_settings"]["search"].get("lam_ramp")]
    if not unramped:
        return []
    ramping = ", ".join(name for name, prof in PROFILES.items() if prof.search.lam_ramp)
    return [f"note: {len(unramped)} of these {len(searched)} searched runs were trained without the lambda ramp, the "
            f"search default of the profiles {ramping} since the search study (docs/search_study.md); they predate it"]


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

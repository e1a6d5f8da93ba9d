"""Command line: python -m joint {info,cost,run,scan,sweep,arch,export,verify,estimate,reproduce}."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from . import cost as cost_models
from . import experiments, methods, models, profiles
from .arch import Arch
from .config import RunConfig
from .graph import describe, searchable
from .search import SearchSpace
from .store import ROOT, Store, load_model, project_path, read_record_file, shown

UNITS = {"size": "bits", "bitops": "bit-ops", "mpic": "cycles", "ne16": "cycles"}


def info(name: str, as_json: bool) -> str:
    model, shape = models.build(name)
    layers = describe(model, torch.zeros(1, *shape))
    totals = {"parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
              "weights": sum(layer.weights for layer in layers), "macs": sum(layer.macs for layer in layers)}
    if as_json:
        rows = [{"name": s.name, "kind": s.kind, "cin": s.cin, "cout": s.cout, "kernel": list(s.kernel),
                 "stride": list(s.stride), "groups": s.groups, "out_hw": list(s.out_hw), "weights": s.weights,
                 "macs": s.macs} for s in layers]
        return json.dumps({"model": name, "input": list(shape), "layers": rows, **totals}, indent=1)
    header = f"{'layer':<18}{'kind':<8}{'cin':>6}{'cout':>6}{'kernel':>8}{'stride':>8}{'groups':>8}" \
             f"{'out HxW':>9}{'weights':>12}{'MACs':>15}"
    lines = [f"{name}: input {'x'.join(map(str, shape))}", header]
    for s in layers:
        lines.append(f"{s.name:<18}{s.kind:<8}{s.cin:>6}{s.cout:>6}{'x'.join(map(str, s.kernel)):>8}"
                     f"{'x'.join(map(str, s.stride)):>8}{s.groups:>8}{'x'.join(map(str, s.out_hw)):>9}"
                     f"{s.weights:>12,}{s.macs:>15,}")
    lines.append(f"total: {totals['parameters']:,} trainable parameters, {totals['weights']:,} conv/linear weights, "
                 f"{totals['macs']:,} MACs")
    return "\n".join(lines)


def cost(args: argparse.Namespace) -> str:
    if args.arch:
        arch, label = Arch.load(args.arch), args.arch
    elif args.model:
        model, shape = models.build(args.model)
        space = SearchSpace((args.wbits,), (args.abits,))
        arch = searchable(model, space, torch.zeros(1, *shape)).arch()
        label = f"{args.model} w{args.wbits}a{args.abits}"
    else:
        raise ValueError("give a MODEL (with --wbits/--abits) or --arch FILE.json")
    names = [args.cost] if args.cost else sorted(cost_models.MODELS)
    lines = []
    for name in names:
        value = arch.cost(name)
        extra = f" ({value / 8000:,.3f} kB)" if name == "size" else ""
        lines.append(f"{label} {name}: {value:,.2f} {UNITS.get(name, '')}{extra}".rstrip())
    return "\n".join(lines)


def _store(args: argparse.Namespace) -> Store:
    return Store(results=project_path(args.results),
                 cache=project_path(args.cache), progress=not args.quiet,
                 data_root=project_path(args.data), device=args.device,
                 download=not args.no_download)


def _bits(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ValueError(f"act_bits must be comma-separated integers such as 2,4,8; got {text!r}") from None


def run(args: argparse.Namespace) -> str:
    config = RunConfig(args.benchmark, args.method, args.lam, args.cost, args.profile, args.seed,
                       args.pit_lam, _bits(args.act_bits), args.variant)
    store = _store(args)
    record = experiments.run(config, store)
    m = record["metrics"]
    cycles = "" if m["mpic_cycles"] is None else f", {m['mpic_cycles']:,.0f} MPIC / {m['ne16_cycles']:,.0f} NE16 cycles"
    return "\n".join([f"{config.method} lam={config.lam:g} ({config.cost}) on {config.benchmark} ({config.profile}): "
                      f"test accuracy {100 * m['test_accuracy']:.2f} %, size {m['size_kb']:.3f} kB{cycles} -> "
                      f"{shown(store.record_path(config))}", *experiments.warnings_of([record])])


def scan(args: argparse.Namespace) -> str:
    """The search phase of one run per lambda: the size and cost each lambda reaches, to choose a grid (cost ratio:
    the search's cost over the all-8-bit network's; for PIT, the parameters over the unpruned network's)."""
    store = _store(args)
    lams = _floats(args.lams, "lams")
    header = f"{'lambda':>8}{'size kB':>10}{'cost ratio':>12}{'pruned %':>10}{'val acc %':>11}{'epochs':>8}{'s':>8}"
    configs = [RunConfig(args.benchmark, args.method, lam, args.cost, args.profile, args.seed,
                         act_bits=_bits(args.act_bits), variant=args.variant) for lam in lams]
    for config in configs:
        experiments.check_scannable(config)
    print(f"scan of {args.method} ({args.cost}) on {args.benchmark} ({args.profile}), search phase only:\n{header}",
          flush=True)
    for lam, config in zip(lams, configs):  # printed as each search ends: a scan takes a while
        row = experiments.scan(config, store)
        print(f"{lam:>8g}{row['size_kb']:>10.2f}{row['cost_ratio']:>12.3f}{row['pruned_%']:>10.1f}"
              f"{row['val_acc_%']:>11.2f}{row['epochs']:>8}{row['seconds']:>8.0f}", flush=True)
        for text in row["warnings"]:
            print(f"  warning: {text}", flush=True)
    return f"{len(configs)} searches; python -m joint run with the same settings resumes each after its search"


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers such as 0.5,2,10; got {text!r}") from None


def _recorded(args: argparse.Namespace) -> tuple[dict, Store]:
    """The record a command names: by --key, or by its settings; a run that is not recorded is one line."""
    store = _store(args)
    runs = store.results / args.profile / "runs"
    if args.key:
        record = read_record_file(runs / f"{args.key}.json")
        if record is None:
            raise ValueError(f"no record with key {args.key!r} in {shown(runs)}")
        return record, store
    config = RunConfig(args.benchmark, args.method, args.lam, args.cost, args.profile, args.seed,
                       args.pit_lam, _bits(args.act_bits), args.variant)
    record = store.read_record(config)
    if record is None:
        recorded = sorted({r["config"]["lam"] for r in map(read_record_file, sorted(runs.glob("*.json")))
                           if r["config"]["method"] == config.method and r["config"]["cost"] == config.cost})
        lams = ", ".join(f"{lam:g}" for lam in recorded) or "none"
        raise ValueError(f"no recorded run of {config.method} lam={config.lam:g} ({config.cost}) on "
                         f"{config.benchmark} in {shown(runs)}; recorded lambdas of this method and cost "
                         f"model: {lams}")
    return record, store


def arch_table(args: argparse.Namespace) -> str:
    """Per layer of a recorded run: channels kept per precision, activation bits, kB, MACs, MPIC and NE16 cycles."""
    record, _ = _recorded(args)
    if record["arch"] is None:
        raise ValueError(f"run {record['key']} ({record['config']['method']}) has no architecture: it is the float "
                         f"model")
    rows = Arch.from_dict(record["arch"]).summary()
    cycles = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    lines = [f"{record['config']['method']} lam={record['config']['lam']:g} ({record['config']['cost']}) on "
             f"{record['config']['benchmark']}: test accuracy {100 * record['metrics']['test_accuracy']:.2f} %, "
             f"{record['metrics']['size_kb']:.2f} kB (run {record['key']})",
             f"{'layer':<14}{'kind':<7}{'in':>6}{'kept':>9}  {'bits:channels':<22}{'act':>4}{'kB':>9}{'MACs':>12}"
             f"{'MPIC':>12}{'NE16':>10}"]
    for r in rows:
        act = "-" if r["act_bits"] is None else str(r["act_bits"])
        lines.append(f"{r['layer']:<14}{r['kind']:<7}{r['inputs']:>6}{r['kept']:>5}/{r['channels']:<3}  "
                     f"{r['bits']:<22}{act:>4}{r['kB']:>9.3f}{r['macs']:>12,}{cycles(r['mpic']):>12}"
                     f"{cycles(r['ne16']):>10}")
    return "\n".join(lines)


def export_command(args: argparse.Namespace) -> str:
    """Export a recorded quantized run to ONNX, with per-channel mixed precision."""
    from .export import export_onnx, onnx_sizes

    record, store = _recorded(args)
    if record["space"] is None:
        raise ValueError(f"run {record['key']} ({record['config']['method']}) is a float model; export takes a "
                         f"quantized run (joint, mixprec, edmips, w8a8, w4a8, w2a8, sequential)")
    out = Path(args.out or f"{record['config']['method']}-{record['key']}.onnx")
    sizes = onnx_sizes(export_onnx(load_model(record, store), out, args.opset))
    return (f"{shown(out)}: {out.stat().st_size:,} bytes; integer weights {sizes['weights']:,} bytes "
            f"(the architecture: {record['metrics']['size_kb'] * 1000:,.0f}), their scales {sizes['weight_scales']:,}, "
            f"biases {sizes['biases']:,}, other constants {sizes['other']:,}; opset {args.opset}; recorded test "
            f"accuracy {100 * record['metrics']['test_accuracy']:.2f} %")


def verify(args: argparse.Namespace) -> str:
    """One recorded run checked against its record: trained again from its config in a scratch folder, or, with
    --reload, its committed model measured again; every metric side by side."""
    record, store = _recorded(args)
    label, started = RunConfig.of(record["config"]).label(), time.perf_counter()
    print(f"verify {args.key}: {label}, " + ("measuring its committed model again" if args.reload else
                                              "training it again from its config in a scratch folder"), flush=True)
    if args.reload:
        now = experiments.remeasure(record, store)
    else:
        with tempfile.TemporaryDirectory(prefix="joint-verify-") as scratch:
            now = experiments.retrain(record, store, Path(scratch))["metrics"]
    lines = [f"{'metric':<18}{'recorded':>16}{'now':>16}{'difference':>14}"]
    differ = 0
    for name, value in now.items():
        recorded = record["metrics"].get(name)
        if not all(isinstance(v, (int, float)) for v in (recorded, value)):
            continue
        differ += recorded != value
        lines.append(f"{name:<18}{recorded:>16.6g}{value:>16.6g}{value - recorded:>+14.3g}")
    compared = len(lines) - 1
    lines.append((f"all {compared} metrics equal" if not differ else f"{differ} of {compared} metrics differ") +
                 f" ({time.perf_counter() - started:.0f} s; a record trained "
                 f"on another CPU kind, thread count or compile mode differs in its last bits: see the record's "
                 f"environment {record.get('environment')})")
    return "\n".join(lines)


SWEEPS = {"size": experiments.size_sweep, "cost": experiments.cost_sweep, "study": experiments.study_sweep}


def sweep(args: argparse.Namespace) -> str:
    configs = SWEEPS[args.analysis](args.benchmark, args.profile, args.seed)
    store = _store(args)
    pending = sum(not store.record_path(c).exists() for c in configs)
    started = time.perf_counter()
    records = experiments.sweep(configs, store)
    return "\n".join([f"{len(configs)} runs of the {args.analysis} analysis ({pending} trained now, "
                      f"{len(configs) - pending} already recorded) in {time.perf_counter() - started:.1f} s -> "
                      f"{shown(store.results / args.profile / 'runs')}", *experiments.warnings_of(records)])


def _benchmarks(args: argparse.Namespace) -> tuple[str, ...]:
    """The benchmarks to run: --benchmarks (space- or comma-separated) or every one of the profile."""
    named = tuple((args.benchmarks or "").replace(",", " ").split())
    chosen = named or profiles.get_profile(args.profile).benchmarks
    for name in chosen:
        profiles.get_profile(args.profile, name)  # one line if the profile does not cover it
    return chosen


def _all_runs(benchmark: str, profile: str) -> list[RunConfig]:
    """Every run the notebooks of one benchmark read, each once."""
    return list(dict.fromkeys(config for sweep in SWEEPS.values() for config in sweep(benchmark, profile)))


def estimate(args: argparse.Namespace, executor: str | None = None) -> str:
    """The estimate line of every benchmark, for `executor` (default: the one `reproduce` uses by default)."""
    from . import estimate as estimates
    from . import executors

    store = _store(args)
    executor = executor or executors.default_executor(args.profile, store.torch_device())
    processes = executors.side_by_side(executor, getattr(args, "workers", None))
    analysis = getattr(args, "analysis", None)  # the estimate command's; reproduce trains every analysis
    runs = (lambda b: SWEEPS[analysis](b, args.profile)) if analysis else (lambda b: _all_runs(b, args.profile))
    lines = [estimates.estimate(b, args.profile, runs(b), store, processes=processes,
                                against_records=args.command == "estimate").line()
             for b in _benchmarks(args)]
    return "\n".join(lines)


def _relative(path: str) -> str:
    """A directory as the notebooks receive it: relative to the repository root, so no machine path is printed."""
    return os.path.relpath(project_path(path), ROOT)


def _execute_notebook(source: Path, target: Path, benchmark: str, args: argparse.Namespace) -> None:
    """Execute one notebook with papermill into `target` (written whole or not at all), its parameters from `args`."""
    import nbformat
    import papermill

    partial = target.with_name(target.name + ".partial.ipynb")
    print(f"executing {source.name} for {benchmark} -> {shown(target)}", flush=True)
    try:
        executed = papermill.execute_notebook(
            str(source), str(partial), cwd=str(ROOT), progress_bar=False,
            parameters={"benchmark": benchmark, "profile": args.profile,
                        **{f"{name}_dir": _relative(getattr(args, name))
                           for name in ("results", "figures", "cache", "data")}})
    except papermill.PapermillExecutionError as err:
        message = (str(err.evalue).strip().splitlines() or [""])[0]
        raise ValueError(f"notebook {source.name} failed for {benchmark} at In [{err.exec_count}]: {err.ename}: "
                         f"{message} (the executed part: {shown(partial)})") from None
    executed.metadata.papermill.update(input_path=shown(source), output_path=shown(target))  # no machine paths
    nbformat.write(without_volatile(executed), str(partial))
    partial.replace(target)


VOLATILE = ("start_time", "end_time", "duration")  # papermill's clock readings, per notebook and per cell


def without_volatile(notebook):
    """An executed notebook less what changes from one execution to the next (clock readings, the injected cell's
    random id, progress-bar widgets, where the kernel happened to split a stream), so that re-executing on the same
    records rewrites the same file."""
    for entry in VOLATILE:
        notebook.metadata.get("papermill", {}).pop(entry, None)
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for entry in VOLATILE:
            cell.metadata.get("papermill", {}).pop(entry, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        outputs = []
        for output in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                continue
            if outputs and output.output_type == "stream" and outputs[-1].output_type == "stream" \
                    and outputs[-1].name == output.name:
                outputs[-1].text += output.text
                continue
            outputs.append(output)
        if "outputs" in cell:
            cell.outputs = outputs
    return notebook


def reproduce(args: argparse.Namespace) -> str:
    """Estimate what is pending, train it (here, in local processes or on a Dask cluster), then execute every
    notebook with papermill into results/<profile>/notebooks/ and say where the outputs are. With the local
    executor the notebooks run as many at a time as it has processes, each kernel single-threaded (the tour trains
    beside the analyses)."""
    from . import executors

    benchmarks = _benchmarks(args)
    store = _store(args)
    executor = args.executor or executors.default_executor(args.profile, store.torch_device())
    executors.check_settings(executor, args.workers)
    where = {"dask": " (measured on this driver machine, not on the Dask workers)",
             "local": " (step times measured in this process; the runs train in single-threaded processes)"}
    where = where.get(executor, "")
    print(estimate(args, executor) + where, flush=True)
    started = time.perf_counter()
    for benchmark in benchmarks:
        records = executors.run_sweep(_all_runs(benchmark, args.profile), store, executor, args.scheduler,
                                       args.workers)
        for line in experiments.warnings_of(records):
            print(line, flush=True)
    out_dir = project_path(args.results) / args.profile / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(ROOT / "notebooks" / f"{name}.ipynb", out_dir / f"{name}-{benchmark}.ipynb", benchmark)
            for benchmark in benchmarks for name in experiments.NOTEBOOKS]
    kernels = executors.side_by_side(executor, args.workers)
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if kernels > 1 else {}
    with executors.child_environment(**threads), ThreadPoolExecutor(kernels) as pool:
        list(pool.map(lambda job: _execute_notebook(*job, args), jobs))
    results = project_path(args.results) / args.profile
    figures = project_path(args.figures) / args.profile
    lines = [f"profile {args.profile}: every run and notebook done in {time.perf_counter() - started:.1f} s",
             f"  notebooks: {shown(out_dir)}", "  tables:"]
    lines += [f"    {shown(p)}" for p in sorted(results.glob("*/*.md"))]
    lines += ["  figures:"] + [f"    {shown(p)}" for p in sorted(figures.glob("*.png"))]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (a test parses every command the README and docs show with it)."""
    parser = argparse.ArgumentParser(prog="python -m joint", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="per-layer table of a reference model")
    p_info.add_argument("model", choices=sorted(models.MODELS))
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    p_cost = sub.add_parser("cost", help="cost of a uniform-precision model or of an Arch JSON file")
    p_cost.add_argument("model", nargs="?", choices=sorted(models.MODELS))
    p_cost.add_argument("--wbits", type=int, default=8, help="weight bits of every channel (default 8)")
    p_cost.add_argument("--abits", type=int, default=8, help="activation bits (default 8)")
    p_cost.add_argument("--arch", help="an Arch saved as JSON (instead of MODEL)")
    p_cost.add_argument("--cost", help="cost model (default: all of them); registered: "
                        + ", ".join(sorted(cost_models.MODELS)))
    for name, help_text in (("run", "train and record one run (skipped if recorded)"),
                            ("arch", "per-layer table of a recorded run's architecture"),
                            ("export", "write a recorded quantized run as ONNX (per-channel int8/int4/int2)"),
                            ("scan", "the search phase of one run per lambda, to choose a grid (the runs resume "
                                     "after it)"),
                            ("sweep", "every run of an analysis that is not recorded yet"),
                            ("verify", "train one recorded run again in a scratch folder (or --reload: measure its "
                                       "model again) and compare every metric with its record"),
                            ("estimate", "how long the pending runs of a profile take at most, measured here, "
                                         "and the recorded runs' training time beside their estimate"),
                            ("reproduce", "train what is pending, execute every notebook (what make reproduce does)")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--profile", default="quick", help=f"one of {', '.join(profiles.PROFILES)}")
        p.add_argument("--results", default="results", help="results directory, relative to the repository root")
        p.add_argument("--cache", default=".cache", help="checkpoint cache, relative to the repository root")
        p.add_argument("--data", default="data", help="datasets directory, relative to the repository root")
        p.add_argument("--no-download", action="store_true", help="fail with a message if a dataset is missing")
        p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if name in ("estimate", "reproduce"):
            p.add_argument("--benchmarks", help="space- or comma-separated subset of the profile's benchmarks")
        if name == "estimate":
            p.add_argument("--analysis", choices=sorted(SWEEPS),
                           help="the runs of one analysis only (default: every run the notebooks read)")
            continue
        if name == "verify":
            p.add_argument("key", help="the record's key (its file name in results/<profile>/runs/)")
            p.add_argument("--reload", action="store_true", help="only measure the committed model again")
            continue
        if name == "reproduce":
            p.add_argument("--figures", default="figures", help="figures directory (default: figures)")
            p.add_argument("--executor",
                           help="serial (this process, every thread), local (single-threaded processes here, one "
                                "per core), or dask (with --scheduler); default: the profile's on a CPU (local for "
                                "quick, else serial), serial on a GPU")
            p.add_argument("--workers", type=int,
                           help="local only: number of processes (default: one per core, as far as memory holds at "
                                "1.5 GiB each)")
            p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
            continue
        p.add_argument("--benchmark", default="digits", help="benchmark (default: digits)")
        p.add_argument("--seed", type=int, default=0)
        if name == "sweep":
            p.add_argument("--analysis", choices=sorted(SWEEPS), default="size",
                           help="size: the size and training-time analyses; cost: the cost-model ablation; study: the "
                                "search study (docs/search_study.md)")
        if name == "scan":
            p.add_argument("--method", default="joint", help="joint, mixprec, edmips or pit")
            p.add_argument("--lams", required=True, help="comma-separated lambdas, e.g. 0.5,2,10")
            p.add_argument("--cost", default="size", help="cost model of the search")
            p.add_argument("--act-bits", help="activation precisions, e.g. 2,4,8 (default: the cost model's target)")
        if name in ("arch", "export"):
            p.add_argument("--method", default="joint", help=", ".join(methods.METHODS))
            p.add_argument("--lam", type=float, default=0.0, help="lambda of the run")
            p.add_argument("--cost", default="size", help="cost model of the run's search")
            p.add_argument("--act-bits", help="activation precisions of the run (default: the cost model's target)")
            p.add_argument("--pit-lam", type=float, help="sequential only: the PIT lambda of its seed")
            p.add_argument("--key", help="the run's record key (instead of its settings)")
        if name in ("run", "scan", "arch", "export"):
            p.add_argument("--variant", help="a change of the profile's search phase: "
                           + ", ".join(profiles.SEARCH_VARIANTS) + ", or several joined by '+' (default: none)")
        if name == "export":
            p.add_argument("--out", help="ONNX file to write (default: <method>-<key>.onnx)")
            p.add_argument("--opset", type=int, default=25, help="ONNX opset (default 25, which has int2)")
        if name == "run":
            p.add_argument("--method", required=True, help=", ".join(methods.METHODS))
            p.add_argument("--lam", type=float, default=0.0, help="lambda (searched methods only)")
            p.add_argument("--cost", default="size", help="cost model of the search; registered: "
                           + ", ".join(sorted(cost_models.MODELS)))
            p.add_argument("--act-bits", help="activation precisions, e.g. 2,4,8 (default: the cost model's target)")
            p.add_argument("--pit-lam", type=float, help="sequential only: the PIT lambda of its pruned seed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"info": lambda a: info(a.model, a.json), "cost": cost, "run": run, "scan": scan, "sweep": sweep,
                "arch": arch_table, "export": export_command, "verify": verify,
                "estimate": estimate, "reproduce": reproduce}
    try:
        print(commands[args.command](args))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import joint
from joint import Arch, experiments, profiles, quant
from joint.__main__ import main
from joint.config import RunConfig
from joint.experiments import code_commit, run, size_sweep, sweep, without_timing
from joint.store import ROOT, Store, load_model, read_json
from joint.train import evaluate


def store(tmp_path, name):
    return Store(results=tmp_path / name / "results", cache=tmp_path / name / "cache", progress=False)


@pytest.mark.parametrize("kwargs,message", [
    (dict(benchmark="mnist", method="joint"),
     "unknown benchmark 'mnist'; allowed: cifar10, digits, speech_commands, tiny_imagenet"),
    (dict(benchmark="digits", method="pit2"), "unknown method 'pit2'; allowed: joint, mixprec"),
    (dict(benchmark="digits", method="joint", profile="fast"),
     "unknown profile 'fast'; allowed: smoke, quick, cpu, cpu_long, paper"),
    (dict(benchmark="digits", method="joint", cost="energy"), "unknown cost model 'energy'"),
    (dict(benchmark="digits", method="joint", lam=-1.0), "lam must be a finite number >= 0; got -1.0"),
    (dict(benchmark="digits", method="w8a8", lam=1.0), "lam must be 0 for method 'w8a8'"),
    (dict(benchmark="digits", method="joint", seed=-1), "seed must be an integer >= 0; got -1"),
    (dict(benchmark="digits", method="joint", cost="ne16", act_bits=(4, 8)),
     r"act_bits \(4, 8\) are not all supported by cost model 'ne16'; allowed: a subset of \(8,\)"),
    (dict(benchmark="digits", method="joint", act_bits=(0, 8)), "act_bits must not contain 0"),
    (dict(benchmark="digits", method="joint", act_bits=(3, 5)), r"act_bits \(3, 5\) are not all supported by cost "
                                                               r"model 'mpic', which every record measures; allowed: "
                                                               r"a subset of \(2, 4, 8\)"),
    (dict(benchmark="digits", method="w4a8", act_bits=(4,)), r"act_bits of method 'w4a8' are fixed to \(8,\)"),
    (dict(benchmark="digits", method="pit", act_bits=(8,)), "act_bits must be None for method 'pit'"),
    (dict(benchmark="digits", method="joint", variant="fast"), "variant 'fast': unknown part 'fast'; allowed: "
                                                               "compensate, hard, gumbel"),
    (dict(benchmark="digits", method="pit", variant="hard"), "variant must be None for method 'pit'"),
])
def test_bad_run_config_is_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**kwargs)


def test_activation_precisions_default_to_the_cost_models_target_and_are_spelled_out_in_the_key():
    assert RunConfig("digits", "joint", 1.0, "mpic").act_bits == (2, 4, 8)
    assert RunConfig("digits", "joint", 1.0, "ne16").act_bits == (8,)
    spelled = RunConfig("digits", "joint", 1.0, "mpic", act_bits=[8, 2, 4])
    assert RunConfig("digits", "joint", 1.0, "mpic").key() == spelled.key()
    assert RunConfig("digits", "joint", 1.0, "mpic", act_bits=(8,)).space().act_bits == (8,)
    assert RunConfig("digits", "w2a8").space() == joint.SearchSpace((2,), (8,))
    assert RunConfig("digits", "float").act_bits is None and RunConfig("digits", "float").space() is None


def test_cost_sweep_trains_joint_with_every_cost_model_over_its_own_grid():
    configs = experiments.cost_sweep("digits", "quick")
    prof = profiles.get_profile("quick")
    for name in experiments.ABLATION_COSTS:
        mine = [c for c in configs if c.method == "joint" and c.cost == name]
        assert tuple(c.lam for c in mine) == prof.grid(name)
        assert {c.act_bits for c in mine} == {(2, 4, 8) if name == "mpic" else (8,)}
    assert [c.method for c in configs if c.method != "joint"] == ["w8a8", "w4a8", "w2a8"]
    assert prof.grid("size") == prof.lambdas and prof.grid("ne16") != prof.lambdas
    size = {c.key() for c in size_sweep("digits", "quick")}
    assert all(c.key() in size for c in configs if c.cost == "size")  # shared with the size analysis


def test_a_pit_seed_with_its_own_grid_is_searched_over_it_and_the_others_over_the_shared_one(monkeypatch):
    quick = profiles.PROFILES["quick"]
    monkeypatch.setitem(profiles.PROFILES, "quick", replace(quick, seed_lambdas=(0.1, 0.4),
                                                            sequential_grids={0.1: (0.5, 0.7, 1.0, 2.0)}))
    pairs = [(c.pit_lam, c.lam) for c in size_sweep("digits", "quick") if c.method == "sequential"]
    assert pairs == [(0.1, 0.5), (0.1, 0.7), (0.1, 1.0), (0.1, 2.0), (0.4, 0.5), (0.4, 1.0), (0.4, 5.0)]


def test_repeat_seeds_train_the_fixed_baselines_and_the_repeat_lambdas_again_each_from_its_own_warm_up(monkeypatch):
    smoke = profiles.PROFILES["smoke"]
    once = size_sweep("digits", "smoke")
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, repeat_seeds=(1, 2), repeat_lambdas=(5.0,)))
    configs = size_sweep("digits", "smoke")
    assert configs[:len(once)] == once
    again = [(c.seed, c.method, c.lam) for c in configs[len(once):]]
    assert again == [(s, m, lam) for s in (1, 2) for m, lam in (("float", 0.0), ("w8a8", 0.0), ("w4a8", 0.0),
                                                                    ("w2a8", 0.0), ("joint", 5.0))]


def doc_block(marker):
    """The python code block of the README or docs/ that contains `marker`."""
    root = Path(__file__).resolve().parents[1]
    text = "".join(page.read_text() for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    return next(block.split("\n", 1)[1] for block in text.split("```python")[1:] if marker in block.split("```")[0]
                ).split("```")[0]


def test_the_documented_cost_model_from_a_csv_table_steers_a_search(tmp_path, monkeypatch):
    monkeypatch.setitem(joint.cost.MODELS, "my_mcu", None)  # so that the registration is undone after the test
    monkeypatch.setitem(joint.cost.TARGET_ACT_BITS, "my_mcu", None)
    (tmp_path / "my_mcu.csv").write_text("act_bits,weight_bits,macs_per_cycle\n8,2,10\n8,4,3.3\n8,8,1\n")
    monkeypatch.chdir(tmp_path)
    exec(doc_block('register("my_mcu"'), {})
    s = store(tmp_path, "a")
    light, heavy = (run(RunConfig("digits", "joint", lam, "my_mcu", profile="smoke"), s) for lam in (0.0, 200.0))
    for record in (light, heavy):
        arch = Arch.from_dict(record["arch"])
        assert record["metrics"]["search_cost"] == pytest.approx(arch.cost("my_mcu"))
        all_8_bit = sum(layer.shape.macs for layer in arch.layers.values())  # 1 MAC per cycle at (8, 8)
        assert record["metrics"]["cost_reference"] == pytest.approx(all_8_bit)
    assert heavy["metrics"]["search_cost"] < 0.5 * light["metrics"]["search_cost"]


def test_notebook_parameters_are_checked():
    with pytest.raises(ValueError,
                       match="parameter profile='huge' is not a profile; allowed: smoke, quick, cpu, cpu_long, paper"):
        experiments.check_parameters("digits", "huge")
    with pytest.raises(ValueError, match="parameter benchmark='digits' is not a benchmark of profile 'paper'; "
                                         "allowed: cifar10, speech_commands, tiny_imagenet"):
        experiments.check_parameters("digits", "paper")
    with pytest.raises(ValueError, match="parameter benchmark=3 is not a benchmark of profile 'smoke'"):
        experiments.check_parameters(3, "smoke")
    with pytest.raises(ValueError, match="parameter results_dir=None must be a non-empty path string"):
        experiments.check_parameters("digits", "smoke", results_dir=None)


def test_the_code_commit_names_uncommitted_changes_to_the_library_and_a_tree_outside_git(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "ROOT", tmp_path)
    assert code_commit() == "unknown"  # not a git checkout
    (tmp_path / "joint").mkdir()
    (tmp_path / "joint" / "train.py").write_text("lr = 1e-3\n")
    (tmp_path / "README.md").write_text("notes\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "code"]):
        subprocess.run(git + args, check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "README.md").write_text("more notes\n")
    assert code_commit() == head  # a change outside joint/ trains nothing differently
    (tmp_path / "joint" / "train.py").write_text("lr = 3e-3\n")
    assert code_commit() == head + "+changes"


def test_same_config_and_seed_give_an_identical_record(tmp_path):
    config = RunConfig("digits", "joint", 2.0, profile="smoke")
    first, second = run(config, store(tmp_path, "a")), run(config, store(tmp_path, "b"))
    assert without_timing(first) == without_timing(second)
    assert set(first) == {"key", "config", "profile_settings", "data", "data_identity", "space", "phases", "metrics",
                          "arch", "warnings", "versions", "environment"}
    assert first["data"] == "scikit-learn's bundled digits"
    assert first["environment"]["cpu"] == experiments.cpu_model() and first["versions"]["commit"] == code_commit()
    assert set(first["phases"]) == {"warmup", "search", "finetune"}
    assert first["metrics"]["size_kb"] == Arch.from_dict(first["arch"]).size_kb()


def test_sweep_runs_only_what_is_missing(tmp_path):
    s = store(tmp_path, "a")
    configs = [RunConfig("digits", "w8a8", profile="smoke"), RunConfig("digits", "float", profile="smoke")]
    sweep(configs[:1], s)
    path = s.record_path(configs[0])
    stamp = path.stat().st_mtime_ns
    records = sweep(configs, s)
    assert path.stat().st_mtime_ns == stamp
    assert [r["config"]["method"] for r in records] == ["w8a8", "float"]


def sweep_command(root):
    return [sys.executable, "-m", "joint", "sweep", "--profile", "smoke", "--quiet",
            "--results", str(root / "results"), "--cache", str(root / "cache")]


def test_killed_sweep_resumes_without_losing_or_duplicating_runs(tmp_path):
    expected = len(size_sweep("digits", "smoke"))
    runs = tmp_path / "k" / "results" / "smoke" / "runs"
    checkpoints = tmp_path / "k" / "cache" / "smoke" / "checkpoints"
    proc = subprocess.Popen(sweep_command(tmp_path / "k"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = len(list(runs.glob("*.json"))) if runs.exists() else 0
        if done >= 5 and checkpoints.exists() and list(checkpoints.glob("*.pt")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in runs.glob("*.json")}
    assert 5 <= len(finished) < expected
    subprocess.run(sweep_command(tmp_path / "k"), check=True, capture_output=True)
    assert len(list(runs.glob("*.json"))) == expected and not list(runs.glob("*.tmp"))
    # the runs trained after the kill (one of them from its checkpoint) against the same runs uninterrupted, here
    # (a record does not depend on the process that trains it: test_a_record_does_not_depend_on_what_ran_before_it)
    killed, straight = store(tmp_path, "k"), store(tmp_path, "u")
    configs = [c for c in size_sweep("digits", "smoke")
               if killed.record_path(c).name not in finished or c.method == "pit"]  # PIT seeds the sequential runs
    assert [without_timing(killed.read_record(c)) for c in configs] == \
        [without_timing(r) for r in sweep(configs, straight)]


SWEEP_COMPILATIONS = """
import sys, torch
from joint import experiments as e, quant
s = e.Store(results=sys.argv[1], cache=sys.argv[2], progress=False)
e.sweep([e.RunConfig(**c) for c in eval(sys.argv[3])], s)
codes = [kernel._torchdynamo_orig_callable.__code__ for kernel in quant._kernels.values()]
print({code.co_name: len(torch._C._dynamo.eval_frame._debug_get_cache_entry_list(code)) for code in codes})
"""
SWEEP_RUNS = [RunConfig("digits", "joint", lam, cost, "smoke") for cost in ("size", "mpic") for lam in (0.5, 5.0)] + \
    [RunConfig("digits", "pit", 1.0, profile="smoke")] + \
    [RunConfig("digits", "sequential", lam, profile="smoke", pit_lam=1.0) for lam in (0.5, 5.0)] + \
    [RunConfig("digits", "edmips", 0.5, profile="smoke"), RunConfig("digits", "w8a8", profile="smoke")]


def test_a_sweep_compiles_each_quantizer_kernel_once_and_never_falls_back(tmp_path, compiler_cache):
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(compiler_cache), "TORCH_LOGS": "recompiles",
           "JOINT_COMPILE": "1"}
    done = subprocess.run([sys.executable, "-c", SWEEP_COMPILATIONS, str(tmp_path / "results"),
                           str(tmp_path / "cache"), repr([c.__dict__ for c in SWEEP_RUNS])],
                          env=env, check=True, capture_output=True, text=True)
    compilations = eval(done.stdout.strip().splitlines()[-1])
    # a forward and a gradient kernel per grid the runs met (8-bit unsigned and signed; 2/4/8-bit mixed, unsigned and
    # signed, in the MPIC searches); a gradient kernel compiles once more when it meets tensors of at most 4,096
    # elements as well as larger ones (the compiler sums long tensors in a cascade): at most 12 compilations,
    # whatever the lambdas and pruned networks
    assert len(compilations) == 8 and sum(compilations.values()) <= 12, compilations
    assert all(n == 1 for name, n in compilations.items() if "values" in name), compilations
    reasons = [line for line in done.stderr.splitlines() if "[__recompiles]" in line and " - " in line]
    assert all("4097 <= tensors[0].size()[0]" in r for r in reasons), reasons
    assert "recompile_limit" not in done.stderr


HISTORY_RUNS = [RunConfig("digits", "w8a8", profile="smoke"), RunConfig("digits", "joint", 0.5, "mpic", "smoke"),
                RunConfig("digits", "joint", 5.0, "mpic", "smoke")]


def _records_of(root: Path, configs: list[RunConfig], threads: int, compiler_cache: Path) -> list[dict]:
    """The records of `configs` trained one after the other in one fresh process."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(compiler_cache)}
    program = ("import sys, torch; torch.set_num_threads(int(sys.argv[4])); from joint import experiments as e; "
               "s = e.Store(results=sys.argv[1], cache=sys.argv[2], progress=False); "
               "e.sweep([e.RunConfig(**c) for c in eval(sys.argv[3])], s)")
    subprocess.run([sys.executable, "-c", program, str(root / "results"), str(root / "cache"),
                    repr([c.__dict__ for c in configs]), str(threads)], env=env, check=True, capture_output=True)
    s = Store(results=root / "results", cache=root / "cache")
    return [without_timing(s.read_record(c)) for c in configs]


def test_a_record_does_not_depend_on_what_ran_before_it(tmp_path, compiler_cache):
    together = _records_of(tmp_path / "together", HISTORY_RUNS, 2, compiler_cache)
    # the last run alone in a fresh process, on the same compiled kernels (that a kernel sums the same whoever compiled
    # it, and at how many threads, is test_quant's test_compiled_sums_do_not_depend_on_what_compiled_the_kernel_before)
    alone = _records_of(tmp_path / "alone", HISTORY_RUNS[-1:], 2, compiler_cache)
    assert together[-1:] == alone
    assert together[-1]["environment"] == {"cpu": experiments.cpu_model(), "threads": 2, "device": "cpu",
                                           "compiled_quantizer": True}


WHOLE_RUNS = [RunConfig("digits", "joint", 5.0, "size", "smoke"), RunConfig("digits", "pit", 1.0, profile="smoke")]
SWEEP_WHOLE = """
import sys
from joint import experiments as e
s = e.Store(results=sys.argv[1], cache=sys.argv[2], progress=False)
runs = [e.RunConfig(**c) for c in eval(sys.argv[3])]
e.sweep(runs, s)
print([s.read_record(c)["environment"] for c in runs])
"""


def test_a_sweep_compiled_whole_compiles_each_phase_once_and_never_falls_back(tmp_path):
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "compiler"), "TORCH_LOGS": "recompiles,dynamo",
           "JOINT_COMPILE": "net"}
    done = subprocess.run([sys.executable, "-c", SWEEP_WHOLE, str(tmp_path / "results"), str(tmp_path / "cache"),
                           repr([c.__dict__ for c in WHOLE_RUNS])], env=env, check=True, capture_output=True, text=True)
    assert all(e["compiled_whole"] for e in eval(done.stdout.strip().splitlines()[-1]))
    # every phase (the warm-up, the joint search and fine-tune, PIT's search and fine-tune) compiles its network once:
    # an epoch's last, smaller batch runs uncompiled, so no network is compiled again for it
    lines = done.stderr.splitlines()
    traced = {line.split("start tracing ")[1].split()[0] for line in lines if "start tracing whole_" in line}
    assert len(traced) == 5, traced
    assert not [line for line in lines if "Recompiling function whole_" in line]
    costs = [line.split("start tracing ")[1].split()[0] for line in lines if "start tracing cost_" in line]
    # the joint search compiles its cost once, not once per epoch (PIT's mask cost is not compiled)
    assert len(costs) == 1, costs
    # the quantizer's kernels recompile only for a new batch size or for autograd (first met in an evaluation)
    reasons = [line for line in lines if "[__recompiles]" in line and " - " in line and "/0: " in line]
    assert all(any(why in r for why in ("size mismatch at index 0", "4097 <= tensors[0].size()[0]",
                                        "dispatch key set mismatch")) for r in reasons), reasons
    assert "recompile_limit" not in done.stderr


def test_tour_parameters_are_checked_up_front():
    with pytest.raises(ValueError, match="parameter lam=-2 must be a finite number >= 0"):
        experiments.check_parameters("digits", "smoke", lam=-2)
    with pytest.raises(ValueError, match="parameter search_epochs=True must be None or an integer >= 1"):
        experiments.check_parameters("digits", "smoke", search_epochs=True)


def test_sequential_needs_its_pit_lambda_and_its_recorded_seed(tmp_path):
    with pytest.raises(ValueError, match="pit_lam .* is required for method 'sequential' and only for it"):
        RunConfig("digits", "sequential", 1.0, profile="smoke")
    with pytest.raises(ValueError, match="pit_lam .* is required for method 'sequential' and only for it"):
        RunConfig("digits", "joint", 1.0, profile="smoke", pit_lam=0.1)
    s = store(tmp_path, "a")
    with pytest.raises(ValueError, match=r"needs its PIT seed \(method pit, lam=0.3\), which is not recorded with its "
                                         r"model; run it first: python -m joint run --method pit --lam 0.3"):
        run(RunConfig("digits", "sequential", 1.0, profile="smoke", pit_lam=0.3), s)
    assert not list((tmp_path / "a" / "results").rglob("*.json"))


def test_a_sequential_run_starts_from_the_recorded_pit_model_with_no_cache(tmp_path):
    s = store(tmp_path, "a")
    run(RunConfig("digits", "pit", 1.0, profile="smoke"), s)
    first = run(RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=1.0), s)
    clone = store(tmp_path, "clone")  # a fresh clone: the committed records and models, no cache
    for path in (tmp_path / "a" / "results").rglob("*.*"):
        if path.suffix in (".json", ".pt") and path.stem != first["key"]:
            target = clone.results / path.relative_to(s.results)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    again = run(RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=1.0), clone)
    assert without_timing(again) == without_timing(first)


def test_a_variant_names_search_settings_and_what_it_does_not_change_is_dropped():
    plain = RunConfig("digits", "joint", 1.0, profile="smoke")
    assert plain.to_dict() == {k: v for k, v in plain.__dict__.items() if k != "variant"}  # old records' fields
    hard = RunConfig("cifar10", "joint", 1.0, profile="cpu", variant="ramp+hard")
    assert hard.variant == "hard+ramp" and hard.key() != RunConfig("cifar10", "joint", 1.0, profile="cpu").key()
    assert (hard.settings().search.sampling, hard.settings().search.lam_ramp) == ("hard", True)
    assert RunConfig("digits", "joint", 1.0, profile="smoke", variant="ramp+hard").variant == "hard"  # smoke ramps
    assert RunConfig("digits", "mixprec", 1.0, profile="smoke", variant="compensate").variant is None  # no 0 bits
    assert RunConfig("digits", "mixprec", 1.0, profile="smoke", variant="compensate+hard").variant == "hard"
    assert RunConfig("digits", "w8a8", profile="smoke", variant="hard") == RunConfig("digits", "w8a8", profile="smoke")


def test_runs_searched_without_the_lambda_ramp_are_named_as_predating_the_default():
    def record(ramp, phases=("warmup", "search", "finetune")):
        return {"phases": dict.fromkeys(phases, {}), "profile_settings": {"search": {"lam_ramp": ramp}}}
    fixed = record(False, ("warmup", "finetune"))
    assert experiments.before_the_ramp([record(True), fixed]) == []
    [line] = experiments.before_the_ramp([record(True), record(False), record(False), fixed])
    assert line.startswith("note: 2 of these 3 searched runs were trained without the lambda ramp")
    cpu = [read_json(p) for p in sorted((ROOT / "results" / "cpu" / "runs").glob("*.json"))]
    assert experiments.before_the_ramp(cpu)  # the committed cpu sweep predates the default


def test_a_compensated_search_starts_from_weights_divided_by_the_alive_probability(tmp_path, monkeypatch):
    started = {}
    original = experiments.train_phase

    def spy(net, config, *args, **kwargs):
        if kwargs.get("penalty") is not None:
            started.setdefault("weight", net.layer("s1.c1").weight.detach().clone())
        return original(net, config, *args, **kwargs)

    monkeypatch.setattr(experiments, "train_phase", spy)
    run(RunConfig("digits", "joint", 0.5, profile="smoke", variant="compensate"), store(tmp_path, "a"))
    plain = joint.searchable(experiments.warmup("digits", "smoke", 0, store(tmp_path, "a"))[0],
                             joint.SearchSpace(), torch.rand(2, 1, 8, 8)).layer("s1.c1").weight
    assert torch.allclose(started["weight"] * (1 - 0.15035), plain, rtol=1e-4)


def test_the_search_study_lists_every_variant_at_every_study_lambda():
    configs = experiments.study_sweep("cifar10", "cpu")
    prof = profiles.get_profile("cpu", "cifar10")
    joint_runs = [c for c in configs if c.method == "joint"]
    assert {(c.variant, c.lam) for c in joint_runs} == {(v, lam) for v in (None, *prof.study_variants)
                                                        for lam in prof.study_lambdas}
    assert {c.variant for c in configs if c.method == "mixprec"} == {None} | set(prof.study_variants) - {"compensate"}
    methods_in_order = [c.method for c in configs]
    assert methods_in_order.index("pit") < methods_in_order.index("sequential") and methods_in_order[0] == "w8a8"
    assert len(configs) == len(set(configs)) and experiments.study_sweep("digits", "quick") == []


def test_pit_lambda_that_prunes_everything_is_one_line_and_records_nothing(tmp_path):
    s = store(tmp_path, "a")
    run(RunConfig("digits", "w8a8", profile="smoke"), s)
    with pytest.raises(ValueError, match="PIT lam=1000 pruned every prunable channel group down to its one "
                                         "keep-alive channel; use a smaller lambda"):
        run(RunConfig("digits", "pit", 1000.0, profile="smoke"), s)
    assert len(list((tmp_path / "a" / "results").rglob("*.json"))) == 1


def test_sequential_record_keeps_its_lineage(tmp_path):
    s = store(tmp_path, "a")
    pit = run(RunConfig("digits", "pit", 1.0, profile="smoke"), s)
    seq = run(RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=1.0), s)
    assert seq["seed"] == {"key": pit["key"], "pit_lam": 1.0}
    assert set(pit["phases"]) == {"warmup", "pit_search", "pit_finetune"}
    assert pit["metrics"]["size_kb"] == Arch.from_dict(pit["arch"]).cost("size") / 8000  # 32-bit weights
    assert seq["metrics"]["size_kb"] < pit["metrics"]["size_kb"] / 3  # 2..8-bit weights of the same channels


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_every_profile_seeds_its_sequential_runs_from_its_own_pit_runs(name):
    prof = profiles.get_profile(name)
    for benchmark in prof.benchmarks:
        configs = size_sweep(benchmark, name)
        pit = {c.key() for c in configs if c.method == "pit"}
        assert all(c.seed_config().key() in pit for c in configs if c.method == "sequential")
        assert len(configs) == len(set(configs))


def test_a_missing_dataset_without_downloads_is_one_line(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", data_root=tmp_path / "data", download=False,
                  progress=False)
    with pytest.raises(ValueError, match="downloads are off; put there cifar-10-python.tar.gz "
                                         r"\(https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz\)"):
        run(RunConfig("cifar10", "w8a8", profile="cpu"), store)


def test_fixed_baselines_get_the_searched_runs_phases_at_lambda_zero(tmp_path):
    record = run(RunConfig("digits", "w4a8", profile="smoke"), store(tmp_path, "a"))
    assert set(record["phases"]) == {"warmup", "search", "finetune"}
    smoke = profiles.get_profile("smoke", "digits")
    assert record["phases"]["search"]["epochs"] == smoke.search.epochs
    assert len(record["phases"]["finetune"]["curve"]) == record["phases"]["finetune"]["epochs"]
    assert record["config"]["lam"] == 0.0 and record["warnings"] == []
    assert set(Arch.from_dict(record["arch"]).layers["stem"].weight_bits) == {4}


def test_a_sequential_runs_pruned_fraction_counts_the_channels_pit_removed(tmp_path):
    s = store(tmp_path, "a")
    pit = run(RunConfig("digits", "pit", 1.0, profile="smoke"), s)
    seq = run(RunConfig("digits", "sequential", 0.5, profile="smoke", pit_lam=1.0), s)
    assert pit["metrics"]["pruned_fraction"] == pytest.approx(Arch.from_dict(pit["arch"]).pruned_fraction())
    assert pit["metrics"]["pruned_fraction"] > 0.1
    assert seq["metrics"]["pruned_fraction"] == pytest.approx(pit["metrics"]["pruned_fraction"])  # MixPrec prunes none


def test_a_search_that_never_moves_is_flagged_in_the_record_and_by_the_cli(tmp_path, monkeypatch, capsys):
    smoke = profiles.PROFILES["smoke"]
    frozen = replace(smoke, search=replace(smoke.search, arch_lr=0.0))
    monkeypatch.setitem(profiles.PROFILES, "smoke", frozen)
    record = run(RunConfig("digits", "joint", 0.5, profile="smoke"), store(tmp_path, "a"))
    assert len(record["warnings"]) == 1 and "never left its starting architecture" in record["warnings"][0]
    assert "raise the profile's search arch_lr or epochs" in record["warnings"][0]
    assert experiments.warnings_of([record])[0].startswith("warning: joint lam=0.5 (size): the search never left")
    main(["run", "--method", "joint", "--lam", "0.5", "--profile", "smoke", "--quiet",
          "--results", str(tmp_path / "a" / "results"), "--cache", str(tmp_path / "a" / "cache")])
    assert "warning: joint lam=0.5 (size): the search never left" in capsys.readouterr().out


def test_a_record_that_is_not_valid_json_is_one_line_and_nothing_is_touched(tmp_path, capsys):
    s = store(tmp_path, "a")
    configs = [RunConfig("digits", "float", profile="smoke"), RunConfig("digits", "w8a8", profile="smoke")]
    sweep(configs, s)
    damaged = s.record_path(configs[1])
    damaged.write_text(damaged.read_text()[:100])  # truncated, as by a full disk
    before = {p: p.read_bytes() for p in (tmp_path / "a" / "results").rglob("*")  if p.is_file()}
    with pytest.raises(ValueError, match=r"is not valid JSON \(.* at line \d+\); restore it with 'git checkout -- "
                                         r".*' or delete it to run that run again") as err:
        sweep(configs, s)
    assert "\n" not in str(err.value) and damaged.name in str(err.value)
    assert {p: p.read_bytes() for p in (tmp_path / "a" / "results").rglob("*") if p.is_file()} == before


def test_a_model_searched_with_low_bit_activations_is_measured_again_at_8_bits_for_ne16(tmp_path):
    record = run(RunConfig("digits", "joint", 0.5, "mpic", profile="smoke"), store(tmp_path, "a"))
    acts = set(Arch.from_dict(record["arch"]).activations.values())
    ne16 = record["metrics"]["ne16_accuracy"]
    assert 0 <= ne16 <= 1
    if acts == {8}:
        assert ne16 == record["metrics"]["test_accuracy"]
    w8 = run(RunConfig("digits", "w8a8", profile="smoke"), store(tmp_path, "a"))
    assert w8["metrics"]["ne16_accuracy"] == w8["metrics"]["test_accuracy"]


def test_a_scan_runs_the_search_alone_and_the_run_resumes_after_it(tmp_path):
    s = store(tmp_path, "a")
    config = RunConfig("digits", "joint", 5.0, profile="smoke")
    row = experiments.scan(config, s)
    assert not s.record_path(config).exists() and row["lam"] == 5.0 and row["epochs"] == 2
    assert row["size_kb"] < 77.0 and 0 < row["cost_ratio"] < 1 and row["warnings"] == []
    record = run(config, s)
    assert record["phases"]["search"]["seconds"] == row["seconds"]  # resumed from the scan's checkpoint
    assert without_timing(record) == without_timing(run(config, store(tmp_path, "b")))  # as if never split
    with pytest.raises(ValueError, match="scan takes a search with a lambda .*; got method 'w8a8'"):
        experiments.scan(RunConfig("digits", "w8a8", profile="smoke"), s)
    pit = experiments.scan(RunConfig("digits", "pit", 1.0, profile="smoke"), s)
    assert pit["pruned_%"] > 0 and pit["cost_ratio"] < 1 and pit["size_kb"] < 308.3  # float kB at 32 bits


def test_every_run_keeps_its_model_and_reloads_to_its_recorded_accuracy(tmp_path):
    s = store(tmp_path, "a")
    configs = [RunConfig("digits", "float", profile="smoke"), RunConfig("digits", "w2a8", profile="smoke"),
               RunConfig("digits", "joint", 5.0, profile="smoke"), RunConfig("digits", "joint", 5.0, "mpic",
                                                                             profile="smoke"),
               RunConfig("digits", "pit", 1.0, profile="smoke"),
               RunConfig("digits", "sequential", 5.0, profile="smoke", pit_lam=1.0)]
    bench = s.benchmark("digits")
    for config in configs:
        record = run(config, s)
        assert s.model_path(config).exists()
        model = load_model(record, store(tmp_path, "a"))  # a fresh store: nothing cached in memory
        assert evaluate(model, bench.test)[0] == record["metrics"]["test_accuracy"], config.method
    quantized = torch.load(s.model_path(configs[2]), weights_only=True)
    assert quantized["format"] == "joint-compact-1"
    s.model_path(configs[1]).unlink()
    with pytest.raises(ValueError, match=r"models/.*\.pt is missing: this run was recorded without its model; "
                                         r"delete its record .* and run it again"):
        load_model(run(configs[1], s), s)


def test_a_fresh_clone_with_the_records_trains_no_warm_up(tmp_path, monkeypatch):
    s = store(tmp_path, "a")
    run(RunConfig("digits", "float", profile="smoke"), s)
    first, phase = experiments.warmup("digits", "smoke", 0, s)
    s.warmup_path("digits", "smoke", 0).unlink()  # a new machine: no cache, the records and models only
    monkeypatch.setattr(experiments, "train_phase", lambda *a, **k: pytest.fail("the warm-up was trained again"))
    again, phase_again = experiments.warmup("digits", "smoke", 0, s)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert phase_again == phase


def test_a_cached_warm_up_never_overrides_the_recorded_float_model(tmp_path):
    s = store(tmp_path, "a")
    recorded = run(RunConfig("digits", "float", profile="smoke"), s)
    cached = s.warmup_path("digits", "smoke", 0)
    saved = torch.load(cached, weights_only=False)
    saved["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in saved["model"].items()}  # a stale cache
    torch.save(saved, cached)
    model, _ = experiments.warmup("digits", "smoke", 0, s)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 load_model(recorded, s).state_dict().values()))


def test_a_run_trains_and_is_cached_in_its_profiles_compile_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("JOINT_COMPILE", raising=False)
    s, config = store(tmp_path, "a"), RunConfig("digits", "w8a8", profile="smoke")
    before = (s.warmup_path("digits", "smoke", 0).name, s.checkpoint(config, "finetune").name)
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(profiles.PROFILES["smoke"], compile="net"))
    seen = []
    monkeypatch.setattr(experiments, "_compute", lambda *args: seen.append(quant.compile_mode()))
    monkeypatch.setattr(experiments, "_warmup", lambda *args: seen.append(quant.compile_mode()))
    experiments.compute(config, s), experiments.warmup("digits", "smoke", 0, s)
    assert seen == ["net", "net"] and quant.compile_mode() == "1"
    after = (s.warmup_path("digits", "smoke", 0).name, s.checkpoint(config, "finetune").name)
    assert [name.rsplit("-c", 1)[1] for name in before + after] == ["1.pt", "1.pt", "net.pt", "net.pt"]


def test_cached_training_is_named_by_the_threads_the_device_and_the_compile_mode(tmp_path, monkeypatch):
    s, config = store(tmp_path, "a"), RunConfig("digits", "joint", 1.0, profile="smoke")
    threads = torch.get_num_threads()
    names = set()
    try:
        for count, mode in ((1, "1"), (2, "1"), (1, "0"), (1, "net")):
            torch.set_num_threads(count)
            monkeypatch.setenv("JOINT_COMPILE", mode)
            names.add((s.warmup_path("digits", "smoke", 0).name, s.checkpoint(config, "search").name))
    finally:
        torch.set_num_threads(threads)
    assert len(names) == 4 and all("-cpu-t" in warm for warm, _ in names)

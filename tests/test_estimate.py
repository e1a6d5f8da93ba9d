import pytest
import torch

from joint import estimate, profiles
from joint.config import RunConfig
from joint.store import Store, write_json


def test_pending_epochs_and_seconds_follow_the_profile_caps(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    configs = [RunConfig("digits", "joint", 1.0, profile="quick"), RunConfig("digits", "joint", 1.0, "mpic",
               profile="quick"), RunConfig("digits", "pit", 0.1, profile="quick"), RunConfig("digits", "float",
               profile="quick")]
    per_sample = {"float": 1.0, "qat": 2.0, "search": 3.0, "search_act": 4.0, "pit": 5.0, "eval": 0.5}
    result = estimate.estimate("digits", "quick", configs, store, per_sample)
    prof = profiles.get_profile("quick", "digits")
    train, val, _ = estimate.SPLIT_SIZES["digits"]
    parts = [("search", prof.search.epochs), ("qat", prof.finetune.epochs), ("search_act", prof.search.epochs),
             ("qat", prof.finetune.epochs), ("pit", prof.pit_search.epochs), ("float", prof.pit_finetune.epochs),
             ("float", prof.warmup.epochs)]
    assert result.pending == 4 and result.epochs == sum(e for _, e in parts)
    assert result.seconds == pytest.approx(sum(e * (train * per_sample[k] + val * 0.5) for k, e in parts))
    assert "4 of 4 runs pending" in result.line() and "on cpu" in result.line()
    write_json(store.record_path(configs[0]), {})
    assert estimate.estimate("digits", "quick", configs, store, per_sample).pending == 3


def test_local_processes_share_the_runs_but_not_the_warm_up(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    configs = [RunConfig("digits", "w8a8", profile="quick"), RunConfig("digits", "w4a8", profile="quick"),
               RunConfig("digits", "w2a8", profile="quick")]
    per_sample = {"float": 1.0, "qat": 2.0, "eval": 0.0}
    train, prof = estimate.SPLIT_SIZES["digits"][0], profiles.get_profile("quick", "digits")
    warm, run = prof.warmup.epochs * train, (prof.search.epochs + prof.finetune.epochs) * train * 2.0  # fixed QAT
    assert estimate.estimate("digits", "quick", configs, store, per_sample).seconds == pytest.approx(warm + 3 * run)
    two = estimate.estimate("digits", "quick", configs, store, per_sample, processes=2)
    assert two.seconds == pytest.approx(warm + 1.5 * run) and "on cpu in 2 processes (" in two.line()
    many = estimate.estimate("digits", "quick", configs, store, per_sample, processes=8)
    assert many.seconds == pytest.approx(warm + run) and "in 3 processes" in many.line()


def test_step_times_are_measured_for_every_kind_of_phase():
    seconds, compiling = estimate.per_sample_seconds("digits", torch.device("cpu"), batch=8, repeats=1)
    assert set(seconds) == {"float", "qat", "search", "search_act", "pit", "eval"}
    assert all(v > 0 for v in seconds.values())
    assert compiling == {}  # the quantizer's kernels compile once per process, not once per phase


def test_a_network_compiled_whole_counts_its_compilation_per_phase():
    seconds, compiling = estimate.per_sample_seconds("digits", torch.device("cpu"), batch=8, repeats=1,
                                                     compile="net")
    assert set(compiling) == {"float", "qat", "search", "search_act", "pit"}
    assert all(v > 0 for v in compiling.values())


def test_compilation_is_added_once_per_phase_and_shared_by_local_processes(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    configs = [RunConfig("digits", "joint", 1.0, profile="quick"), RunConfig("digits", "w8a8", profile="quick")]
    per_sample = {"float": 0.0, "qat": 0.0, "search": 0.0, "eval": 0.0}
    compiling = {"float": 100.0, "qat": 10.0, "search": 1.0}
    result = estimate.estimate("digits", "quick", configs, store, per_sample, compiling=compiling)
    # the warm-up compiles the float net once; joint a search and a fine-tune; w8a8 its two QAT phases
    assert result.seconds == result.compile_seconds == pytest.approx(100 + 1 + 10 + 2 * 10)
    assert "of it compiling" in result.line()
    two = estimate.estimate("digits", "quick", configs, store, per_sample, processes=2, compiling=compiling)
    assert two.compile_seconds == pytest.approx(100 + 31 / 2)
    assert "compiling" not in estimate.estimate("digits", "quick", configs, store, per_sample).line()


def test_nothing_pending_measures_nothing(tmp_path, monkeypatch):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    config = RunConfig("digits", "w8a8", profile="quick")
    write_json(store.record_path(config), {})
    monkeypatch.setattr(estimate, "per_sample_seconds", None)  # calling it would fail
    result = estimate.estimate("digits", "quick", [config], store)
    assert result.line() == "digits (quick): all 1 runs recorded, nothing to train"


def test_step_times_are_measured_at_the_profiles_batch_size_and_memory_format(tmp_path, monkeypatch):
    asked = []
    times = {"float": 1e-3, "qat": 2e-3, "search": 3e-3, "search_act": 4e-3, "pit": 5e-3, "eval": 1e-4}
    monkeypatch.setattr(estimate, "per_sample_seconds",
                        lambda *args, **kwargs: asked.append((args, kwargs)) or (times, {}))
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    line = estimate.estimate("cifar10", "cpu", [RunConfig("cifar10", "w8a8", profile="cpu")], store).line()
    assert asked == [(("cifar10", torch.device("cpu"), 64), {"channels_last": True, "compile": "1"})]
    assert "epochs if every phase runs to its epoch cap; expect about " in line


def test_each_training_seed_without_its_warm_up_counts_one(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    configs = [RunConfig("digits", "w8a8", profile="quick", seed=seed) for seed in (0, 1, 2)]
    per_sample = {"float": 1.0, "qat": 0.0, "eval": 0.0}
    warm = profiles.get_profile("quick", "digits").warmup.epochs * estimate.SPLIT_SIZES["digits"][0]
    assert estimate.estimate("digits", "quick", configs, store, per_sample).seconds == pytest.approx(3 * warm)
    store.warmup_path("digits", "quick", 1).parent.mkdir(parents=True, exist_ok=True)
    store.warmup_path("digits", "quick", 1).write_bytes(b"")
    assert estimate.estimate("digits", "quick", configs, store, per_sample).seconds == pytest.approx(2 * warm)


def test_the_recorded_runs_time_is_set_beside_their_estimate(tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c", progress=False, device="cpu")
    configs = [RunConfig("digits", "w8a8", profile="quick", seed=seed) for seed in (0, 1)]
    configs.append(RunConfig("digits", "w4a8", profile="quick"))
    warm = {"epochs": 60, "seconds": 100.0, "shared": True}
    for config, seconds in zip(configs, (10.0, 20.0)):  # w4a8 stays pending
        write_json(store.record_path(config), {"key": "k", "metrics": {}, "config": {"seed": config.seed}, "phases": {
            "warmup": {**warm, "seconds": 100.0 + config.seed}, "search": {"seconds": seconds},
            "finetune": {"seconds": 1.0}}})
    per_sample = {"float": 1.0, "qat": 2.0, "eval": 0.0}
    prof, train = profiles.get_profile("quick", "digits"), estimate.SPLIT_SIZES["digits"][0]
    result = estimate.estimate("digits", "quick", configs, store, per_sample, against_records=True)
    assert result.recorded_seconds == 100.0 + 101.0 + 10.0 + 20.0 + 2 * 1.0  # each seed's warm-up once
    run = (prof.search.epochs + prof.finetune.epochs) * train * 2.0
    assert result.recorded_estimate == pytest.approx(2 * prof.warmup.epochs * train + 2 * run)
    assert "; the 2 recorded runs took 4 min of training one after another, against 107.7 h estimated here" in \
        result.line()
    assert "recorded runs" not in estimate.estimate("digits", "quick", configs, store, per_sample).line()

from dataclasses import replace

import pytest

from joint import profiles
from joint.config import RunConfig
from joint.profiles import effective_variant, get_profile
from joint.store import Store
from joint.train import PhaseConfig


def test_paper_profile_follows_the_protocol_per_benchmark():
    cifar = profiles.get_profile("paper", "cifar10")
    assert cifar.batch_size == 32 and cifar.warmup.epochs == 500 and cifar.warmup.optimizer == "adam"
    assert (cifar.search.arch_lr, cifar.search.arch_optimizer, cifar.search.temperature_decay) == (1e-2, "sgd", 0.045)
    assert (cifar.pit_search.arch_lr, cifar.pit_search.arch_optimizer) == (1e-3, "adam")
    assert cifar.search.selection == "accuracy" and cifar.search.lr_decay == 0.99 and cifar.pretrain is None
    assert cifar.search.min_epochs == 22 and cifar.search.patience == 50  # the scripts: from epoch index 21
    gsc = profiles.get_profile("paper", "speech_commands")
    assert gsc.batch_size == 100 and gsc.search.epochs == 200 and gsc.search.selection == "loss"
    assert gsc.search.milestones == ((50, 2.0), (100, 2.0), (150, 2.5)) and gsc.pit_finetune.lr == 5e-4
    tin = profiles.get_profile("paper", "tiny_imagenet")
    assert tin.batch_size == 100 and tin.search.optimizer == "sgd" and tin.search.momentum == 0.9
    assert (tin.search.schedule, tin.search.step_size, tin.search.gamma) == ("step", 7, 0.1)
    assert tin.search.temperature_decay == 0.45 and tin.search.arch_lr == 1e-3
    assert (tin.pretrain.epochs, tin.pretrain.lr, tin.pretrain.schedule) == (50, 0.1, "cosine")
    assert len({p.fingerprint() for p in (cifar, gsc, tin)}) == 3


def test_the_cpu_profile_runs_real_cifar10_in_channels_last_at_batch_64():
    cifar = profiles.get_profile("cpu", "cifar10")
    assert (cifar.batch_size, cifar.channels_last, cifar.workers) == (64, True, 0)
    assert "real CIFAR-10" in cifar.description and "batch 64 (paper 32)" in cifar.description
    gsc = profiles.get_profile("cpu", "speech_commands")
    assert (gsc.batch_size, gsc.channels_last, gsc.search.selection) == (100, False, "loss")


def test_the_warm_up_is_named_by_its_own_settings_only(monkeypatch, tmp_path):
    store = Store(results=tmp_path / "r", cache=tmp_path / "c")
    config = RunConfig("digits", "joint", 1.0, profile="smoke")
    key, warm = config.key(), store.warmup_path("digits", "smoke", 0)
    smoke = profiles.PROFILES["smoke"]
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, search=replace(smoke.search, epochs=3)))
    assert config.key() != key and store.warmup_path("digits", "smoke", 0) == warm  # the warm-up is reused
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, warmup=replace(smoke.warmup, epochs=4)))
    assert store.warmup_path("digits", "smoke", 0) != warm
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(smoke, lambdas=(9.0,), tour_epochs=1))
    assert config.key() == key  # grids list runs and the tour is not a run: neither changes a record


def test_an_unknown_profile_or_an_uncovered_benchmark_is_one_line():
    with pytest.raises(ValueError, match="unknown profile 'fast'; allowed: smoke, quick, cpu, cpu_long, paper"):
        profiles.get_profile("fast")
    with pytest.raises(ValueError, match="benchmark 'cifar10' is not part of profile 'quick'; allowed: digits"):
        profiles.get_profile("quick", "cifar10")


def test_size_grids_per_method_fall_back_to_the_shared_grid():
    prof = replace(profiles.get_profile("quick"), method_lambdas={"edmips": (1.0,)})
    assert prof.size_grid("edmips") == (1.0,) and prof.size_grid("joint") == prof.lambdas


def test_a_variant_changes_the_search_phase_only_and_bad_names_are_one_line():
    plain, hard = get_profile("cpu", "cifar10"), get_profile("cpu", "cifar10", "hard+slow_anneal")
    assert hard.search == replace(plain.search, sampling="hard", temperature_decay=0.045)
    assert (hard.warmup, hard.finetune, hard.pit_search) == (plain.warmup, plain.finetune, plain.pit_search)
    assert hard.fingerprint() != plain.fingerprint() and hard.warmup_fingerprint() == plain.warmup_fingerprint()
    with pytest.raises(ValueError, match="variant 'hard\\+gumbel': 'gumbel' sets sampling a second time"):
        get_profile("cpu", "cifar10", "hard+gumbel")
    with pytest.raises(ValueError, match="variant 'hard\\+hard': 'hard' sets sampling a second time"):
        get_profile("cpu", "cifar10", "hard+hard")


def test_a_variant_keeps_only_what_changes_a_method():
    plain, ramped = PhaseConfig(8), PhaseConfig(8, lam_ramp=True)
    assert effective_variant("ramp+compensate", searches=True, prunes=True, search=plain) == "compensate+ramp"
    assert effective_variant("ramp+compensate", searches=True, prunes=False, search=plain) == "ramp"
    assert effective_variant("compensate", searches=True, prunes=False, search=plain) is None
    assert effective_variant("hard", searches=False, prunes=False, search=plain) is None
    assert effective_variant("ramp", searches=True, prunes=True, search=ramped) is None  # the profile ramps already
    assert effective_variant("hard+ramp", searches=True, prunes=True, search=ramped) == "hard"


def test_the_search_ramps_lambda_by_default_except_in_the_cpu_profile_whose_records_predate_it():
    for name in ("smoke", "quick", "cpu_long", "paper"):
        for benchmark in profiles.PROFILES[name].benchmarks:
            assert get_profile(name, benchmark).search.lam_ramp, (name, benchmark)
            assert not get_profile(name, benchmark).pit_search.lam_ramp  # PIT searches as the study's PIT seed did
    cpu = get_profile("cpu", "cifar10")
    assert not cpu.search.lam_ramp and cpu.study_choice == "ramp"
    assert RunConfig("digits", "joint", 1.0, profile="quick", variant="ramp") == \
        RunConfig("digits", "joint", 1.0, profile="quick")  # the same run, under one key


def test_the_long_cpu_profile_has_the_papers_grids_and_three_seeds_where_points_are_compared():
    prof = get_profile("cpu_long", "cifar10")
    assert len(prof.size_grid("joint")) >= 6 and all(len(prof.grid(c)) >= 4 for c in ("bitops", "mpic", "ne16"))
    assert all(len(prof.size_grid(m)) >= 3 for m in ("mixprec", "edmips")) and len(prof.pit_lambdas) >= 3
    chosen, second = prof.seed_lambdas
    assert prof.sequential_grid(chosen) == prof.size_grid("joint") and len(prof.sequential_grid(second)) == 3
    assert prof.flow_seed == chosen  # the time table's sequential flow: as many final models as the joint front
    assert prof.repeat_seeds == (1, 2) and len(prof.repeat_lambdas) == 2
    assert set(prof.repeat_lambdas) <= set(prof.size_grid("joint"))
    assert prof.compile == "net" and prof.search.lam_ramp and not prof.pit_search.lam_ramp
    assert prof.search.epochs > get_profile("cpu", "cifar10").search.epochs and not prof.study_lambdas

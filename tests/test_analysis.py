import copy

import pandas as pd
import pytest

from joint import analysis, paper
from joint.analysis import Point, front_gap, iso_accuracy, pareto_front, reduction


def paper_points(series):
    return [Point(series, s, a) for s, a in paper.CIFAR10_SIZE[series]]


def test_pareto_front_keeps_only_non_dominated_points():
    pts = [Point("m", 10, 80), Point("m", 5, 70), Point("m", 7, 65), Point("m", 20, 79), Point("m", 30, 85)]
    assert [(p.cost, p.accuracy) for p in pareto_front(pts)] == [(5, 70), (10, 80), (30, 85)]


def test_front_gap_is_the_distance_to_the_line_between_the_neighbouring_front_points():
    front = [Point("m", 10, 70), Point("m", 20, 80), Point("m", 15, 60), Point("m", 40, 84)]  # (15, 60) is dominated
    assert front_gap(Point("v", 15, 77), front) == pytest.approx(2.0)  # the line from (10, 70) to (20, 80) gives 75
    assert front_gap(Point("v", 30, 80), front) == pytest.approx(-2.0)
    assert front_gap(Point("v", 20, 80), front) == 0.0
    assert front_gap(Point("v", 50, 83), front) == pytest.approx(-1.0)  # larger than the front: against its best
    assert front_gap(Point("v", 9, 90), front) is None  # smaller than the front: nothing to compare with


def test_iso_accuracy_rule_reproduces_the_abstract_from_the_paper_figure():
    joint = paper_points("joint")
    w2a8, = paper_points("w2a8")
    best = iso_accuracy(joint, w2a8)
    assert (best.cost, best.accuracy) == (5.89, 72.76)
    assert 100 * reduction(best, w2a8) == pytest.approx(69.54, abs=0.1)  # the abstract's 69.54 %
    w8a8, = paper_points("w8a8")
    assert 100 * reduction(iso_accuracy(joint, w8a8), w8a8) == pytest.approx(23.2, abs=0.1)


def test_no_model_reaching_the_baseline_gives_none():
    assert iso_accuracy([Point("m", 1, 50)], Point("b", 10, 60)) is None
    assert reduction(None, Point("b", 10, 60)) is None


def record(method, lam, size, acc, seed=None):
    config = {"method": method, "lam": lam, "cost": "size", **({} if seed is None else {"seed": seed})}
    return {"config": config, "metrics": {"size_kb": float(size), "test_accuracy": acc / 100}}


def test_size_table_rows_and_markdown():
    records = [record("w8a8", 0, 80, 90), record("w2a8", 0, 20, 80), record("joint", 1, 10, 85),
               record("joint", 2, 50, 91), record("mixprec", 1, 40, 86), record("mixprec", 2, 60, 95)]
    table = analysis.size_table(records)
    rows = {r["comparison"]: r for r in table.to_dict("records")}
    assert rows["joint vs w8a8"]["reduction_%"] == pytest.approx(100 * (1 - 50 / 80))
    assert rows["joint vs w2a8"]["reduction_%"] == pytest.approx(50.0)
    up_to = rows["joint vs mixprec (up to)"]
    assert up_to["reduction_%"] == pytest.approx(100 * (1 - 50 / 40)) and up_to["points_reached"] == "1/2"
    text = analysis.to_markdown(table)
    assert text.splitlines()[0].startswith("| comparison | baseline_kB")
    assert "| joint vs w2a8 | 20.00 | 80.00 | 10.00 | 85.00 | 50.00 |  |" in text
    summary = analysis.summarize_size_table(table)
    assert summary.count(".") >= 2
    assert "against w2a8 (20.00 kB at 80.00 %) joint is 50.0 % smaller (10.00 kB at 85.00 %)" in summary
    assert "points: against mixprec (40.00 kB at 86.00 %) joint is 25.0 % larger (50.00 kB at 91.00 %)." in summary


def test_table_says_none_when_the_method_never_reaches_the_baseline():
    table = analysis.size_table([record("w8a8", 0, 80, 99), record("w2a8", 0, 20, 97), record("joint", 1, 10, 90)])
    assert table["reduction_%"].isna().all()
    assert "no joint model reaches w8a8 (80.00 kB at 99.00 %)" in analysis.summarize_size_table(table)
    assert "| none |" in analysis.to_markdown(table)


def test_write_table(tmp_path):
    csv, md = analysis.write_table(pd.DataFrame([{"a": 1.0, "b": None}]), tmp_path / "t")
    assert csv.read_text().splitlines() == ["a,b", "1.0,"] and "| 1.00 |  |" in md.read_text()


def test_no_runs_at_all_is_said_plainly():
    table = analysis.size_table([])
    assert table.empty
    assert analysis.summarize_size_table(table).startswith("No run of the method was recorded beside a baseline")


def test_a_method_without_baselines_or_fronts_gives_an_empty_table_with_its_columns():
    table = analysis.size_table([record("joint", 1, 10, 85)])
    assert table.empty and "reduction_%" in table.columns
    baselines_only = analysis.size_table([record("w8a8", 0, 80, 90)])
    assert baselines_only.empty and "nothing to compare" in analysis.summarize_size_table(baselines_only)
    no_fixed = analysis.size_table([record("joint", 1, 10, 85), record("mixprec", 1, 20, 80)])
    assert analysis.summarize_size_table(no_fixed).startswith("No fixed-precision baseline was recorded. Against")


def test_a_front_no_model_reaches_is_named_by_its_least_accurate_point():
    table = analysis.size_table([record("joint", 1, 10, 85), record("mixprec", 1, 5, 86), record("mixprec", 2, 40, 95)])
    row, = table.to_dict("records")
    assert (row["baseline_kB"], row["baseline_acc_%"], row["points_reached"]) == (5.0, 86.0, "0/2")
    assert "no joint model reaches mixprec (5.00 kB at 86.00 %)" in analysis.summarize_size_table(table)


def test_the_spread_columns_appear_only_where_a_setting_repeats():
    other_seeds = [record("w8a8", 0, 80, 90, seed=1), record("joint", 1, 50, 91, seed=0)]
    assert "baseline_spread_%" not in analysis.size_table(other_seeds).columns
    repeated = other_seeds + [record("w8a8", 0, 80, 92, seed=2)]
    assert analysis.size_table(repeated)["baseline_spread_%"].tolist() == [pytest.approx(2 ** 0.5)]


def timed(method, key, phases, seed=None, size=10.0, acc=90.0):
    r = {"key": key, "config": {"method": method, "lam": 1.0}, "metrics": {"size_kb": size, "test_accuracy": acc / 100},
         "phases": {"warmup": {"epochs": 30, "seconds": 3.0, "shared": True},
                    **{p: {"epochs": e, "seconds": s} for p, (e, s) in phases.items()}}}
    if seed:
        r["seed"] = {"key": seed, "pit_lam": 0.1}
    return r


TIMED = [timed("joint", "j1", {"search": (40, 8.0), "finetune": (20, 4.0)}, size=5.0, acc=91.0),
         timed("joint", "j2", {"search": (40, 9.0), "finetune": (20, 4.0)}, size=2.0, acc=85.0),
         timed("pit", "p1", {"pit_search": (40, 7.0), "pit_finetune": (20, 3.0)}),
         timed("pit", "p2", {"pit_search": (40, 7.0), "pit_finetune": (20, 3.0)}),  # seeds nothing: part of the scan
         timed("sequential", "s1", {"search": (40, 8.0), "finetune": (20, 4.0)}, "p1", size=6.0, acc=90.0),
         timed("sequential", "s2", {"search": (40, 8.0), "finetune": (20, 4.0)}, "p1", size=3.0, acc=88.0)]


def test_time_table_counts_the_shared_warmup_once_and_the_whole_pit_scan():
    rows = {r["method"]: r for r in analysis.time_table(TIMED).to_dict("records")}
    assert (rows["joint (total)"]["runs"], rows["joint (total)"]["epochs"], rows["joint (total)"]["seconds"]) == \
        (3, 30 + 120, 3.0 + 25.0)
    assert (rows["sequential: PIT stage"]["runs"], rows["sequential: PIT stage"]["seconds"]) == (2, 20.0)
    assert (rows["sequential: MixPrec stage"]["runs"], rows["sequential: MixPrec stage"]["seconds"]) == (2, 24.0)
    assert rows["sequential (total)"]["seconds"] == 3.0 + 20.0 + 24.0 and rows["sequential (total)"]["runs"] == 5
    assert [rows[m]["final_models"] for m in ("joint (total)", "sequential (total)", "sequential: PIT stage")] == \
        [2, 2, 0]
    summary = analysis.summarize_time(analysis.time_table(TIMED), TIMED)
    assert "in 28 s (150 epochs, 3 runs, 2 final models) against 47 s" in summary
    assert "a ratio of 0.60 in wall-clock time" in summary
    assert "joint runs 2.00-5.00 kB, front 2.00-5.00 kB; sequential runs 3.00-6.00 kB" in summary
    # j1 (5 kB, 91 %) dominates s1 (6 kB, 90 %); nothing dominates s2 (3 kB, 88 %), j1 or j2 (2 kB, 85 %)
    assert "Of the 2 joint models, 2 are dominated by no sequential model" in summary
    assert "of the 2 sequential models, 1 by no joint model" in summary
    joint_only = [r for r in TIMED if r["config"]["method"] == "joint"]
    alone = analysis.summarize_time(analysis.time_table(joint_only), joint_only)
    assert "sequential no runs" in alone and "of the 0 sequential models, 0 by no joint model" in alone


def test_the_flow_counts_the_chosen_pit_seed_and_lists_the_other_seeds_runs_apart():
    runs = copy.deepcopy(TIMED)
    for r in runs[4:]:
        r["config"]["pit_lam"] = 0.1
    other = timed("sequential", "s3", {"search": (40, 6.0), "finetune": (20, 5.0)}, "p2", size=1.0, acc=95.0)
    other["config"]["pit_lam"], other["seed"]["pit_lam"] = 0.05, 0.05
    rows = {r["method"]: r for r in analysis.time_table(runs + [other], flow_seed=0.1).to_dict("records")}
    assert rows["sequential (total)"]["seconds"] == 3.0 + 20.0 + 24.0 and rows["sequential (total)"]["final_models"] == 2
    apart = rows["sequential: MixPrec on the other PIT seeds (not in the flow)"]
    assert (apart["runs"], apart["epochs"], apart["seconds"]) == (1, 60, 11.0)
    summary = analysis.summarize_time(analysis.time_table(runs + [other], flow_seed=0.1), runs + [other], flow_seed=0.1)
    assert "of the 2 sequential models, 1 by no joint model" in summary  # s3 (1 kB, 95 %) is no part of the flow
    everything = {r["method"]: r for r in analysis.time_table(runs + [other]).to_dict("records")}
    assert everything["sequential (total)"]["final_models"] == 3 and len(everything) == 5


def test_dominance_needs_one_strict_improvement():
    a, b = analysis.Point("joint", 5.0, 91.0), analysis.Point("sequential", 5.0, 91.0)
    assert not analysis.dominates(a, b) and not analysis.dominates(b, a)
    assert analysis.dominates(analysis.Point("joint", 4.0, 91.0), b)
    assert analysis.dominates(analysis.Point("joint", 5.0, 91.5), b)
    assert analysis.undominated([a, analysis.Point("joint", 7.0, 90.0)], [b]) == 1


def test_point_time_includes_the_seed_and_missing_seeds_are_named():
    assert analysis.point_seconds(TIMED[4], TIMED) == 12.0 + 10.0
    assert analysis.point_seconds(TIMED[0], TIMED) == 12.0
    with pytest.raises(ValueError, match="PIT seeds that are not among the records: p1"):
        analysis.time_table([r for r in TIMED if r["key"] != "p1"])


def test_front_comparison_matches_every_point_of_the_other_front():
    match = analysis.front_comparison(TIMED, "joint", "sequential")
    assert match.to_dict("records") == [
        {"sequential_kB": 3.0, "sequential_acc_%": 88.0, "joint_kB": 5.0, "joint_acc_%": 91.0,
         "reduction_%": pytest.approx(100 * (1 - 5 / 3)), "joint_ahead_pt": pytest.approx(-1.0)},
        {"sequential_kB": 6.0, "sequential_acc_%": 90.0, "joint_kB": 5.0, "joint_acc_%": 91.0,
         "reduction_%": pytest.approx(100 * (1 - 5 / 6)), "joint_ahead_pt": pytest.approx(1.0)}]
    assert analysis.size_range(TIMED, "joint") == (2.0, 5.0)


def test_front_comparison_summary_says_where_the_method_wins_and_where_it_loses():
    # the joint line from (2, 85) to (5, 91) gives 87 at 3 kB: sequential (3, 88) lies 1 point above it
    summary = analysis.summarize_front_comparison(analysis.front_comparison(TIMED, "joint", "sequential"),
                                                  "joint", "sequential")
    assert summary == ("joint reaches 2 of the 2 sequential front points, smaller at 1 (up to 16.7 %) and larger at 1 "
                       "(up to 66.7 %); at equal kB its front passes through or above 1 of them (by up to 1.00 points) "
                       "and under 1 (by up to 1.00 points, at sequential 3.00 kB).")
    tiny = TIMED + [record("sequential", 9, 1.0, 80.0)]
    assert analysis.summarize_front_comparison(analysis.front_comparison(tiny, "joint", "sequential"), "joint",
                                               "sequential").endswith("; 1 lie below its smallest model.")
    unreached = analysis.front_comparison([record("joint", 1, 5, 80), record("mixprec", 1, 6, 90)], "joint",
                                          "mixprec")
    assert analysis.summarize_front_comparison(unreached, "joint", "mixprec") == (
        "joint reaches 0 of the 1 mixprec front points; at equal kB its front passes through or above 0 of them and "
        "under 1 (by up to 10.00 points, at mixprec 6.00 kB).")
    assert analysis.summarize_front_comparison(analysis.front_comparison([], "joint", "mixprec"), "joint",
                                               "mixprec") == "No mixprec front to compare joint with."


def test_front_times_lists_each_front_point_with_its_seconds():
    rows = analysis.front_times(TIMED).to_dict("records")
    assert [(r["method"], r["size_kB"], r["seconds"]) for r in rows] == [
        ("joint", 2.0, 13.0), ("joint", 5.0, 12.0), ("sequential", 3.0, 22.0), ("sequential", 6.0, 22.0)]
    assert analysis.front_times([]).empty and "seconds" in analysis.front_times([]).columns


def latency_record(method, cost, lam, acc, mpic, ne16, act_bits=(8,)):
    return {"config": {"method": method, "cost": cost, "lam": lam, "act_bits": list(act_bits)},
            "metrics": {"test_accuracy": acc / 100, "mpic_cycles": mpic, "ne16_cycles": ne16,
                        "cost_reference": {"mpic": 300.0, "ne16": 30.0, "size": 8.0}[cost]}}


ABLATION = [latency_record("joint", "mpic", 1, 90, 100, 20, (2, 4, 8)), latency_record("joint", "mpic", 2, 80, 50, 15),
            latency_record("joint", "ne16", 0.1, 91, 120, 10), latency_record("joint", "ne16", 0.2, 70, 40, 5),
            latency_record("joint", "size", 1, 85, 80, 12), latency_record("w8a8", "size", 0, 92, 300, 30)]


def test_cycles_table_matches_each_targets_front_against_the_other_target_at_iso_accuracy():
    table = analysis.cycles_table(ABLATION)
    mpic = table[table["target"] == "mpic"]
    # on MPIC the NE16 front is (40, 70), (120, 91): the MPIC-trained match of 70 % is 50 cycles, none reaches 91 %
    assert mpic["reference_cycles"].tolist() == [40, 120] and mpic["matched_cycles"].tolist()[0] == 50
    assert mpic["reduction_%"].tolist()[0] == pytest.approx(-25.0) and pd.isna(mpic["reduction_%"].tolist()[1])
    ne16 = table[table["target"] == "ne16"]
    assert ne16["matched_cycles"].tolist() == [10, 10]
    assert ne16["reduction_%"].tolist() == pytest.approx([100 / 3, 50])
    text = analysis.summarize_cycles(table)
    assert "On mpic cycles, the mpic-trained front reaches 1 of the 2 points" in text
    assert "needs fewer cycles at 2 of them; the reduction ranges from 33.3 % to 50.0 %" in text


def test_cost_model_summary_and_search_settings():
    summary = analysis.cost_model_summary(ABLATION, ("size", "mpic", "ne16"))
    row = summary[(summary["target"] == "ne16") & (summary["trained_for"] == "size")].iloc[0]
    assert row["points_reached"] == "1/1" and row["max_reduction_%"] == pytest.approx(100 * (1 - 10 / 12))
    settings = analysis.search_settings(ABLATION).set_index("cost_model")
    assert settings.loc["mpic", "lambdas"] == "1, 2" and settings.loc["mpic", "act_bits"] == "2/4/8, 8"
    assert settings.loc["ne16", "all_8_bit_cost"] == 30.0 and "w8a8" not in settings.index


def test_the_paper_latency_figure_through_the_same_rule_gives_its_stated_gap():
    table = analysis.cycles_table(paper.latency_records())
    row = table[(table["target"] == "ne16") & (table["reference_acc_%"] == 71.7)].iloc[0]
    assert (row["reference_cycles"], row["matched_cycles"]) == (0.97e5, 0.39e5)  # "0.39e5 against 0.97e5"


def test_the_paper_size_figure_through_the_same_rule_gives_its_stated_reductions():
    table = analysis.size_table(paper.size_records()).set_index("comparison")
    assert table.loc["joint vs w2a8", "reduction_%"] == pytest.approx(100 * paper.ABSTRACT["size_reduction_vs_w2a8"],
                                                                      abs=0.01)  # 5.89 kB against 19.34 kB
    assert table.loc["joint vs w8a8", "method_kB"] == 59.4  # "about 23 % at 59.4 kB" (docs/protocol.md, CIFAR-10 size figure)


def test_on_ne16_cycles_a_model_counts_with_its_accuracy_at_8_bit_activations():
    low = latency_record("joint", "mpic", 1, 90, 100, 20, (2, 4, 8))
    low["metrics"]["ne16_accuracy"] = 0.85  # measured again with every activation at 8 bits
    unrunnable = latency_record("joint", "mpic", 2, 80, 50, 15, (2, 4))
    unrunnable["metrics"]["ne16_accuracy"] = None
    records = [low, unrunnable]
    assert [p.accuracy for p in analysis.points(records, "joint", "ne16_cycles")] == [85.0]
    assert [p.accuracy for p in analysis.points(records, "joint", "mpic_cycles")] == [90.0, 80.0]


def test_a_collapsed_model_is_left_out_of_the_iso_tables_and_named():
    chance = record("joint", 7, 1, 10.0)  # one class of ten: no reference for an iso-accuracy comparison
    records = [record("w8a8", 0, 80, 90), record("w2a8", 0, 20, 9.9), record("joint", 1, 10, 85), chance]
    table = analysis.size_table(records)
    assert table["comparison"].tolist() == ["joint vs w8a8"]  # the collapsed w2a8 baseline is gone
    assert analysis.size_table(records[:1] + [chance])["reduction_%"].isna().all()  # and no collapsed match
    assert analysis.left_out(records) == ("left out of the iso-accuracy tables, collapsed to chance accuracy: "
                                          "w2a8 size lambda=0 (9.90 % on size_kb); joint size lambda=7 (10.00 % on "
                                          "size_kb)")
    low = latency_record("joint", "mpic", 3, 95, 111, 21, (2, 4, 8))
    low["metrics"]["ne16_accuracy"] = 0.1  # at chance once its activations run at 8 bits: only NE16 drops it
    cycles, before = analysis.cycles_table(ABLATION + [low]), analysis.cycles_table(ABLATION)
    ne16 = cycles[cycles["target"] == "ne16"]
    assert ne16.to_dict("records") == before[before["target"] == "ne16"].to_dict("records")
    assert 21 not in ne16["reference_cycles"].tolist()
    assert 111 in cycles[cycles["target"] == "mpic"]["matched_cycles"].tolist()
    assert analysis.left_out([record("joint", 1, 10, 85)]) == ""
    assert "joint size lambda=7 seed=2 (10.00 % on size_kb)" in analysis.left_out([record("joint", 7, 1, 10.0, seed=2)])


def test_fine_tune_settling_is_the_change_over_the_last_two_epochs_of_the_final_fine_tune():
    curve = lambda *accs: {"epochs": len(accs), "curve": [{"val_accuracy": a} for a in accs]}  # noqa: E731
    records = [{"config": {"method": "w8a8", "cost": "size", "lam": 0.0},
                "phases": {"search": curve(0.1, 0.2), "finetune": curve(0.5, 0.771, 0.7735)}},
               {"config": {"method": "pit", "cost": "size", "lam": 0.1},
                "phases": {"pit_search": curve(0.3), "pit_finetune": curve(0.8, 0.79)}},
               {"config": {"method": "float", "cost": "size", "lam": 0.0}, "phases": {"warmup": curve(0.7, 0.8)}}]
    table = analysis.fine_tune_settling(records)
    assert table["method"].tolist() == ["w8a8", "pit"] and table["epochs"].tolist() == [3, 2]
    assert table["change_%"].tolist() == pytest.approx([0.25, -1.0])


def test_search_floor_is_the_deepest_search_epoch_under_the_final_accuracy():
    def searched(method, lam, accs, test, phase="search"):
        return {"config": {"method": method, "cost": "size", "lam": lam}, "metrics": {"test_accuracy": test},
                "phases": {phase: {"curve": [{"val_accuracy": a} for a in accs]}, "finetune": {"curve": []}}}

    records = [searched("joint", 1, [0.5, 0.1, 0.6], 0.8), searched("joint", 2, [0.7, 0.75], 0.8),
               searched("pit", 0.1, [0.4, 0.3], 0.7, phase="pit_search"),
               {"config": {"method": "float", "cost": "size", "lam": 0.0}, "metrics": {"test_accuracy": 0.9},
                "phases": {"warmup": {"curve": [{"val_accuracy": 0.2}]}}}]
    table = analysis.search_floor(records)
    assert table["method"].tolist() == ["joint", "joint", "pit"] and table["at_epoch"].tolist() == [2, 1, 2]
    assert table["drop_%"].tolist() == pytest.approx([70.0, 10.0, 40.0])
    assert analysis.summarize_search_floor(table) == (
        "joint searches: the deepest epoch lies 70.00 points under its run's final test accuracy (size lambda=1, "
        "epoch 2: 10.00 % against 80.00 %); 1 of 2 runs stay within 15 points.")
    assert analysis.summarize_search_floor(table, "mixprec") == "No mixprec search was recorded."
    rising = analysis.search_floor([searched("joint", 1, [0.85, 0.9], 0.8)])
    assert "the deepest epoch lies 5.00 points above its run's final test accuracy" in \
        analysis.summarize_search_floor(rising)


def test_precision_groups_table_prices_the_split_of_each_layer_into_precisions_on_ne16():
    layer = {"name": "c", "kind": "conv", "cin": 16, "cout": 32, "kernel": [3, 3], "stride": [1, 1], "groups": 1,
             "out_hw": [16, 16], "bias": False, "input_act": "x", "input_source": None, "input_multiplier": 1}

    def searched(cost, lam, bits, acc):
        r = latency_record("joint", cost, lam, acc, 0, 0)
        r["arch"] = {"layers": {"c": {**layer, "weight_bits": bits}}, "activations": {"x": 8}}
        return r

    records = [searched("ne16", 0.2, [8] * 32, 90), searched("mpic", 1, [8] * 16 + [4] * 16, 91),
               searched("ne16", 0.1, [8] * 16 + [4] * 16, 92), searched("mpic", 2, [2] * 32, 10),  # collapsed
               latency_record("w8a8", "size", 0, 92, 300, 30)]
    table = analysis.precision_groups_table(records)
    assert table[["trained_for", "lambda"]].values.tolist() == [["ne16", "0.1"], ["ne16", "0.2"], ["mpic", "1"]]
    assert table["precisions_per_layer"].tolist() == [2, 1, 2]
    assert table["ne16_cycles"].tolist() == [12_888, 12_780, 12_888]
    assert table["one_precision_cycles"].tolist() == [12_780] * 3
    assert table["split_cost_%"].tolist() == pytest.approx([100 * 108 / 12_780, 0, 100 * 108 / 12_780])
    assert analysis.summarize_precision_groups(table) == (
        "Against the same channels at one precision per layer: ne16-trained 1.50 precisions per layer, 0.4 % more "
        "NE16 cycles (median); mpic-trained 2.00 precisions per layer, 0.8 % more NE16 cycles (median).")


def studied(method, variant, lam, curve, size, acc, minutes=2.0, kept=None):
    config = {"benchmark": "digits", "method": method, "lam": lam, "cost": "size", "profile": "smoke", "seed": 0,
              "pit_lam": 1.0 if method == "sequential" else None, "act_bits": [8]}
    if variant:
        config["variant"] = variant
    return {"config": config, "metrics": {"size_kb": size, "test_accuracy": acc},
            "phases": {"warmup": {"seconds": 99.0},
                       "search": {"seconds": 60 * minutes / 2, "best_epoch": kept or len(curve),
                                  "curve": [{"val_accuracy": v} for v in curve]},
                       "finetune": {"seconds": 60 * minutes / 2}}}


STUDIED = [studied("w8a8", None, 0.0, [0.76, 0.79], 77.0, 0.82),
           studied("joint", None, 2.0, [0.49, 0.10, 0.52], 9.3, 0.69),
           studied("joint", "hard", 2.0, [0.74, 0.70, 0.73], 12.0, 0.76, kept=1),
           studied("mixprec", None, 2.0, [0.67, 0.72], 25.8, 0.80),
           studied("mixprec", "hard", 2.0, [0.70, 0.75], 20.0, 0.78),
           studied("edmips", None, 2.0, [0.67, 0.72], 9.0, 0.77),
           studied("sequential", "hard", 2.0, [0.6, 0.7], 15.8, 0.765)]


def test_the_search_study_table_reads_each_search_curve_and_marks_the_chosen_setting():
    table = analysis.search_study(STUDIED, "compensate+hard")
    assert list(table.columns) == analysis.STUDY_COLUMNS
    row = table.iloc[1].to_dict()
    assert (row["variant"], row["first_search_val"], row["lowest_search_val"], row["last_search_val"]) == \
        ("none", 0.49, 0.10, 0.52)
    assert row["minutes"] == 2.0 and not row["chosen"]
    assert table["kept_search_epoch"].tolist() == [2, 3, 1, 2, 2, 2, 2]  # the search's selected epoch, from 1
    # no plain sweep given: the study's own runs without a variant draw each method's front (w8a8, joint, MixPrec and
    # EdMIPS at 0.0); joint hard, larger than its front, against its largest point; MixPrec hard is smaller than its
    # front, PIT -> MixPrec has none
    assert table["gap_to_plain_front"].fillna(-99).tolist() == [0.0, 0.0, pytest.approx(7.0), 0.0, -99, 0.0, -99]
    # compensation changes no MixPrec, EdMIPS or PIT -> MixPrec run: their "hard" runs are the chosen ones
    assert table["chosen"].tolist() == [True, False, False, False, True, False, True]


def test_the_search_study_places_each_run_against_its_methods_plain_front():
    plain = [studied("joint", None, lam, [0.5], size, acc) for lam, size, acc in [(6.0, 3.0, 0.58), (2.0, 9.0, 0.69),
                                                                                 (1.0, 19.0, 0.77)]]
    plain += [studied("joint", "hard", 1.5, [0.7], 12.0, 0.99)]  # a variant's run draws no front
    table = analysis.search_study(STUDIED, "hard", plain)
    gaps = dict(zip(zip(table["method"], table["variant"]), table["gap_to_plain_front"]))
    assert gaps[("joint", "hard")] == pytest.approx(76.0 - (69.0 + 3 / 10 * 8.0))  # 12 kB, between 9 and 19 kB
    assert gaps[("joint", "none")] == pytest.approx(69.0 - 69.24)  # at 9.3 kB the line from 9 to 19 kB gives 69.24
    assert gaps[("mixprec", "none")] == 0.0 and pd.isna(gaps[("mixprec", "hard")])  # the study's plain MixPrec run


def test_the_study_verdict_checks_the_collapse_the_start_and_the_baselines():
    (line,) = analysis.study_verdict(analysis.search_study(STUDIED, "hard"))
    assert line.startswith("joint lambda=2 (hard): 12.00 kB at 76.00 %; lowest search epoch 70.0 % against 76.0 %")
    assert "(within 15 points)" in line and "first epoch 74.0 % against w8a8's 76.0 % (within 5 points)" in line
    assert "dominated by" not in line  # EdMIPS is smaller but plain (not chosen); sequential is larger
    (line,) = analysis.study_verdict(analysis.search_study(STUDIED, None))
    assert "(not within 15 points)" in line and "(not within 5 points)" in line
    assert line.endswith("dominated by edmips lambda=2 (9.00 kB, 77.00 %)")
    same = [*STUDIED, studied("mixprec", "hard", 1.0, [0.75], 12.0, 0.76)]  # equal on both: no dominance
    (line,) = analysis.study_verdict(analysis.search_study(same, "hard"))
    assert "dominated by" not in line
    tied = [*STUDIED, studied("mixprec", "hard", 1.0, [0.75], 11.0, 0.76)]  # smaller at the same accuracy
    (line,) = analysis.study_verdict(analysis.search_study(tied, "hard"))
    assert line.endswith("dominated by mixprec lambda=1 (11.00 kB, 76.00 %)")


REPEATED = [record("w8a8", 0, 80, 90, 0), record("w8a8", 0, 80, 91, 1), record("w8a8", 0, 80, 92, 2),
            record("w2a8", 0, 20, 80, 0), record("joint", 1, 10, 85, 0), record("joint", 2, 48, 91, 0),
            record("joint", 2, 52, 93, 1)]


def test_a_setting_trained_with_several_seeds_is_one_point_at_their_mean_with_their_spread():
    w8a8, = analysis.points(REPEATED, "w8a8")
    assert (w8a8.cost, w8a8.accuracy, w8a8.spread, w8a8.seeds) == (80.0, pytest.approx(91.0), pytest.approx(1.0), 3)
    by_lam = {p.lam: p for p in analysis.points(REPEATED, "joint")}
    assert (by_lam[2].cost, by_lam[2].accuracy, by_lam[2].seeds) == (50.0, pytest.approx(92.0), 2)
    assert by_lam[2].spread == pytest.approx(2 ** 0.5)  # sample standard deviation of 91 and 93
    assert (by_lam[1].accuracy, by_lam[1].spread, by_lam[1].seeds) == (85.0, 0.0, 1)
    unseeded = [record("joint", 0, 5, 70), record("joint", 0, 6, 71)]  # the paper's points: one each
    assert len(analysis.points(unseeded, "joint")) == 2


def test_first_seeds_keeps_each_settings_lowest_seed_in_order():
    shuffled = [REPEATED[1], REPEATED[0], REPEATED[6], REPEATED[5], REPEATED[4]]
    assert analysis.first_seeds(shuffled) == [REPEATED[0], REPEATED[5], REPEATED[4]]


def test_size_table_compares_with_the_mean_baseline_and_states_both_spreads():
    table = analysis.size_table(REPEATED)
    rows = {r["comparison"]: r for r in table.to_dict("records")}
    w8a8 = rows["joint vs w8a8"]  # the mean w8a8 (91 %) is reached by joint lambda 2 at its mean 92 %, 50 kB
    assert (w8a8["baseline_acc_%"], w8a8["baseline_spread_%"]) == (pytest.approx(91.0), pytest.approx(1.0))
    assert (w8a8["method_kB"], w8a8["method_spread_%"], w8a8["reduction_%"]) == \
        (50.0, pytest.approx(2 ** 0.5), pytest.approx(100 * (1 - 50 / 80)))
    assert ("against w8a8 (80.00 kB at 91.00 ± 1.00 %) joint is 37.5 % smaller (50.00 kB at 92.00 ± 1.41 %)"
            in analysis.summarize_size_table(table))
    single = analysis.size_table(analysis.first_seeds(REPEATED))
    assert "baseline_spread_%" not in single.columns and "±" not in analysis.summarize_size_table(single)


def test_front_comparison_states_the_spreads_where_a_setting_repeats():
    match = analysis.front_comparison(REPEATED + [record("mixprec", 1, 60, 91.5, 0)], "joint", "mixprec")
    row, = match.to_dict("records")  # mixprec (60, 91.5) is matched by joint lambda 2 at its mean (50 kB, 92 %)
    assert (row["joint_kB"], row["mixprec_spread_%"], row["joint_spread_%"]) == (50.0, 0.0, pytest.approx(2 ** 0.5))
    assert analysis.summarize_front_comparison(match, "joint", "mixprec").endswith(
        "(over seeds these points spread by up to 1.41 points).")
    single = analysis.front_comparison(analysis.first_seeds(REPEATED) + [record("mixprec", 1, 60, 91.5, 0)], "joint",
                                       "mixprec")
    assert "joint_spread_%" not in single.columns
    assert "spread" not in analysis.summarize_front_comparison(single, "joint", "mixprec")


def test_the_training_time_counts_one_seed_per_setting():
    runs = copy.deepcopy(TIMED)
    for lam, r in enumerate(runs, start=1):  # each run its own setting, as real configs are
        r["config"].update(lam=float(lam), seed=0)
    repeat = copy.deepcopy(runs[0])
    repeat["key"], repeat["config"]["seed"] = "j1b", 1
    rows = {r["method"]: r for r in analysis.time_table(runs + [repeat]).to_dict("records")}
    assert rows["joint (total)"]["runs"] == 3 and rows["joint (total)"]["seconds"] == 3.0 + 25.0
    assert analysis.front_times(runs + [repeat]).equals(analysis.front_times(runs))

import pandas as pd
import pytest

from joint import analysis, paper
from joint.analysis import Point, iso_accuracy, pareto_front, reduction


def paper_points(series):
    return [Point(series, s, a) for s, a in paper.CIFAR10_SIZE[series]]


def test_pareto_front_keeps_only_non_dominated_points():
    pts = [Point("m", 10, 80), Point("m", 5, 70), Point("m", 7, 65), Point("m", 20, 79), Point("m", 30, 85)]
    assert [(p.cost, p.accuracy) for p in pareto_front(pts)] == [(5, 70), (10, 80), (30, 85)]


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


def record(method, lam, size, acc):
    return {"config": {"method": method, "lam": lam}, "metrics": {"size_kb": float(size), "test_accuracy": acc / 100}}


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
    assert summary.count(".") >= 2 and "50.0 % vs w2a8" in summary


def test_table_says_none_when_the_method_never_reaches_the_baseline():
    table = analysis.size_table([record("w8a8", 0, 80, 99), record("w2a8", 0, 20, 97), record("joint", 1, 10, 90)])
    assert table["reduction_%"].isna().all()
    assert "no model reaches w8a8's 99.00 %" in analysis.summarize_size_table(table)
    assert "| none |" in analysis.to_markdown(table)


def test_write_table(tmp_path):
    csv, md = analysis.write_table(pd.DataFrame([{"a": 1.0, "b": None}]), tmp_path / "t")
    assert csv.read_text().splitlines() == ["a,b", "1.0,"] and "| 1.00 |  |" in md.read_text()


def test_no_runs_at_all_is_said_plainly():
    table = analysis.size_table([])
    assert table.empty
    assert analysis.summarize_size_table(table).startswith("No baseline or method runs were recorded")

import matplotlib
import matplotlib.container
import pytest
import torch

import joint
from joint import plots
from joint.search import random_architecture

matplotlib.use("Agg")


def record(method, lam, size, acc, seed=None):
    config = {"method": method, "lam": lam, **({} if seed is None else {"seed": seed})}
    return {"config": config, "metrics": {"size_kb": size, "test_accuracy": acc / 100}}


def test_size_pareto_has_a_series_per_method_markers_and_the_float_line(tmp_path):
    records = [record("joint", 1, 5.0, 90), record("joint", 2, 2.0, 85), record("mixprec", 1, 20.0, 91),
               record("w8a8", 0, 77.0, 92), record("w2a8", 0, 19.0, 88), record("float", 0, 300.0, 93)]
    fig = plots.size_pareto(records, "test")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["Joint (proposed)", "MixPrec"] and "w8a8" in labels and "w2a8" in labels
    assert any(label.startswith("FP warm-up") for label in labels)
    assert fig.axes[0].get_xscale() == "log"
    png, pdf = plots.save(fig, tmp_path / "f" / "pareto")
    assert png.stat().st_size > 0 and pdf.read_bytes().startswith(b"%PDF") and not list(tmp_path.rglob("*.tmp"))


def test_paper_reference_panel_draws_every_published_series():
    fig = plots.paper_size_pareto()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:5] == ["Joint (proposed)", "MixPrec", "EdMIPS", "PIT", "PIT + MixPrec"]


def test_precision_map_and_layer_sizes():
    net = joint.searchable(joint.models.resnet8(), joint.SearchSpace(), torch.rand(1, 3, 32, 32))
    random_architecture(net, seed=2)
    arch = net.arch()
    fig = plots.arch_heatmap(arch)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(arch.layers)
    assert "pruned" in [t.get_text() for t in fig.axes[1].get_yticklabels()]
    before = joint.searchable(joint.models.resnet8(), joint.SearchSpace((8,), (8,)), torch.rand(1, 3, 32, 32)).arch()
    fig = plots.layer_sizes(before, arch)
    assert len(fig.axes[0].patches) == 2 * len(arch.layers)


def test_latency_figure_has_an_mpic_and_an_ne16_panel_with_a_front_per_training_cost_model():
    records = [{"config": {"method": "joint", "cost": c, "lam": lam}, "metrics": {"test_accuracy": acc,
                "mpic_cycles": m, "ne16_cycles": n}} for c, lam, acc, m, n in
               [("mpic", 1, 0.9, 2e5, 3e4), ("ne16", 1, 0.8, 3e5, 1e4), ("size", 1, 0.85, 2.5e5, 2e4)]]
    records.append({"config": {"method": "w8a8", "cost": "size", "lam": 0},
                    "metrics": {"test_accuracy": 0.9, "mpic_cycles": 5e5, "ne16_cycles": 4e4}})
    fig = plots.latency_pareto(records, "t", costs=("mpic", "ne16", "size"))
    on_mpic, on_ne16 = fig.axes
    assert on_mpic.get_xlabel() == "MPIC cycles (x1e6)" and on_ne16.get_xlabel() == "NE16 cycles (x1e5)"
    labels = [t.get_text() for t in on_ne16.get_legend().get_texts()]
    assert labels == ["MPIC", "NE16", "size", "w8a8"]
    assert list(on_ne16.lines[0].get_xdata()) == [0.3]  # 3e4 cycles in units of 1e5
    paper_fig = plots.latency_pareto(joint.paper.latency_records(), "paper")
    assert [t.get_text() for t in paper_fig.axes[0].get_legend().get_texts()] == ["MPIC", "NE16", "w2a8", "w4a8",
                                                                                  "w8a8"]


def test_search_curves_have_an_accuracy_and_a_size_panel_per_lambda_and_a_line_per_variant():
    def searched(method, variant, lam):
        config = {"method": method, "lam": lam, **({"variant": variant} if variant else {})}
        curve = [{"val_accuracy": 0.5, "cost": 8000.0 * k} for k in (3, 2, 1)]
        return {"config": config, "phases": {"search": {"curve": curve}}}

    records = [searched("joint", None, 1.0), searched("joint", "hard", 1.0), searched("joint", "hard", 2.0),
               searched("mixprec", None, 1.0), searched("w8a8", None, 0.0), {"config": {"method": "pit"}, "phases": {}}]
    fig = plots.search_curves(records, (1.0, 2.0), "test")
    assert len(fig.axes) == 4
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["none (as profiled)", "hard", "MixPrec", "w8a8"]
    assert list(fig.axes[2].lines[0].get_ydata()) == [3.0, 2.0, 1.0]  # kB of the argmax network per epoch


def test_settings_trained_with_several_seeds_get_error_bars_and_the_float_line_a_band():
    records = [record("joint", 1, 5.0, 90, 0), record("joint", 1, 5.0, 92, 1), record("joint", 2, 2.0, 85, 0),
               record("w8a8", 0, 77.0, 91, 0), record("w8a8", 0, 77.0, 93, 1), record("float", 0, 300.0, 93, 0),
               record("float", 0, 300.0, 94, 1)]
    ax = plots.size_pareto(records, "test").axes[0]
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == 2  # joint lambda 1 and w8a8; the single-seed joint point has none
    (segments,) = [b.lines[2][0].get_segments() for b in bars if b.lines[0].get_xdata()[0] == 5.0]
    assert [tuple(y for _, y in s) for s in segments] == [pytest.approx((91 - 2 ** 0.5, 91 + 2 ** 0.5))]
    assert len(ax.patches) == 1  # the float band: one standard deviation around the mean warm-up

"""Figure style and the paper's plot types: accuracy-vs-size Pareto fronts, per-channel precision maps."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from . import analysis, methods, paper
from .arch import Arch

SERIES = {  # colour, marker, line style, as in the paper's figures
    "joint": ("tab:blue", "o", "-"),
    "mixprec": ("tab:green", "X", "--"),
    "edmips": ("goldenrod", "s", ":"),
    "pit": ("grey", "*", "none"),
    "sequential": ("tab:orange", "P", "-."),
}
FIXED_MARKERS = {"w2a8": "D", "w4a8": "p", "w8a8": "8"}
LABELS = {**{name: m.label for name, m in methods.METHODS.items()}, "pit": "PIT", "sequential": "PIT + MixPrec"}


def _front(ax, pts: list[analysis.Point], name: str) -> None:
    colour, marker, style = SERIES[name]
    front = analysis.pareto_front(pts)
    ax.plot([p.cost for p in front], [p.accuracy for p in front], color=colour, marker=marker, linestyle=style,
            label=LABELS.get(name, name))
    others = [p for p in pts if p not in front]
    ax.scatter([p.cost for p in others], [p.accuracy for p in others], color=colour, marker=marker, alpha=0.3)
    _spreads(ax, pts, colour)


def _spreads(ax, pts: list[analysis.Point], colour: str) -> None:
    """Error bars of ± one standard deviation over seeds at the points trained with several."""
    repeated = [p for p in pts if p.seeds > 1]
    if repeated:
        ax.errorbar([p.cost for p in repeated], [p.accuracy for p in repeated], yerr=[p.spread for p in repeated],
                    color=colour, linestyle="none", capsize=3, zorder=4)


def size_pareto(records: list[dict], title: str, ax=None, series: tuple[str, ...] = tuple(SERIES)):
    """Test accuracy against weight size (log x): a front per searched method, fixed-precision markers, float line;
    a setting trained with several seeds at its mean, with ± one standard deviation drawn."""
    ax = ax or plt.subplots(figsize=(6.4, 4.2))[1]
    for name in series:
        pts = analysis.points(records, name)
        if pts:
            _front(ax, pts, name)
    for name, marker in FIXED_MARKERS.items():
        fixed = analysis.points(records, name)
        for p in fixed:
            ax.scatter([p.cost], [p.accuracy], marker=marker, s=70, color="tab:purple", edgecolor="black",
                       label=name, zorder=3)
        _spreads(ax, fixed, "tab:purple")
    for p in analysis.points(records, "float"):
        ax.axhline(p.accuracy, color="tab:red", linestyle="--", label=f"FP warm-up ({p.cost:.0f} kB fp32)")
        if p.seeds > 1:
            ax.axhspan(p.accuracy - p.spread, p.accuracy + p.spread, color="tab:red", alpha=0.1)
    _decorate(ax, title)
    return ax.figure


def paper_size_pareto(ax=None):
    """The paper's CIFAR-10 size figure, redrawn from the points read off it (reference panel)."""
    ax = ax or plt.subplots(figsize=(6.4, 4.2))[1]
    for name in SERIES:
        pts = [analysis.Point(name, s, a) for s, a in paper.CIFAR10_SIZE[name]]
        _front(ax, pts, name)
    for name, marker in FIXED_MARKERS.items():
        (s, a), = paper.CIFAR10_SIZE[name]
        ax.scatter([s], [a], marker=marker, s=70, color="tab:purple", edgecolor="black", label=name, zorder=3)
    ax.axhline(paper.CIFAR10_FLOAT_ACCURACY, color="tab:red", linestyle="--", label="FP warm-up")
    _decorate(ax, "CIFAR-10, the paper's figure")
    return ax.figure


TRAINED_FOR = {  # series of the cost-model ablation: the paper's MPIC (blue circles) and NE16 (green X) styles
    "mpic": ("tab:blue", "o", "-"),
    "ne16": ("tab:green", "X", "--"),
    "size": ("goldenrod", "s", ":"),
    "bitops": ("tab:orange", "P", "-."),
}
CYCLE_UNITS = {"mpic": 1e6, "ne16": 1e5}


def _latency_series(ax, pts: list[analysis.Point], name: str, scale: float) -> None:
    colour, marker, style = TRAINED_FOR.get(name, ("tab:grey", "v", "-"))
    pts = [replace(p, cost=p.cost / scale) for p in pts]
    front = analysis.pareto_front(pts)
    ax.plot([p.cost for p in front], [p.accuracy for p in front], color=colour, marker=marker, linestyle=style,
            label=name.upper() if name in analysis.HARDWARE else name)
    others = [p for p in pts if p not in front]
    ax.scatter([p.cost for p in others], [p.accuracy for p in others], color=colour, marker=marker, alpha=0.3)
    _spreads(ax, pts, colour)


def _latency_axes(ax, target: str, title: str) -> None:
    ax.set_xlabel(f"{target.upper()} cycles (x{CYCLE_UNITS[target]:.0e})".replace("e+0", "e"))
    ax.set_ylabel("Test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", title="trained for", title_fontsize=7)


def latency_pareto(records: list[dict], title: str, costs: tuple[str, ...] = tuple(TRAINED_FOR), axes=None):
    """The paper's cost-model figure: a front per training cost model, drawn in MPIC cycles and in NE16 cycles."""
    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(12, 4.2))[1]
    for ax, target in zip(axes, analysis.HARDWARE):
        metric, scale = analysis.METRICS[target], CYCLE_UNITS[target]
        for cost in costs:
            pts = analysis.points(analysis.trained_with(records, cost), "joint", metric)
            if pts:
                _latency_series(ax, pts, cost, scale)
        for name, marker in FIXED_MARKERS.items():
            fixed = [replace(p, cost=p.cost / scale) for p in analysis.points(records, name, metric)]
            for p in fixed:
                ax.scatter([p.cost], [p.accuracy], marker=marker, s=70, color="tab:purple", edgecolor="black",
                           label=name, zorder=3)
            _spreads(ax, fixed, "tab:purple")
        _latency_axes(ax, target, f"{title}: on {target.upper()}")
    return axes[0].figure


def search_curves(records: list[dict], lams: tuple[float, ...], title: str, method: str = "joint"):
    """The search study's curves per lambda (columns): the argmax network's validation accuracy (top) and weight size
    (bottom) after each search epoch, a line per variant of `method`; the plain MixPrec search and w8a8 beside."""
    fig, axes = plt.subplots(2, len(lams), figsize=(6 * len(lams), 7), sharex=True, squeeze=False)
    variants = list(dict.fromkeys(r["config"].get("variant") for r in records if r["config"]["method"] == method))
    colours = dict(zip(variants, plt.get_cmap("tab10").colors))
    for column, lam in enumerate(lams):
        top, bottom = axes[0, column], axes[1, column]
        for r in (r for r in records if "search" in r["phases"]):
            c, curve = r["config"], r["phases"]["search"]["curve"]
            if c["method"] == method and c["lam"] == lam:
                style = dict(color=colours[c.get("variant")], marker="o", markersize=3,
                             label=c.get("variant") or "none (as profiled)")
            elif (c["method"] == "mixprec" and c["lam"] == lam and not c.get("variant")) or c["method"] == "w8a8":
                style = dict(color="black", linestyle="--" if c["method"] == "mixprec" else ":",
                             label=LABELS[c["method"]])
            else:
                continue
            epochs = range(1, len(curve) + 1)
            top.plot(epochs, [100 * e["val_accuracy"] for e in curve], **style)
            bottom.plot(epochs, [e["cost"] / 8000 for e in curve], **style)
        top.set_title(f"{title}: {LABELS[method]}, lambda = {lam:g}")
        top.set_ylabel("validation accuracy of the argmax network (%)")
        bottom.set_ylabel("weights of the argmax network (kB)")
        bottom.set_xlabel("search epoch")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        top.legend(fontsize=7, loc="lower left")
    return fig


def _decorate(ax, title: str) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Size (kB)")
    ax.set_ylabel("Test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def time_bars(table, ax=None):
    """Wall-clock training seconds per method (and per stage of the sequential baseline)."""
    ax = ax or plt.subplots(figsize=(6.4, 3.2))[1]
    ax.barh(table["method"], table["seconds"], color="tab:gray")
    for y, (seconds, epochs) in enumerate(zip(table["seconds"], table["epochs"])):
        ax.text(seconds, y, f" {seconds:.0f} s, {epochs} epochs", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("training time (s)")
    ax.set_xlim(0, 1.35 * max(table["seconds"]))
    return ax.figure


def arch_heatmap(arch: Arch, ax=None):
    """Layers (rows) by output channels (columns) coloured by weight bits; pruned channels in their own colour."""
    names = list(arch.layers)
    width = max(len(layer.weight_bits) for layer in arch.layers.values())
    grid = np.full((len(names), width), np.nan)
    for i, name in enumerate(names):
        bits = arch.layers[name].weight_bits
        grid[i, :len(bits)] = bits
    levels = sorted({int(b) for b in grid[~np.isnan(grid)]})
    colours = ["black"] + list(plt.get_cmap("viridis")(np.linspace(0.15, 0.95, 4)))
    palette = {0: colours[0], 2: colours[1], 4: colours[2], 8: colours[3], 16: colours[4]}
    cmap = ListedColormap([palette.get(b, "grey") for b in levels]).with_extremes(bad="white")
    norm = BoundaryNorm([b - 0.5 for b in levels] + [levels[-1] + 0.5], len(levels))
    ax = ax or plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))[1]
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("output channel")
    bar = ax.figure.colorbar(image, ax=ax, ticks=levels)
    bar.set_ticklabels(["pruned" if b == 0 else f"{b} bit" for b in levels])
    ax.set_title(f"weight bits per channel ({100 * arch.pruned_fraction():.0f} % of channels pruned)")
    return ax.figure


def layer_sizes(before: Arch, after: Arch, ax=None):
    """Weight memory per layer (kB) of two architectures side by side."""
    names = list(before.layers)
    x = np.arange(len(names))
    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    ax.bar(x - 0.2, [before.layer_cost(n) / 8000 for n in names], 0.4, label=f"before ({before.size_kb():.2f} kB)")
    ax.bar(x + 0.2, [after.layer_cost(n) / 8000 for n in names], 0.4, label=f"after ({after.size_kb():.2f} kB)")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("weights (kB)")
    ax.legend()
    return ax.figure


def save(fig, stem: Path) -> tuple[Path, Path]:
    """Save `stem`.png and `stem`.pdf."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    for path in paths:
        tmp = path.with_name(path.name + ".tmp")
        metadata = {"CreationDate": None} if path.suffix == ".pdf" else {}  # byte-identical reruns
        fig.savefig(tmp, dpi=150, format=path.suffix[1:], metadata=metadata)
        tmp.replace(path)
    return paths

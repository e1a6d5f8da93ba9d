"""Pareto fronts, the iso-accuracy size reduction (the paper's rule), and the tables of the analyses."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from . import methods
from .arch import Arch
from .config import RunConfig
from .data import CLASSES


@dataclass(frozen=True)
class Point:
    """One trained setting: its method, cost (kB, cycles, ...), test accuracy in %, and lambda; the mean over its
    seeds where it was trained with several."""

    method: str
    cost: float
    accuracy: float
    lam: float = 0.0
    spread: float = 0.0  # accuracy's standard deviation over the seeds of one setting, in points
    seeds: int = 1  # how many seeds the point averages


# NE16 runs 8-bit activations only: in NE16 cycles a model counts with its accuracy measured at 8-bit activations
# (records without that key, such as the paper's points, use their test accuracy; None: it cannot run there)
ACCURACY_OF = {"ne16_cycles": "ne16_accuracy"}


def accuracy_on(metrics: dict, metric: str = "size_kb") -> float | None:
    """A record's accuracy (a fraction) as the target of `metric` runs the model; None where it cannot run there."""
    return metrics.get(ACCURACY_OF.get(metric, "test_accuracy"), metrics["test_accuracy"])


def setting(record: dict) -> tuple:
    """A record's config less its seed: the runs that repeat one setting with other seeds share it. A record without
    a seed (the paper's points read off its figures) is a setting of its own."""
    config = record["config"]
    if "seed" not in config:
        return ("record", id(record))
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.items() if k != "seed"))


def first_seeds(records: list[dict]) -> list[dict]:
    """Each setting's run with the lowest seed: what an analysis of one seed (training time, fronts' effort) counts."""
    keys = [setting(r) for r in records]
    first: dict[tuple, dict] = {}
    for key, r in zip(keys, records):
        if key not in first or r["config"]["seed"] < first[key]["config"]["seed"]:
            first[key] = r
    return [r for key, r in zip(keys, records) if first[key] is r]


def points(records: list[dict], method: str, metric: str = "size_kb") -> list[Point]:
    """Every setting of `method` as a Point, accuracy in % (on NE16 cycles, as NE16 runs the model); a setting
    trained with several seeds gives one point at their mean cost and accuracy, its spread the accuracies' standard
    deviation."""
    runs: dict[tuple, list[tuple[float, float, float]]] = {}
    for r in records:
        m = r["metrics"]
        accuracy = accuracy_on(m, metric)
        if r["config"]["method"] == method and m.get(metric) is not None and accuracy is not None:
            runs.setdefault(setting(r), []).append((m[metric], 100 * accuracy, r["config"]["lam"]))
    out = []
    for repeats in runs.values():
        costs, accuracies, (lam, *_) = zip(*repeats)
        spread = statistics.stdev(accuracies) if len(repeats) > 1 else 0.0
        out.append(Point(method, statistics.fmean(costs), statistics.fmean(accuracies), lam,
                         spread, len(repeats)))
    return out


COLLAPSE_FACTOR = 1.5  # a model below 1.5x chance accuracy has collapsed: no reference for an iso comparison


def collapsed(record: dict, metric: str = "size_kb") -> bool:
    """Whether a model is at chance accuracy (as measured for `metric`): it predicts about one class."""
    accuracy = accuracy_on(record["metrics"], metric)
    chance = 1 / CLASSES[record["config"].get("benchmark", "cifar10")]
    return accuracy is not None and accuracy < COLLAPSE_FACTOR * chance


def comparable(records: list[dict], metric: str = "size_kb") -> list[dict]:
    """The records an iso-accuracy table may compare: every one but the collapsed models."""
    return [r for r in records if not collapsed(r, metric)]


def left_out(records: list[dict], metrics: tuple[str, ...] = ("size_kb",)) -> str:
    """One line naming the collapsed models the iso-accuracy tables leave out, per metric ("" if none)."""
    parts = []
    for metric in metrics:
        for r in records:
            if r["metrics"].get(metric) is not None and collapsed(r, metric):
                c, accuracy = r["config"], accuracy_on(r["metrics"], metric)
                seed = f" seed={c['seed']}" if "seed" in c else ""
                parts.append(f"{c['method']} {c['cost']} lambda={c['lam']:g}{seed} ({100 * accuracy:.2f} % on "
                             f"{metric})")
    return ("left out of the iso-accuracy tables, collapsed to chance accuracy: " + "; ".join(parts)) if parts else ""


def pareto_front(pts: list[Point]) -> list[Point]:
    """The non-dominated points (lower cost, higher accuracy), in increasing cost."""
    front: list[Point] = []
    for p in sorted(pts, key=lambda p: (p.cost, -p.accuracy)):
        if not front or p.accuracy > front[-1].accuracy:
            front.append(p)
    return front


def dominates(a: Point, b: Point) -> bool:
    """Whether `a` is at most as costly and at least as accurate as `b`, and strictly better in one of the two."""
    return a.cost <= b.cost and a.accuracy >= b.accuracy and (a.cost < b.cost or a.accuracy > b.accuracy)


def undominated(mine: list[Point], theirs: list[Point]) -> int:
    """How many points of `mine` no point of `theirs` dominates."""
    return sum(not any(dominates(t, m) for t in theirs) for m in mine)


def front_gap(point: Point, front: list[Point]) -> float | None:
    """How many accuracy points `point` lies above (+) or below (-) the straight lines joining the Pareto points of
    `front` at its cost; beyond the front's largest point, above or below that point's accuracy (what a larger model
    must beat); None below the front's smallest cost."""
    f = pareto_front(front)
    if point.cost >= f[-1].cost:
        return point.accuracy - f[-1].accuracy
    for a, b in zip(f, f[1:]):
        if a.cost <= point.cost <= b.cost:
            return point.accuracy - (a.accuracy + (point.cost - a.cost) / (b.cost - a.cost) * (b.accuracy - a.accuracy))
    return None


def iso_accuracy(candidates: list[Point], baseline: Point) -> Point | None:
    """The smallest candidate at least as accurate as the baseline (no interpolation), or None."""
    reaching = [p for p in candidates if p.accuracy >= baseline.accuracy]
    return min(reaching, key=lambda p: (p.cost, -p.accuracy)) if reaching else None


def reduction(candidate: Point | None, baseline: Point) -> float | None:
    """1 - cost/cost_baseline, or None when no candidate reaches the baseline's accuracy."""
    return None if candidate is None else 1 - candidate.cost / baseline.cost


def _row(comparison: str, baseline: Point, best: Point | None) -> dict:
    return {"comparison": comparison, "baseline_kB": baseline.cost, "baseline_acc_%": baseline.accuracy,
            "baseline_spread_%": baseline.spread, "method_kB": None if best is None else best.cost,
            "method_acc_%": None if best is None else best.accuracy,
            "method_spread_%": None if best is None else best.spread,
            "reduction_%": None if best is None else 100 * reduction(best, baseline)}


SIZE_COLUMNS = ["comparison", "baseline_kB", "baseline_acc_%", "baseline_spread_%", "method_kB", "method_acc_%",
                "method_spread_%", "reduction_%"]
SPREAD_COLUMNS = ["baseline_spread_%", "method_spread_%"]


def size_table(records: list[dict], method: str = "joint", metric: str = "size_kb") -> pd.DataFrame:
    """Iso-accuracy reduction of `method` against w8a8 and w2a8, and against each other searched method's front.

    Against a front the row reports the largest reduction over that front's points ("up to", as the paper).
    Collapsed models (at chance accuracy) are left out: they are no reference for iso-accuracy. A setting trained
    with several seeds counts at its mean; the spread columns (standard deviations over seeds, in accuracy points)
    are there only when some setting was. Against a front that no model of `method` reaches, the row names the
    front's least accurate point.
    """
    records = comparable(records, metric)
    mine = points(records, method, metric)
    settings = [setting(r) for r in records]
    hidden = [] if len(set(settings)) < len(settings) else SPREAD_COLUMNS
    columns = [c for c in SIZE_COLUMNS if c not in hidden]
    if not mine:
        return pd.DataFrame(columns=columns)
    rows = []
    for fixed in ("w8a8", "w2a8"):
        for base in points(records, fixed, metric):
            rows.append(_row(f"{method} vs {fixed}", base, iso_accuracy(mine, base)))
    for other in methods.SEARCHED + ("pit", "sequential"):
        if other == method:
            continue
        theirs = pareto_front(points(records, other, metric))
        if not theirs:
            continue
        pairs = [(base, iso_accuracy(mine, base)) for base in theirs]
        reached = [(base, best) for base, best in pairs if best is not None]
        if reached:
            base, best = max(reached, key=lambda pair: reduction(pair[1], pair[0]))
        else:
            base, best = theirs[0], None
        rows.append({**_row(f"{method} vs {other} (up to)", base, best),
                     "points_reached": f"{len(reached)}/{len(theirs)}"})
    return pd.DataFrame(rows).drop(columns=hidden) if rows else pd.DataFrame(columns=columns)


def _accuracy(row, side: str) -> str:
    """A table row's accuracy of one side ("baseline" or "method"), with its spread over seeds where it has one."""
    spread = row.get(f"{side}_spread_%")
    plus = f" ± {spread:.2f}" if spread is not None and not pd.isna(spread) and spread > 0 else ""
    return f"{row[f'{side}_acc_%']:.2f}{plus} %"


SEARCH_PHASES = ("search", "finetune")
PIT_PHASES = ("pit_search", "pit_finetune")


def _effort(records: list[dict], phases: tuple[str, ...]) -> tuple[int, float]:
    epochs = sum(r["phases"][p]["epochs"] for r in records for p in phases if p in r["phases"])
    seconds = sum(r["phases"][p]["seconds"] for r in records for p in phases if p in r["phases"])
    return epochs, seconds


def _pit_seeds(records: list[dict], sequential: list[dict]) -> list[dict]:
    """The PIT records that seed the given sequential records (each counted once)."""
    by_key = {r["key"]: r for r in records}
    keys = sorted({r["seed"]["key"] for r in sequential})
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise ValueError(f"sequential records name PIT seeds that are not among the records: {', '.join(missing)}")
    return [by_key[k] for k in keys]


def flow_runs(records: list[dict], baseline: str = "sequential",
              flow_seed: float | None = None) -> tuple[list[dict], list[dict]]:
    """The `baseline` runs of the sequential flow (on the PIT seed of λ `flow_seed`; None: on every seed), and its runs
    on the other seeds, which show the seed choice but are not part of the flow."""
    runs = [r for r in records if r["config"]["method"] == baseline]
    if flow_seed is None:
        return runs, []
    return ([r for r in runs if r["config"].get("pit_lam") == flow_seed],
            [r for r in runs if r["config"].get("pit_lam") != flow_seed])


def time_table(records: list[dict], method: str = "joint", baseline: str = "sequential",
               flow_seed: float | None = None) -> pd.DataFrame:
    """Runs, epochs and wall-clock seconds each flow needs to produce its whole front, and the final models it gives;
    the warm-up shared by all runs of a flow is counted once, and the sequential flow is split into its PIT stage
    (every PIT run: the scan that picks the seeds, the unused λ included) and its MixPrec stage, on the seed of
    `flow_seed` where it is given (its runs on other seeds get a row of their own, outside the flow). One seed per
    setting (`first_seeds`): the repeats that measure the spread are no part of either flow."""
    records = first_seeds(records)
    flow, elsewhere = flow_runs(records, baseline, flow_seed)
    runs = {method: [r for r in records if r["config"]["method"] == method], baseline: flow}
    warm = next((r["phases"]["warmup"] for r in records if "warmup" in r["phases"]), {"epochs": 0, "seconds": 0.0})
    if "pretrain" in warm:  # Tiny ImageNet's 224-px stage belongs to the warm-up
        warm = {"epochs": warm["epochs"] + warm["pretrain"]["epochs"],
                "seconds": warm["seconds"] + warm["pretrain"]["seconds"]}
    rows = []

    def row(name: str, count: int, final: int, epochs: int, seconds: float) -> None:
        rows.append({"method": name, "runs": count, "final_models": final, "epochs": epochs, "seconds": seconds})

    row("float warm-up (shared, once per method)", 1, 0, warm["epochs"], warm["seconds"])
    epochs, seconds = _effort(runs[method], SEARCH_PHASES)
    row(f"{method} (total)", len(runs[method]) + 1, len(runs[method]), epochs + warm["epochs"], seconds + warm["seconds"])
    _pit_seeds(records, runs[baseline])  # every seed is among the records
    scan = [r for r in records if r["config"]["method"] == "pit"] if runs[baseline] else []
    pit_epochs, pit_seconds = _effort(scan, PIT_PHASES)
    mix_epochs, mix_seconds = _effort(runs[baseline], SEARCH_PHASES)
    row(f"{baseline} (total)", len(scan) + len(runs[baseline]) + 1, len(runs[baseline]),
        pit_epochs + mix_epochs + warm["epochs"], pit_seconds + mix_seconds + warm["seconds"])
    row(f"{baseline}: PIT stage", len(scan), 0, pit_epochs, pit_seconds)
    row(f"{baseline}: MixPrec stage", len(runs[baseline]), len(runs[baseline]), mix_epochs, mix_seconds)
    if elsewhere:
        row(f"{baseline}: MixPrec on the other PIT seeds (not in the flow)", len(elsewhere), len(elsewhere),
            *_effort(elsewhere, SEARCH_PHASES))
    return pd.DataFrame(rows)


def point_seconds(record: dict, records: list[dict]) -> float:
    """Training seconds behind one Pareto point: its own phases, plus its PIT seed's for the sequential baseline."""
    _, seconds = _effort([record], SEARCH_PHASES + PIT_PHASES)
    if "seed" in record:
        seconds += _effort(_pit_seeds(records, [record]), PIT_PHASES)[1]
    return seconds


def front_times(records: list[dict], methods: tuple[str, ...] = ("joint", "sequential")) -> pd.DataFrame:
    """Every Pareto point of the given methods with the training seconds behind it (PIT seed included), one training
    seed per setting."""
    records, rows = first_seeds(records), []
    for method in methods:
        runs = [r for r in records if r["config"]["method"] == method]
        front = pareto_front(points(runs, method))
        for r in runs:
            p = Point(method, r["metrics"]["size_kb"], 100 * r["metrics"]["test_accuracy"], r["config"]["lam"])
            if p in front:
                rows.append({"method": method, "lam": p.lam, "pit_lam": r["config"].get("pit_lam"), "size_kB": p.cost,
                             "acc_%": p.accuracy, "seconds": point_seconds(r, records)})
    columns = ["method", "lam", "pit_lam", "size_kB", "acc_%", "seconds"]
    return pd.DataFrame(rows, columns=columns).sort_values(["method", "size_kB"], ignore_index=True)


def match_front(mine: list[Point], theirs: list[Point], mine_name: str, their_name: str,
                unit: str = "kB") -> pd.DataFrame:
    """For every point of `theirs`' front, the cheapest of `mine` at least as accurate and the cost reduction, and how
    many accuracy points `mine`'s front lies above (+) or under (-) it at its cost (see `front_gap`); where a setting
    was trained with several seeds, the two points' spreads too."""
    spreads = [f"{their_name}_spread_%", f"{mine_name}_spread_%"] if any(p.seeds > 1 for p in mine + theirs) else []
    rows = []
    for base in pareto_front(theirs):
        best = iso_accuracy(mine, base)
        gap = front_gap(base, mine) if mine else None
        rows.append({f"{their_name}_{unit}": base.cost, f"{their_name}_acc_%": base.accuracy,
                     f"{mine_name}_{unit}": None if best is None else best.cost,
                     f"{mine_name}_acc_%": None if best is None else best.accuracy,
                     "reduction_%": None if best is None else 100 * reduction(best, base),
                     f"{mine_name}_ahead_pt": None if gap is None else 0.0 - gap,  # 0.0 - gap: never -0.0
                     f"{their_name}_spread_%": base.spread,
                     f"{mine_name}_spread_%": None if best is None else best.spread})
    return pd.DataFrame(rows, columns=[f"{their_name}_{unit}", f"{their_name}_acc_%", f"{mine_name}_{unit}",
                                       f"{mine_name}_acc_%", "reduction_%", f"{mine_name}_ahead_pt", *spreads])


def front_comparison(records: list[dict], method: str, other: str, metric: str = "size_kb") -> pd.DataFrame:
    """For every point of `other`'s front, the smallest `method` model at least as accurate, and the reduction
    (collapsed models left out)."""
    records = comparable(records, metric)
    return match_front(points(records, method, metric), points(records, other, metric), method, other)


def summarize_front_comparison(match: pd.DataFrame, mine: str, theirs: str, unit: str = "kB") -> str:
    """Where `mine` wins and where it loses against each point of `theirs`' front (a `front_comparison` table): the
    points it reaches, smaller or larger there, and the points its front passes above or under at equal cost."""
    if match.empty:
        return f"No {theirs} front to compare {mine} with."
    reduced = match["reduction_%"].dropna()
    smaller, larger = reduced[reduced >= 0], reduced[reduced < 0]
    reach = f"{mine} reaches {len(reduced)} of the {len(match)} {theirs} front points"
    if len(reduced):
        sides = [f"smaller at {len(smaller)} (up to {smaller.max():.1f} %)" if len(smaller) else "smaller at none",
                 f"larger at {len(larger)} (up to {-larger.min():.1f} %)" if len(larger) else "larger at none"]
        reach += ", " + " and ".join(sides)
    ahead = match[f"{mine}_ahead_pt"]
    above, under, outside = match[ahead >= 0], match[ahead < 0], int(ahead.isna().sum())
    line = (f"at equal {unit} its front passes through or above {len(above)} of them"
            + (f" (by up to {above[f'{mine}_ahead_pt'].max():.2f} points)" if len(above) else ""))
    if len(under):
        worst = under.loc[under[f"{mine}_ahead_pt"].idxmin()]
        line += (f" and under {len(under)} (by up to {-worst[f'{mine}_ahead_pt']:.2f} points, at {theirs} "
                 f"{worst[f'{theirs}_{unit}']:.2f} {unit})")
    else:
        line += " and under none"
    if outside:
        line += f"; {outside} lie below its smallest model"
    spread = match.filter(like="_spread_%").max().max() if f"{mine}_spread_%" in match else None
    seeds = f" (over seeds these points spread by up to {spread:.2f} points)" if spread else ""
    return f"{reach}; {line}{seeds}."


METRICS = {"size": "size_kb", "bitops": "bitops", "mpic": "mpic_cycles", "ne16": "ne16_cycles"}
HARDWARE = ("mpic", "ne16")


def trained_with(records: list[dict], cost: str, method: str = "joint") -> list[dict]:
    """The records of `method` whose search was regularised by cost model `cost`."""
    return [r for r in records if r["config"]["method"] == method and r["config"]["cost"] == cost]


def search_settings(records: list[dict], method: str = "joint") -> pd.DataFrame:
    """Per training cost model of `method`: its runs, lambda grid, activation precisions and all-8-bit reference."""
    rows = []
    for cost in dict.fromkeys(r["config"]["cost"] for r in records if r["config"]["method"] == method):
        runs = trained_with(records, cost, method)
        rows.append({"cost_model": cost, "runs": len(runs),
                     "lambdas": ", ".join(f"{lam:g}" for lam in sorted({r["config"]["lam"] for r in runs})),
                     "act_bits": ", ".join(sorted({"/".join(map(str, r["config"]["act_bits"])) for r in runs})),
                     "all_8_bit_cost": runs[0]["metrics"]["cost_reference"]})
    return pd.DataFrame(rows)


def cycles_table(records: list[dict], method: str = "joint") -> pd.DataFrame:
    """On each hardware target, every point of the front trained for the other target against the cheapest model
    trained for this one that is at least as accurate: cycles at iso-accuracy (the paper's figure, as numbers).
    Collapsed models are left out."""
    tables = []
    for target in HARDWARE:
        other = next(h for h in HARDWARE if h != target)
        metric = METRICS[target]
        usable = comparable(records, metric)
        mine = points(trained_with(usable, target, method), method, metric)
        theirs = points(trained_with(usable, other, method), method, metric)
        table = match_front(mine, theirs, f"{target}_trained", f"{other}_trained", "cycles").iloc[:, :5]
        table.columns = ["reference_cycles", "reference_acc_%", "matched_cycles", "matched_acc_%", "reduction_%"]
        table.insert(0, "matched", f"{target}-trained")
        table.insert(0, "reference", f"{other}-trained")
        table.insert(0, "target", target)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def cost_model_summary(records: list[dict], costs: tuple[str, ...], method: str = "joint") -> pd.DataFrame:
    """On each hardware target, the front trained for it against the front trained with every other cost model:
    how many of that front's points it reaches at iso-accuracy, and the median and largest cycle reduction.
    Collapsed models are left out."""
    rows = []
    for target in HARDWARE:
        metric = METRICS[target]
        usable = comparable(records, metric)
        mine = points(trained_with(usable, target, method), method, metric)
        for cost in costs:
            if cost == target:
                continue
            theirs = points(trained_with(usable, cost, method), method, metric)
            match = match_front(mine, theirs, target, cost, "cycles")
            reached = match["reduction_%"].dropna()
            rows.append({"target": target, "trained_for": cost,
                         "points_reached": f"{len(reached)}/{len(match)}",
                         "median_reduction_%": reached.median() if len(reached) else None,
                         "max_reduction_%": reached.max() if len(reached) else None})
    return pd.DataFrame(rows)


def precision_groups_table(records: list[dict], method: str = "joint") -> pd.DataFrame:
    """Per searched model of `method`: weight precisions per layer, and its NE16 cycles against the same kept channels
    at one precision per layer (each layer's highest): what splitting layers into precisions costs on NE16, which
    runs each precision of a layer as a sub-layer with tiles of its own. Collapsed models are left out."""
    rows = []
    for r in comparable(records, "ne16_cycles"):
        if r["config"]["method"] != method or r.get("arch") is None:
            continue
        arch = Arch.from_dict(r["arch"])
        split, single = arch.cost("ne16"), arch.one_precision_per_layer().cost("ne16")
        accuracy = accuracy_on(r["metrics"], "ne16_cycles")
        rows.append({"trained_for": r["config"]["cost"], "lambda": r["config"]["lam"],
                     "ne16_acc_%": None if accuracy is None else 100 * accuracy,
                     "precisions_per_layer": arch.precision_groups() / len(arch.layers), "ne16_cycles": split,
                     "one_precision_cycles": single, "split_cost_%": 100 * (split / single - 1)})
    table = pd.DataFrame(rows, columns=["trained_for", "lambda", "ne16_acc_%", "precisions_per_layer", "ne16_cycles",
                                        "one_precision_cycles", "split_cost_%"])
    order = {cost: i for i, cost in enumerate(dict.fromkeys(table["trained_for"]))}
    table = table.sort_values(["trained_for", "lambda"], key=lambda c: c.map(order) if c.name == "trained_for" else c,
                              ignore_index=True)
    return table.assign(**{"lambda": table["lambda"].map(lambda lam: f"{lam:g}")})  # 0.005 stays 0.005 in print


def summarize_precision_groups(table: pd.DataFrame) -> str:
    """One clause per training cost model: precisions per layer and the median NE16 cost of the split."""
    if table.empty:
        return "No searched model to break down."
    clauses = [f"{cost}-trained {rows['precisions_per_layer'].mean():.2f} precisions per layer, "
               f"{rows['split_cost_%'].median():.1f} % more NE16 cycles (median)"
               for cost, rows in table.groupby("trained_for", sort=False)]
    return "Against the same channels at one precision per layer: " + "; ".join(clauses) + "."


def summarize_cycles(table: pd.DataFrame) -> str:
    """One sentence per target: how the front trained for it compares with the other target's front."""
    sentences = []
    for target, rows in table.groupby("target", sort=False):
        reached = rows["reduction_%"].dropna()
        reference, matched = rows["reference"].iloc[0], rows["matched"].iloc[0]
        if not len(reached):
            sentences.append(f"On {target} cycles, no {matched} model is as accurate as any point of the {reference} "
                             f"front.")
            continue
        fewer = (reached > 0).sum()
        sentences.append(
            f"On {target} cycles, the {matched} front reaches {len(reached)} of the {len(rows)} points of the "
            f"{reference} front at iso-accuracy and needs fewer cycles at {fewer} of them; the reduction ranges "
            f"from {reached.min():.1f} % to {reached.max():.1f} % (median {reached.median():.1f} %, negative = "
            f"more cycles).")
    return " ".join(sentences)


def size_range(records: list[dict], method: str, metric: str = "size_kb") -> tuple[float, float]:
    """Smallest and largest cost on a method's Pareto front."""
    front = pareto_front(points(records, method, metric))
    return (front[0].cost, front[-1].cost) if front else (float("nan"), float("nan"))


def summarize_time(table: pd.DataFrame, records: list[dict], method: str = "joint",
                   baseline: str = "sequential", flow_seed: float | None = None) -> str:
    """The training-time ratio of the two flows, the size ranges their runs and fronts cover, and how many models of
    each flow the other does not dominate, from the numbers (one training seed per setting and the sequential runs of
    the flow, as `time_table`)."""
    records, total = first_seeds(records), table.set_index("method")
    records = [r for r in records if r["config"]["method"] != baseline] + flow_runs(records, baseline, flow_seed)[0]
    mine, theirs = total.loc[f"{method} (total)"], total.loc[f"{baseline} (total)"]

    def ranges(m: str) -> str:
        sizes = [p.cost for p in points(records, m)]
        if not sizes:
            return "no runs"
        lo, hi = size_range(records, m)
        return f"runs {min(sizes):.2f}-{max(sizes):.2f} kB, front {lo:.2f}-{hi:.2f} kB"

    compared = comparable(records)
    ours, other = points(compared, method), points(compared, baseline)
    return (f"The {method} flow trains its whole front in {mine['seconds']:.0f} s ({int(mine['epochs'])} epochs, "
            f"{int(mine['runs'])} runs, {int(mine['final_models'])} final models) against {theirs['seconds']:.0f} s "
            f"({int(theirs['epochs'])} epochs, {int(theirs['runs'])} runs, {int(theirs['final_models'])} final "
            f"models) for the {baseline} flow: a ratio of {mine['seconds'] / theirs['seconds']:.2f} in wall-clock "
            f"time and {mine['epochs'] / theirs['epochs']:.2f} in epochs. Sizes covered: {method} {ranges(method)}; "
            f"{baseline} {ranges(baseline)}. Of the {len(ours)} {method} models, {undominated(ours, other)} are "
            f"dominated by no {baseline} model (one at most as large and at least as accurate, better in one of the "
            f"two); of the {len(other)} {baseline} models, {undominated(other, ours)} by no {method} model.")


def summarize_size_table(table: pd.DataFrame) -> str:
    """Two sentences: the reduction against the fixed-precision baselines, then against the other methods (the
    largest over each front's points, as the abstract's "up to")."""
    if table.empty:
        return "No run of the method was recorded beside a baseline or another method's front: nothing to compare."
    method = table["comparison"].iloc[0].split(" vs ")[0]

    def clause(row) -> str:
        name = row["comparison"].split(" vs ")[1].replace(" (up to)", "")
        baseline = f"{name} ({row['baseline_kB']:.2f} kB at {_accuracy(row, 'baseline')})"
        if pd.isna(row["reduction_%"]):
            return f"no {method} model reaches {baseline}"
        verb = "smaller" if row["reduction_%"] >= 0 else "larger"
        return (f"against {baseline} {method} is {abs(row['reduction_%']):.1f} % {verb} "
                f"({row['method_kB']:.2f} kB at {_accuracy(row, 'method')})")

    fixed = table[~table["comparison"].str.contains("up to")]
    fronts = table[table["comparison"].str.contains("up to")]
    first = ("At iso-accuracy with the fixed-precision baselines: " + "; ".join(
        clause(r) for _, r in fixed.iterrows()) + ".") if len(fixed) else "No fixed-precision baseline was recorded."
    second = ("Against the other searched fronts, at its best over each front's points: " + "; ".join(
        clause(r) for _, r in fronts.iterrows()) + ".") if len(fronts) else "No other searched front was recorded."
    return first + " " + second


def _first_phase(record: dict, names: tuple[str, ...]) -> dict | None:
    """The record's phase of the first of `names` it ran (a quantized run's or a PIT run's), or None."""
    return next((record["phases"][name] for name in names if name in record["phases"]), None)


def fine_tune_settling(records: list[dict]) -> pd.DataFrame:
    """Per run, the change of validation accuracy (points) over the last two epochs of its final fine-tune: how far
    from a plateau each point was compared."""
    rows = []
    for r in records:
        phase = _first_phase(r, ("finetune", "pit_finetune"))
        if phase is None or len(phase["curve"]) < 2:
            continue
        last, before = (100 * e["val_accuracy"] for e in phase["curve"][-1:-3:-1])
        c = r["config"]
        rows.append({"method": c["method"], "cost": c["cost"], "lambda": c["lam"], "epochs": phase["epochs"],
                     "last_val_acc_%": last, "change_%": last - before})
    return pd.DataFrame(rows, columns=["method", "cost", "lambda", "epochs", "last_val_acc_%", "change_%"])


def search_floor(records: list[dict]) -> pd.DataFrame:
    """Per run with a search phase, its lowest search-epoch validation accuracy (of the argmax network) against the
    run's final test accuracy, in points: how deep a search fell before the fine-tune recovered it, which the final
    point hides."""
    rows = []
    for r in records:
        phase = _first_phase(r, ("search", "pit_search"))
        if phase is None:
            continue
        curve = [100 * e["val_accuracy"] for e in phase["curve"]]
        lowest = min(range(len(curve)), key=curve.__getitem__)
        c, test = r["config"], 100 * r["metrics"]["test_accuracy"]
        rows.append({"method": c["method"], "cost": c["cost"], "lambda": c["lam"],
                     "lowest_search_val_%": curve[lowest], "at_epoch": lowest + 1, "test_acc_%": test,
                     "drop_%": test - curve[lowest]})
    return pd.DataFrame(rows, columns=["method", "cost", "lambda", "lowest_search_val_%", "at_epoch", "test_acc_%",
                                       "drop_%"])


def summarize_search_floor(table: pd.DataFrame, method: str = "joint", margin: float = 15.0) -> str:
    """One sentence: the deepest search epoch of `method`'s runs under their final accuracy, and how many stay within
    `margin` points of it."""
    runs = table[table["method"] == method]
    if runs.empty:
        return f"No {method} search was recorded."
    worst = runs.loc[runs["drop_%"].idxmax()]
    within = int((runs["drop_%"] <= margin).sum())
    side = "under" if worst["drop_%"] >= 0 else "above"
    return (f"{method} searches: the deepest epoch lies {abs(worst['drop_%']):.2f} points {side} its run's final test "
            f"accuracy ({worst['cost']} lambda={worst['lambda']:g}, epoch {worst['at_epoch']}: "
            f"{worst['lowest_search_val_%']:.2f} % against {worst['test_acc_%']:.2f} %); {within} of {len(runs)} "
            f"runs stay within {margin:g} points.")


STUDY_COLUMNS = ["variant", "method", "lam", "first_search_val", "lowest_search_val", "last_search_val",
                 "kept_search_epoch", "size_kb", "test_accuracy", "gap_to_plain_front", "minutes", "chosen"]


def search_study(records: list[dict], choice: str | None, plain: list[dict] = ()) -> pd.DataFrame:
    """One row per run of the search study: how its search went (validation accuracy of the argmax network after
    the first epoch, the lowest, the last; fractions), the epoch whose architecture the fine-tune starts from (the
    phase's selection, counted from 1), where it ended, how many accuracy points above or below the front of its
    method's plain runs (those of `plain`, a sweep without variants over every lambda, and the study's own runs
    without a variant; None below that front's sizes),
    its minutes after the warm-up, and whether it is a run of the setting `choice` (the adopted default: a variant
    that does not change a method gives its plain run, so that run is chosen too; fixed baselines always are)."""
    fronts: dict[tuple[str, str], list[Point]] = {}
    for p in (p for p in [*plain, *records] if not p["config"].get("variant")):
        key = (p["config"]["method"], p["config"]["cost"])
        fronts.setdefault(key, []).extend(points([p], key[0]))
    rows = []
    for r in (r for r in records if "search" in r["phases"]):  # not the PIT seed
        c, m = r["config"], r["metrics"]
        curve = [e["val_accuracy"] for e in r["phases"]["search"]["curve"]]
        config = RunConfig.of(c)
        chosen = config == replace(config, variant=choice)  # RunConfig drops what a variant does not change
        front = fronts.get((c["method"], c["cost"]))
        gap = front_gap(Point(c["method"], m["size_kb"], 100 * m["test_accuracy"]), front) if front else None
        minutes = sum(p.get("seconds", 0.0) for name, p in r["phases"].items() if name != "warmup") / 60
        rows.append({"variant": c.get("variant") or "none", "method": c["method"], "lam": c["lam"],
                     "first_search_val": curve[0], "lowest_search_val": min(curve), "last_search_val": curve[-1],
                     "kept_search_epoch": r["phases"]["search"]["best_epoch"], "size_kb": m["size_kb"],
                     "test_accuracy": m["test_accuracy"], "gap_to_plain_front": gap, "minutes": minutes,
                     "chosen": chosen})
    return pd.DataFrame(rows, columns=STUDY_COLUMNS)


STUDY_BASELINES = ("mixprec", "edmips", "sequential")


def study_verdict(table: pd.DataFrame, collapse_margin: float = 0.15, start_margin: float = 0.05) -> list[str]:
    """One line per chosen joint run of the search study, against the study's goals: every search epoch within
    `collapse_margin` of its final test accuracy, the first within `start_margin` of w8a8's first epoch, and a point
    that no chosen MixPrec, EdMIPS or PIT -> MixPrec run dominates (`dominates`)."""
    chosen = table[table["chosen"]]
    fixed = chosen[chosen["method"] == "w8a8"]
    baselines = chosen[chosen["method"].isin(STUDY_BASELINES)]
    lines = []
    for _, run in chosen[chosen["method"] == "joint"].iterrows():
        drop = run["test_accuracy"] - run["lowest_search_val"]
        parts = [f"lowest search epoch {100 * run['lowest_search_val']:.1f} % against {100 * run['test_accuracy']:.1f} "
                 f"% after fine-tuning ({'within' if drop <= collapse_margin else 'not within'} "
                 f"{100 * collapse_margin:.0f} points)"]
        if len(fixed):
            reference = fixed["first_search_val"].iloc[0]
            within = "within" if reference - run["first_search_val"] <= start_margin else "not within"
            parts.append(f"first epoch {100 * run['first_search_val']:.1f} % against w8a8's {100 * reference:.1f} % "
                         f"({within} {100 * start_margin:.0f} points)")
        point = Point("joint", run["size_kb"], run["test_accuracy"])
        better = [b for _, b in baselines.iterrows()
                  if dominates(Point(b["method"], b["size_kb"], b["test_accuracy"]), point)]
        parts.append("no baseline point dominates it" if not better else "dominated by " + ", ".join(
            f"{b['method']} lambda={b['lam']:g} ({b['size_kb']:.2f} kB, {100 * b['test_accuracy']:.2f} %)"
            for b in better))
        lines.append(f"joint lambda={run['lam']:g} ({run['variant']}): {run['size_kb']:.2f} kB at "
                     f"{100 * run['test_accuracy']:.2f} %; " + "; ".join(parts))
    return lines


LAMBDA_COLUMNS = ("lambda", "lam", "pit_lam")


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub Markdown table; a missing result reads "none", other missing cells stay empty."""
    def cell(value, column: str) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "none" if column.startswith(("method_", "reduction")) else ""
        if column in LAMBDA_COLUMNS and isinstance(value, float):
            return f"{value:g}"  # a grid value as written (0.005, not 0.01)
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v, c) for v, c in zip(row, columns)) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, stem: Path) -> tuple[Path, Path]:
    """Write `stem`.csv and `stem`.md (atomically: temp file, then rename)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_suffix(".csv"), stem.with_suffix(".md")
    for path, text in ((csv, table.to_csv(index=False)), (md, to_markdown(table))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return csv, md

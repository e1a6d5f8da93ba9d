"""Pareto fronts, the iso-accuracy size reduction (the paper's rule), and the tables of the analyses."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import methods


@dataclass(frozen=True)
class Point:
    """One trained model: its method, cost (kB, cycles, ...), test accuracy in %, and lambda."""

    method: str
    cost: float
    accuracy: float
    lam: float = 0.0


def points(records: list[dict], method: str, metric: str = "size_kb") -> list[Point]:
    """Every record of `method` as a Point, accuracy in %."""
    return [Point(method, r["metrics"][metric], 100 * r["metrics"]["test_accuracy"], r["config"]["lam"])
            for r in records if r["config"]["method"] == method and r["metrics"].get(metric) is not None]


def pareto_front(pts: list[Point]) -> list[Point]:
    """The non-dominated points (lower cost, higher accuracy), in increasing cost."""
    front: list[Point] = []
    for p in sorted(pts, key=lambda p: (p.cost, -p.accuracy)):
        if not front or p.accuracy > front[-1].accuracy:
            front.append(p)
    return front


def iso_accuracy(candidates: list[Point], baseline: Point) -> Point | None:
    """The smallest candidate at least as accurate as the baseline (no interpolation), or None."""
    reaching = [p for p in candidates if p.accuracy >= baseline.accuracy]
    return min(reaching, key=lambda p: (p.cost, -p.accuracy)) if reaching else None


def reduction(candidate: Point | None, baseline: Point) -> float | None:
    """1 - cost/cost_baseline, or None when no candidate reaches the baseline's accuracy."""
    return None if candidate is None else 1 - candidate.cost / baseline.cost


def _row(comparison: str, baseline: Point, best: Point | None) -> dict:
    return {"comparison": comparison, "baseline_kB": baseline.cost, "baseline_acc_%": baseline.accuracy,
            "method_kB": None if best is None else best.cost, "method_acc_%": None if best is None else best.accuracy,
            "reduction_%": None if best is None else 100 * reduction(best, baseline)}


def size_table(records: list[dict], method: str = "joint", metric: str = "size_kb") -> pd.DataFrame:
    """Iso-accuracy reduction of `method` against w8a8 and w2a8, and against each other searched method's front.

    Against a front the row reports the largest reduction over that front's points ("up to", as the paper).
    """
    mine = points(records, method, metric)
    if not mine:
        return pd.DataFrame(columns=["comparison", "baseline_kB", "baseline_acc_%", "method_kB", "method_acc_%",
                                     "reduction_%"])
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
            base, best = theirs[-1], None
        rows.append({**_row(f"{method} vs {other} (up to)", base, best),
                     "points_reached": f"{len(reached)}/{len(theirs)}"})
    return pd.DataFrame(rows)


def describe_size_table(table: pd.DataFrame) -> str:
    """Plain sentences stating what the table shows, written from its numbers."""
    sentences = []
    for _, row in table.iterrows():
        if pd.isna(row["reduction_%"]):
            sentences.append(f"{row['comparison']}: no model reaches the baseline's {row['baseline_acc_%']:.2f} % "
                             f"accuracy, so there is no iso-accuracy reduction.")
        else:
            verb = "smaller" if row["reduction_%"] >= 0 else "larger"
            sentences.append(f"{row['comparison']}: {row['method_kB']:.2f} kB at {row['method_acc_%']:.2f} % against "
                             f"{row['baseline_kB']:.2f} kB at {row['baseline_acc_%']:.2f} %, "
                             f"{abs(row['reduction_%']):.1f} % {verb}.")
    return "\n".join(sentences)


def summarize_size_table(table: pd.DataFrame) -> str:
    """Two sentences: the reduction against the fixed-precision baselines, then against the other methods."""
    def phrase(row) -> str:
        name = row["comparison"].split(" vs ")[1].replace(" (up to)", "")
        if pd.isna(row["reduction_%"]):
            return f"no model reaches {name}'s {row['baseline_acc_%']:.2f} %"
        return f"{row['reduction_%']:.1f} % vs {name} ({row['method_kB']:.2f} kB at {row['method_acc_%']:.2f} %)"

    if table.empty:
        return "No baseline or method runs were recorded, so there is nothing to compare."
    fixed = table[~table["comparison"].str.contains("up to")]
    fronts = table[table["comparison"].str.contains("up to")]
    method = table["comparison"].iloc[0].split(" vs ")[0] if len(table) else "the method"
    first = f"At iso-accuracy with the fixed-precision baselines, {method} gives " + "; ".join(
        phrase(r) for _, r in fixed.iterrows()) + "."
    second = (f"Against the other searched fronts its size reduction is up to " + "; ".join(
        phrase(r) for _, r in fronts.iterrows()) + ".") if len(fronts) else "No other searched front was recorded."
    return first + " " + second


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub Markdown table; a missing result reads "none", other missing cells stay empty."""
    def cell(value, column: str) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "none" if column.startswith(("method_", "reduction")) else ""
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, columns)) + " |" for row in table.itertuples(index=False)]
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

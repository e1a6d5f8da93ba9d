"""The numbers the README and docs/ quote are the committed records' (and the paper's): an accuracy at a size, a
search or fine-tune curve, a copied table. A record regenerated, or a number mistyped, fails here."""
import re

import pytest

from joint import paper
from joint.store import ROOT, read_json

PAGES = ["README.md", "docs/results.md", "docs/search_study.md", "docs/method.md"]
# passages about runs that left no record (the first 10-epoch sweep's records were dropped; diagnostics outside the
# records), named by how their paragraph starts: their numbers cannot be recomputed, so they are not checked
NOT_RECORDED = ("- **Search and fine-tune lengths.**", "- **A search passes through chance accuracy.**",
                "- **A longer search does not avoid the collapse**")
CURVE = re.compile(r"(?:\*\*)?\d+(?:\.\d)?(?:\*\*)?(?:, (?:\*\*)?\d+(?:\.\d)?(?:\*\*)?){3,} %")
ARROWS = re.compile(r"\d+\.\d\d(?: → \d+\.\d\d)+ %")


RECORDS = [read_json(path) for profile in ("quick", "cpu", "cpu_long")
           for path in sorted((ROOT / "results" / profile / "runs").glob("*.json"))]


def _quoted_text(page: str) -> str:
    """The page's text on one line, the paragraphs and list items about unrecorded runs left out."""
    parts = re.split(r"\n(?=\n|- |\| )", (ROOT / page).read_text())
    return " ".join(" ".join(p.split()) for p in parts if not p.strip().startswith(NOT_RECORDED))


def _accuracy_at_size() -> set[tuple[str, str]]:
    """(accuracy %, kB) as the docs print them, of every record (test and validation) and of the paper's figure."""
    pairs = {(f"{acc:.2f}", f"{kb:.2f}") for rows in paper.CIFAR10_SIZE.values() for kb, acc in rows}
    for record in RECORDS:
        metrics = record["metrics"]
        pairs |= {(f"{100 * metrics[key]:.2f}", f"{metrics['size_kb']:.2f}") for key in ("test_accuracy",
                                                                                          "val_accuracy")}
    return pairs


def _curves(decimals: int) -> list[list[str]]:
    """Every recorded phase's validation accuracies per epoch, in %, as the docs print them."""
    return [[f"{100 * epoch['val_accuracy']:.{decimals}f}" for epoch in phase["curve"]]
            for record in RECORDS for phase in record.get("phases", {}).values() if phase.get("curve")]


TEXT = {page: _quoted_text(page) for page in PAGES}
PAIRS = _accuracy_at_size()
CURVES = {decimals: _curves(decimals) for decimals in (0, 1, 2)}


def _is_window(numbers: list[str], curves: list[list[str]]) -> bool:
    return any(curve[i:i + len(numbers)] == numbers for curve in curves for i in range(len(curve)))


@pytest.mark.parametrize("page", PAGES)
def test_every_accuracy_quoted_at_a_size_is_a_records_or_the_papers(page):
    quoted = re.findall(r"(\d+\.\d\d) %(?: test)? at (\d+\.\d\d) kB", TEXT[page])
    quoted += [(acc, kb) for kb, acc in re.findall(r"(\d+\.\d\d) kB at (\d+\.\d\d) %", TEXT[page])]
    assert quoted or page.endswith("search_study.md")
    assert [pair for pair in quoted if pair not in PAIRS] == []


@pytest.mark.parametrize("page", PAGES)
def test_every_pruned_share_quoted_is_a_records(page):
    known = {f"{100 * record['metrics']['pruned_fraction']:.1f}" for record in RECORDS}
    assert [share for share in re.findall(r"(\d+\.\d) % (?:of the channels )?pruned", TEXT[page])
            if share not in known] == []


@pytest.mark.parametrize("page", PAGES)
def test_every_quoted_curve_is_a_run_of_consecutive_recorded_epochs(page):
    wrong = []
    for found in CURVE.findall(TEXT[page]):
        numbers = re.findall(r"\d+(?:\.\d)?", found)
        if not _is_window(numbers, CURVES[1 if "." in numbers[0] else 0]):
            wrong.append(found)
    wrong += [found for found in ARROWS.findall(TEXT[page])
              if not _is_window(re.findall(r"\d+\.\d\d", found), CURVES[2])]
    assert wrong == []


def _committed_tables() -> dict[str, list[list[str]]]:
    """Every committed Markdown table as its lines, grouped by its header row (the profiles share headers)."""
    tables: dict[str, list[list[str]]] = {}
    for path in sorted((ROOT / "results").glob("*/*/*.md")):
        lines = path.read_text().splitlines()
        tables.setdefault(lines[0], []).append(lines)
    return tables


@pytest.mark.parametrize("page", PAGES)
def test_a_table_copied_from_the_results_is_the_committed_one(page):
    tables = _committed_tables()
    lines = (ROOT / page).read_text().splitlines()
    copied = [(i, lines[i]) for i in range(len(lines)) if lines[i] in tables]
    for i, header in copied:
        assert any(lines[i:i + len(table)] == table for table in tables[header]), f"{page}:{i + 1}"
    assert copied or page != "README.md"


def test_the_checks_catch_a_wrong_number():
    assert ("76.99", "18.71") in PAIRS and ("76.98", "18.71") not in PAIRS
    curve = re.findall(r"\d+\.\d", "50.9, 67.6, 72.2, 76.3, 17.7")
    assert _is_window(curve, CURVES[1]) and not _is_window([*curve[:-1], "17.6"], CURVES[1])

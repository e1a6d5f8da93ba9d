"""The committed reference outputs (results/<profile>/<benchmark>/*.csv, *.md) are what the committed records give,
and the executed notebooks (results/<profile>/notebooks/) are of the current sources: a change that would alter a
published table, or a notebook edited without re-running it, fails here instead of going unnoticed."""
from pathlib import Path

import pytest

from joint import analysis, experiments
from joint.config import RunConfig
from joint.profiles import get_profile
from joint.store import ROOT, read_json

RESULTS = ROOT / "results"
REFERENCE_PROFILES = ("quick", "cpu")  # committed outputs; smoke's (the tour notebook's default) are ignored
FOLDERS = sorted(p for profile in REFERENCE_PROFILES for p in (RESULTS / profile).glob("*")
                 if p.is_dir() and list(p.glob("*.csv")))


def _records(profile: str, benchmark: str, configs: list[RunConfig]) -> list[dict]:
    """The committed records of `configs`, in the order the notebooks read them."""
    recorded = {}
    for path in sorted((RESULTS / profile / "runs").glob("*.json")):
        record = read_json(path)
        if record["config"]["benchmark"] == benchmark:
            config = RunConfig.of(record["config"])
            recorded[config] = record
    missing = [c for c in configs if c not in recorded]
    assert not missing, f"{len(missing)} runs of {profile}/{benchmark} have no committed record, e.g. {missing[0]}"
    return [recorded[c] for c in configs]


def test_the_reference_folders_are_found():
    assert RESULTS / "quick" / "digits" in FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_committed_tables_are_what_the_committed_records_give(folder: Path):
    profile, benchmark = folder.parent.name, folder.name
    sized = _records(profile, benchmark, experiments.size_sweep(benchmark, profile))
    costed = _records(profile, benchmark, experiments.cost_sweep(benchmark, profile))
    assert len({r.get("data_identity", r["data"]) for r in sized + costed}) == 1, "records of several data copies"
    every = list({r["key"]: r for r in sized + costed}.values())
    flow_seed = get_profile(profile, benchmark).flow_seed
    tables = {"size_table": analysis.size_table(sized),
              "training_time": analysis.time_table(sized, flow_seed=flow_seed),
              "joint_vs_sequential": analysis.front_comparison(sized, "joint", "sequential"),
              "joint_vs_mixprec": analysis.front_comparison(sized, "joint", "mixprec"),
              "joint_vs_edmips": analysis.front_comparison(sized, "joint", "edmips"),
              "cycles_at_iso_accuracy": analysis.cycles_table(costed),
              "cost_model_summary": analysis.cost_model_summary(costed, experiments.ABLATION_COSTS),
              "ne16_precision_groups": analysis.precision_groups_table(costed),
              "fine_tune_settling": analysis.fine_tune_settling(every),
              "search_floor": analysis.search_floor(every)}
    study = experiments.study_sweep(benchmark, profile)
    if study:  # notebook 04's table, with each method's plain front drawn from the size sweep
        tables["search_study"] = analysis.search_study(_records(profile, benchmark, study),
                                                       get_profile(profile, benchmark).study_choice, sized)
    assert sorted(p.stem for p in folder.glob("*.csv")) == sorted(tables)
    for name, table in tables.items():
        assert (folder / f"{name}.csv").read_text() == table.to_csv(index=False), name
        assert (folder / f"{name}.md").read_text() == analysis.to_markdown(table), name


SOURCES = ROOT / "notebooks"  # the notebooks `make reproduce` executes into results/<profile>/notebooks/
EXECUTED = sorted(p for profile in REFERENCE_PROFILES for p in (RESULTS / profile / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("executed", EXECUTED, ids=lambda p: f"{p.parent.parent.name}-{p.stem}")
def test_committed_notebooks_were_executed_from_the_current_sources(executed: Path):
    """A notebook edited after `make reproduce` ran it leaves a stale executed copy: the copy's cells (less the
    parameters papermill injects) must be the source's."""
    source = read_json(SOURCES / f"{executed.stem.rsplit('-', 1)[0]}.ipynb")["cells"]
    cells = [c for c in read_json(executed)["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    assert ["".join(c["source"]) for c in cells] == ["".join(c["source"]) for c in source], \
        f"re-run make reproduce PROFILE={executed.parent.parent.name}"

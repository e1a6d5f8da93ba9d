"""Every command the README and docs/ show runs as written: `python -m joint` commands parse (the ones that need no
training run), make targets and variables exist, scripts exist, `python -c` code compiles, links resolve."""
import re
import shlex
from pathlib import Path

import pytest

from joint import paper
from joint.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OTHER_PROGRAMS = {"cd", "conda", "dask", "export", "git", "jupyter", "rm"}  # shown for the reader, not run here
RUNS_IN_SECONDS = {"info", "cost", "arch"}  # read a model or the committed quick records, train nothing


def shell_lines(page: Path) -> list[tuple[str, list[str]]]:
    """(line, words) of every command in the page's bash blocks, comments and leading VAR=value words dropped."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words:
                found.append((line, words))
    return found


def makefile() -> tuple[set[str], set[str]]:
    """The Makefile's phony targets and the variables a user may set."""
    text = (ROOT / "Makefile").read_text()
    targets = set(re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split())
    return targets, set(re.findall(r"^([A-Z_]+) \?=", text, re.M))


def python_command(words: list[str]) -> list[str] | None:
    """A `python -m joint` command's arguments (None: not one); other python invocations are checked here."""
    if words[1:3] == ["-m", "joint"]:
        return words[3:]
    if words[1] == "-c":
        compile(words[2], "<docs>", "exec")
    elif words[1:3] != ["-m", "venv"] and words[1:3] != ["-m", "pip"]:
        assert (ROOT / words[1]).is_file(), f"no script {words[1]}"
    return None


LINES = [(page.relative_to(ROOT).as_posix(), line, words) for page in PAGES for line, words in shell_lines(page)]


def test_the_docs_show_commands_and_every_page_is_linked_from_the_readme():
    assert len(LINES) > 20
    readme = (ROOT / "README.md").read_text()
    assert all(f"(docs/{page.name})" in readme for page in PAGES[1:])


@pytest.mark.parametrize("page, line, words", LINES, ids=[f"{p}:{w[0]} {w[1] if len(w) > 1 else ''}"
                                                         for p, _, w in LINES])
def test_a_shown_command_runs_as_written(page, line, words, capsys, monkeypatch, tmp_path):
    program = Path(words[0]).name
    if program == "make":
        targets, variables = makefile()
        assignments = [w.split("=", 1)[0] for w in words[1:] if "=" in w]
        assert set(words[1:]) - {w for w in words[1:] if "=" in w} <= targets, f"{page}: {line}"
        assert set(assignments) <= variables, f"{page}: {line}"
        return
    if program in OTHER_PROGRAMS or program.startswith("pip"):
        return
    assert program.startswith("python"), f"{page}: a command this test does not know: {line}"
    argv = python_command(words)
    if argv is None:
        return
    args = build_parser().parse_args(argv)  # exits (a failure) on a flag or value the CLI does not take
    if args.command in RUNS_IN_SECONDS and "--arch" not in argv:
        monkeypatch.chdir(tmp_path)
        assert main(argv) == 0, f"{page}: {line}\n{capsys.readouterr().err}"


def test_relative_links_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def figure_rows(heading: str) -> dict[str, list[tuple[float, ...]] | str]:
    """The rows of docs/protocol.md's table under `### heading`, keyed by their `paper.py` key: the number tuples of
    the last cell, or the cell itself when it holds none."""
    text = (ROOT / "docs/protocol.md").read_text()
    section = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^#|\Z)", text, re.S | re.M).group(1)
    rows = {}
    for key, cell in re.findall(r"^\| `(\w+)` \|[^|\n]*\|([^|\n]*)\|$", section, re.M):
        points = [tuple(float(v) for v in found.split(",")) for found in re.findall(r"\(([\d.e, ]+)\)", cell)]
        rows[key] = points or cell.strip()
    return rows


def test_the_protocol_page_quotes_the_papers_figures_as_paper_py_holds_them_and_is_the_one_cited():
    size = figure_rows("CIFAR-10 size figure")
    assert float(re.fullmatch(r"([\d.]+) %", size.pop("float")).group(1)) == paper.CIFAR10_FLOAT_ACCURACY
    assert size == {key: [tuple(map(float, point)) for point in rows] for key, rows in paper.CIFAR10_SIZE.items()}
    latency = figure_rows("CIFAR-10 MPIC and NE16 figure")
    assert latency == {key: [tuple(map(float, point)) for point in rows]
                       for key, rows in paper.CIFAR10_LATENCY.items()}
    page = (ROOT / "docs/protocol.md").read_text()
    assert all(f"{100 * claim:.2f} %" in page for claim in paper.ABSTRACT.values())
    # every other file cites the page by its path (a docs page by a relative link), none the notes' section numbers
    sources = [*ROOT.glob("*.md"), ROOT / "Makefile", *(path for folder in ("joint", "tests", "notebooks", "docs",
               "benchmarks") for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".md", ".ipynb"))]
    stale = []
    for path in sources:
        if path == ROOT / "docs/protocol.md":
            continue
        text = path.read_text()
        if path.parent == ROOT / "docs":
            text = re.sub(r"\]\(protocol\.md", "](docs/protocol.md", text)
        stale += [f"{path.relative_to(ROOT)}: {m.group()}" for m in re.finditer(r"(?<!docs/)protocol\.md|protocol\s*§",
                                                                              text)]
    assert not stale, stale

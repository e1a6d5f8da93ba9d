"""Every command the README and docs/ show runs as written: `python -m joint` commands parse (the ones that need no
training run), make targets and variables exist, scripts exist, `python -c` code compiles, links resolve."""
import re
import shlex
from pathlib import Path

import pytest

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

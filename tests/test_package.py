import ast
import re
import sys
import tomllib
from pathlib import Path

import joint

PACKAGE = Path(joint.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in its body (function-level imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(paths)) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import path per circle: every module reachable from itself, with the path that gets back to it."""
    found = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(path + [start])
                    stack = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return found


def test_no_module_of_the_package_imports_itself_back_through_others():
    graph = import_graph()
    assert {"joint.store", "joint.plain", "joint.data.benchmark"} <= set(graph)
    assert cycles(graph) == [], "\n".join(" -> ".join(c) for c in cycles(graph))


def test_the_cycle_finder_finds_a_circle_and_its_path():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"], ["b", "c", "a", "b"],
                                                                        ["c", "a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count():
    module = PACKAGE / "export.py"
    assert "joint.train" in imports_of(module, set(import_graph()))  # imported inside onnx_accuracy only


DISTRIBUTION = {"sklearn": "scikit-learn", "PIL": "torchvision", "ml_dtypes": "ml_dtypes"}  # module -> what installs it


def third_party_imports() -> dict[str, set[str]]:
    """Every top-level module outside the standard library that a module of the package imports, and where."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level else []
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"joint", "__future__"}:
                found.setdefault(top, set()).add(module_name(path))
    return found


def test_pyproject_declares_every_distribution_the_package_imports():
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[ ]", d)[0].lower() for d in project["dependencies"]}
    extras = {re.split(r"[<>=\[ ]", d)[0].lower() for group in project["optional-dependencies"].values() for d in group}
    imports = third_party_imports()
    assert {"torch", "numpy", "sklearn", "distributed", "torchaudio", "onnx"} <= set(imports)
    missing = {m: where for m, where in imports.items() if DISTRIBUTION.get(m, m).lower() not in declared | extras}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    optional = {m for m in imports if DISTRIBUTION.get(m, m).lower() not in declared}
    assert optional == {"torchaudio", "soundfile", "onnx", "onnxruntime", "ml_dtypes"}  # extras: audio and onnx
    pinned = {line.split("==")[0].lower() for line in (PACKAGE.parent / "requirements.txt").read_text().splitlines()
              if "==" in line}
    assert declared | extras <= pinned, "every declared distribution is pinned in requirements.txt"

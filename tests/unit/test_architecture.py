"""The layout holds: no import cycle in ``src/quantrain``, Ray only in ``orchestration/``, and
``docs/ARCHITECTURE.md`` names only modules that exist.

Every import counts, also those inside functions or under ``TYPE_CHECKING``: a cycle hidden
behind a lazy import is still a cycle in the design. A module's implicit dependence on its own
parent package's ``__init__`` is not an edge (Python runs it for every submodule; counting it
would make every re-exporting package a "cycle").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "quantrain"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"


def modules() -> dict[str, Path]:
    """``quantrain.x.y`` -> file, packages by their ``__init__.py``."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The module an imported name lives in: its longest known prefix."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every quantrain module ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import submodule`` depends on the submodule, not on pkg/__init__.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for name in names:
            owner = _owner(name, known) if name.startswith("quantrain") else None
            if owner and owner != module:
                found.add(owner)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports_of(module, path, known) for module, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself can fail: a planted two-module and three-module cycle are found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(cycles(graph)) == [["a", "b"], ["c", "d", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_src_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk really saw the package
    assert "quantrain.features.spec" in graph["quantrain.config"]  # and real edges
    assert cycles(graph) == []


def test_only_orchestration_imports_ray() -> None:
    offenders = []
    for module, path in modules().items():
        if module.startswith("quantrain.orchestration"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            offenders += [f"{module}: {n}" for n in names if n == "ray" or n.startswith("ray.")]
    assert offenders == []


def test_the_architecture_document_names_only_what_exists() -> None:
    text = ARCHITECTURE.read_text()
    named = set(re.findall(r"`((?:src/quantrain/)?[a-z_]+(?:/[a-z_]+)*(?:\.py|/))`", text))
    paths = {n.removeprefix("src/quantrain/") for n in named}
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (PACKAGE / p).exists())
    assert missing == [], f"docs/ARCHITECTURE.md names {missing}, which src/quantrain lacks"
    top_level = {
        p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    undocumented = sorted(
        n for n in top_level - {"__init__.py", "__main__.py"} if f"`{n}" not in text
    )
    assert undocumented == [], f"docs/ARCHITECTURE.md does not mention {undocumented}"


@pytest.mark.parametrize("module", ["quantrain.store", "quantrain.config"])
def test_light_modules_do_not_load_the_serving_stack(module: str) -> None:
    """Reading or checking packages in the store needs neither onnxruntime nor the feature
    kernels: ``quantrain.package`` loads ``Predictor`` on first use."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('onnxruntime' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"

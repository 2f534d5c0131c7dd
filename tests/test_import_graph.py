"""The package's layering: no import circle (local and typing-only imports count), and no
central file names a method (each method's folder declares it; the registry finds it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "multiad"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of the package ``name`` imports, anywhere in the file (functions and
    ``if TYPE_CHECKING:`` blocks too), with the packages whose ``__init__`` that runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            subs = [f"{base}.{a.name}" for a in node.names]
            found.update(s for s in subs if s in modules)
            if any(s not in modules for s in subs):
                found.add(base)
    out = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if not target or target == name:
            continue
        out.add(target)
        parts = target.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a and a.b first
            ancestor = ".".join(parts[:i])
            if ancestor in modules and not name.startswith(ancestor + "."):
                out.add(ancestor)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_circle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("central", ["config.py", "engine", "methods/registry.py",
                                     "methods/contract.py", "methods/__init__.py",
                                     "methods/base.py", "evaluate.py", "train.py"])
def test_no_central_file_names_a_method(central: str) -> None:
    """Adding a method touches only its folder: the configuration, the engine, the
    registry and evaluation name none (the methods' package docstring's table aside)."""
    from multiad.methods import METHODS

    paths = [PACKAGE / central] if central.endswith(".py") else \
        sorted((PACKAGE / central).rglob("*.py"))
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
        code = path.read_text(encoding="utf-8").replace(doc, "")
        for name in METHODS:
            assert not re.search(rf"""["']{name}["']""", code), f"{path} names {name!r}"


def test_the_core_never_imports_the_book_pipeline() -> None:
    """``multiad.pipeline`` (profiles, runs, reproduce, tables, figures, explorers) sits
    above the core; nothing below it imports it."""
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("multiad.pipeline"):
            continue
        above = {t for t in _imports(name, path, modules) if t.startswith("multiad.pipeline")}
        assert not above, f"{name} imports {sorted(above)}"

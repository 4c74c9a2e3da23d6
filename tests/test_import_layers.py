"""The module graph of facebench has no import circle (any import, at module level or inside a function).

Edges to a module's own ancestor packages are left out: Python imports them before the module anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "facebench"


def module_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the facebench modules it imports (ancestor packages left out)."""
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in files and target != name and not name.startswith(target + "."):
                    edges.add(target)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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


def test_no_module_imports_one_that_imports_it_back():
    assert circles(module_graph()) == []


def test_the_checker_finds_a_circle(tmp_path):
    pkg = tmp_path / "facebench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from facebench import top\n")
    (pkg / "a.py").write_text("from facebench.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from facebench import a\n")
    (pkg / "top.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("from facebench.sub import helper\nfrom . import other\n")
    (pkg / "sub" / "helper.py").write_text("")
    (pkg / "sub" / "other.py").write_text("from .leaf import y\n")
    graph = module_graph(pkg)
    assert graph["facebench.sub.leaf"] == {"facebench.sub.helper", "facebench.sub.other"}
    assert circles(graph) == [["facebench.a", "facebench.b"], ["facebench.sub.leaf", "facebench.sub.other"]]


def test_test_modules_share_helpers_through_helper_modules():
    """A test module imports helpers from ``tests/_*.py`` or ``tests/fakes.py``, never from another test module
    (importing one re-runs its module-level fixtures and couples unrelated tests)."""
    tests = Path(__file__).resolve().parent
    offenders = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[-1].startswith("test_") and "tests" in n]
    assert offenders == []

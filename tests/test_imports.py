"""The packages' import rules, checked on the source (ast), not by importing it.

Every ``import`` counts, at module level or inside a function (a lazy import still runs, and a
lazy edge closing a loop is how loops hide), except those under ``if TYPE_CHECKING:``. Rules:
no import cycle between our modules; ``infill`` (pure logic) imports no torch, no lsprotocol/pygls
and none of ``model``/``lsp_server``; ``model`` imports no lsprotocol/pygls and no ``lsp_server``.
A subprocess also checks that ``import infill.types`` (the torch worker's import) loads neither
tree-sitter nor torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [p for p in ("infill", "model", "lsp_server", "benchmarks", "diffusion_infill") if (ROOT / p).is_dir()]

# Edges allowed to close a cycle while they are being removed, each with the reason.
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()  # none: every import loop is an error


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names of everything ``module`` imports (``from a import b`` yields ``a`` and ``a.b``)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            out.add(prefix)
            out.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(our module -> our modules it imports, our module -> every top-level package it imports)."""
    sources = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            sources[_module_name(path)] = path
    ours: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in sources.items():
        names = _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), name, path.name == "__init__.py")
        ours[name] = {n for n in names if n in sources and n != name}
        external[name] = {n.split(".")[0] for n in names if n}
    return ours, external


GRAPH, EXTERNAL = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_graph_sees_the_packages():
    # the parser found real modules and real edges (a broken walk would pass every rule below)
    assert {"infill.types", "model.worker", "lsp_server.settings"} <= set(GRAPH)
    assert "model.protocol" in GRAPH["model.worker"]
    assert "infill.types" in GRAPH["model.protocol"]
    assert "torch" in EXTERNAL["model.text_denoiser"]


def test_cycle_finder_finds_a_lazy_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from . import b\n")
    assert _imports(tree, "pkg.a", False) == {"pkg", "pkg.b"}


def test_no_import_cycles():
    graph = {m: {n for n in targets if (m, n) not in KNOWN_CYCLE_EDGES} for m, targets in GRAPH.items()}
    assert _cycles(graph) == []


@pytest.mark.parametrize("package, banned", [
    ("infill", {"torch", "lsprotocol", "pygls", "model", "lsp_server", "transformers"}),
    ("model", {"lsprotocol", "pygls", "lsp_server"}),
])
def test_package_never_imports(package, banned):
    offenders = {m: sorted(EXTERNAL[m] & banned) for m in EXTERNAL
                 if (m == package or m.startswith(package + ".")) and EXTERNAL[m] & banned}
    assert offenders == {}


def test_infill_types_is_light():
    code = ("import sys, infill.types, model.protocol; "
            "print(sorted(m for m in ('tree_sitter', 'torch', 'transformers', 'lsprotocol') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

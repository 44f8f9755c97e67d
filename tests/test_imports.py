"""No import cycle between the project's modules (a failure names the loop), and the service layers import on
their own: the runs and review services never import the HTTP layer, and each API module imports alone in a
fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("service", "embeddings", "dashboard")
# The layers below the HTTP API: the CLI and a retrain trigger call them without FastAPI's app or state.
SERVICE_LAYERS = ("service.runs", "service.review")


def _modules(root: Path = REPO) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, known: dict[str, Path], everywhere: bool) -> set[str]:
    """The project modules `path` imports: at module level, or (everywhere) also in functions and in the
    blocks only a type checker reads (a dependency all the same)."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if _is_type_checking(node) and not everywhere:
            continue
        nodes.append(node)
        if everywhere or isinstance(node, ast.If | ast.Try | ast.With):
            todo.extend(ast.iter_child_nodes(node))
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                whole = f"{node.module}.{alias.name}"
                out.add(whole if whole in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {name for name in out if name in known}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _graph(known: dict[str, Path], everywhere: bool) -> dict[str, set[str]]:
    """Module -> the project modules importing it runs: those it names, and the packages above them (importing
    a.b.c runs a/__init__ and a/b/__init__ first), except its own packages, which are loaded before it runs."""
    graph = {}
    for name, path in known.items():
        named = _imports(path, known, everywhere)
        own = _packages_of(name)
        graph[name] = named | {p for m in named for p in _packages_of(m) if p in known and p not in own and p != name}
    return graph


def _packages_of(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _loop(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One concrete loop through a strongly connected group, from its first module back to it (breadth first,
    so the shortest): what to read to break the cycle."""
    start, inside = group[0], set(group)
    came_from: dict[str, str] = {}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & inside):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if w not in came_from:
                came_from[w] = v
                todo.append(w)
    return group


def _cycle_report(graph: dict[str, set[str]]) -> list[str]:
    return [" -> ".join(_loop(graph, group)) for group in _cycles(graph)]


def test_no_import_cycle_between_modules():
    """Counted: imports at module level (also inside module-level if/try/with), the packages they load; not
    counted: imports inside functions and under `if TYPE_CHECKING:` (they run later or never)."""
    assert _cycle_report(_graph(_modules(), everywhere=False)) == []


def test_the_cycle_check_names_a_planted_cycle(tmp_path):
    """The check itself: a loop through a package's __init__ and one only a function imports."""
    files = {
        "service/__init__.py": "",
        "service/a.py": "from service.b import thing\n",
        "service/b.py": "import service.pkg.c\nthing = 1\n",
        "service/pkg/__init__.py": "from service import a\n",
        "service/pkg/c.py": "def late():\n    import service.a\n",
        "service/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import service.a\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    known = _modules(tmp_path)
    assert _cycle_report(_graph(known, everywhere=False)) == ["service.a -> service.b -> service.pkg -> service.a"]
    late = _graph(known, everywhere=True)
    assert "service.a" in late["service.pkg.c"] and "service.a" in late["service.typed"]


def test_no_cycle_through_the_api_state_even_in_late_imports():
    """The old api/state <-> deps <-> runs loop hid in TYPE_CHECKING blocks and function-level imports."""
    graph = _graph(_modules(), everywhere=True)
    touching = [" -> ".join(_loop(graph, group)) for group in _cycles(graph)
                if any(m.startswith(("service.api", *SERVICE_LAYERS)) for m in group)]
    assert touching == []


def test_the_run_and_review_services_never_import_the_http_layer():
    known = _modules()
    for name, path in known.items():
        if name.startswith(SERVICE_LAYERS):
            reached = _imports(path, known, everywhere=True)
            assert not [m for m in reached if m.startswith("service.api")], name


def test_each_api_and_service_module_imports_alone():
    """Each module in a fresh interpreter: an order-dependent import (a cycle papered over) fails here."""
    names = sorted(n for n in _modules() if n.startswith(("service.api", *SERVICE_LAYERS)))
    script = ("import importlib, sys\nfor name in sys.argv[1:]:\n"
              "    for loaded in [m for m in sys.modules if m.split('.')[0] in ('service', 'embeddings')]:\n"
              "        del sys.modules[loaded]\n"
              "    importlib.import_module(name)\n")
    done = subprocess.run([sys.executable, "-c", script, *names], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]

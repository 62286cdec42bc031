"""The packages' layers, read from the source with ``ast`` (every import, module-level or inside
a function; ``if TYPE_CHECKING:`` blocks excepted): no module imports a higher layer, no import
circle, and the modules a Ray actor unpickles load no database code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from db.session import REPO_ROOT

PACKAGES = ("core", "spai", "robustness", "db", "jobs", "dashboard")
# Higher imports lower or equal, never higher: dashboard > jobs > db > spai > robustness > core
# (issue 13). A module takes the rank of its longest listed prefix. robustness.study runs
# studies: it queues jobs and may run a worker inline, and the dashboard draws its results, so
# it sits with jobs. core (the capped decoder, its pixel limit, atomic writes, one-line CLI
# errors) imports nothing from the project: robustness's conditions decode, write and report
# errors with it.
LAYERS = {
    "dashboard": 5,
    "jobs": 4,
    "robustness.study": 4,
    "db": 3,
    "spai": 2,
    "robustness": 1,
    "core": 0,
}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from pkg import submodule`` names the
    submodule, ``from module import name`` the module)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def test_no_module_imports_a_higher_layer() -> None:
    bad = sorted(
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, targets in _graph().items()
        for t in targets
        if _layer(t) > _layer(m)
    )
    assert not bad, "\n".join(bad)


def test_no_import_circle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == [], circles


def test_the_import_graph_is_read_from_the_source() -> None:
    """The checks above see real edges (module-level and lazy ones)."""
    graph = _graph()
    assert {"jobs.context", "db.jobs"} <= graph["jobs.worker"]
    assert _layer("dashboard.jobqueue") > _layer("jobs.params") > _layer("db.jobs")
    assert "jobs.worker" in graph["robustness.study.runner"]  # imported inside a method
    assert _layer("spai.detector") > _layer("robustness.apply") > _layer("core.imageio")
    assert "robustness.registry" in graph["spai.augment"]  # imported inside a function


def test_what_a_ray_actor_unpickles_loads_no_database_code() -> None:
    code = (
        "import sys, jobs.work, jobs.executors.local, jobs.executors.ray; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'db', 'dashboard', 'streamlit', 'ray')); "
        "sys.exit(', '.join(bad) or 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr

"""The engine's import structure: no import circle, and the engine modules the QGIS side imports (with all they
import in turn) use the standard library only.

Both are read from the source (every ``import`` statement, those inside functions too), so a new circle or a new
engine import on the QGIS side is caught without a list to keep up to date.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from ..conftest import REPO

#: The QGIS side: the plugin object, the provider, the seven tool files and utils/.
QGIS_SIDE = ("__init__.py", "iamap.py", "provider.py", "encoder.py", "reduction.py", "clustering.py", "ml.py",
             "similarity.py", "change.py", "diagnostics.py", "utils/*.py")


def module_name(path: Path) -> str:
    """The dotted name of a file of the repository (``engine/host/status.py`` -> ``engine.host.status``)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The modules of the repository that ``path`` imports, by dotted name (relative imports resolved; the QGIS
    side's ``.engine`` / ``..engine`` become ``engine``)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            candidates = [target + [alias.name] for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            candidates = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate[:1] == ["iamap"]:  # the plugin folder's own name, as QGIS loads it
                candidate = candidate[1:]
            file = REPO.joinpath(*candidate)
            if file.with_suffix(".py").is_file() or (file / "__init__.py").is_file():
                found.add(".".join(candidate))
    return found - {name}


def engine_graph() -> dict[str, set[str]]:
    files = [p for p in (REPO / "engine").rglob("*.py") if "__pycache__" not in p.parts]
    return {module_name(p): {m for m in imported_modules(p) if m.startswith("engine")} for p in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one module."""
    order, low, stack, found = {}, {}, [], []

    def visit(module):
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in graph.get(module, ()):
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def test_the_engine_has_no_import_circle():
    graph = engine_graph()
    assert len(graph) > 40 and "engine.host.status" in graph["engine.host.install"]  # the graph is read
    assert cycles(graph) == []


def test_the_circle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def qgis_side_engine_modules() -> set[str]:
    """Every engine module the QGIS side imports, directly or through other engine modules."""
    files = [p for pattern in QGIS_SIDE for p in REPO.glob(pattern)]
    assert len(files) >= 20, files
    wanted = {m for p in files for m in imported_modules(p) if m.startswith("engine")}
    graph, closure = engine_graph(), set()
    while wanted:
        module = wanted.pop()
        closure.add(module)
        wanted |= graph.get(module, set()) - closure
    return closure


def test_what_the_qgis_side_imports_of_the_engine_is_found():
    modules = qgis_side_engine_modules()
    assert {"engine.contract", "engine.catalog", "engine.host.status", "engine.host.install",
            "engine.parameter_translation", "engine.destinations"} <= modules
    assert "engine.encoder" not in modules


def test_the_engine_modules_the_qgis_side_imports_import_in_a_bare_python_without_numpy():
    modules = sorted(qgis_side_engine_modules())
    # -I: no user site or environment variables; -S: no site-packages at all, so no numpy, no QGIS
    script = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1])\n"
        "try:\n    import numpy\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('numpy importable')\n"
        "for name in sys.argv[2:]:\n    importlib.import_module(name)\n"
        "third_party = sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
        "and m.split('.')[0] not in ('engine', '__main__'))\n"
        "print('THIRD', third_party)\n"
    )
    result = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", script, str(REPO), *modules],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "THIRD []" in result.stdout

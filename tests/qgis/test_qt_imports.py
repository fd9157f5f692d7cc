"""Qt 6 / QGIS 4 readiness that costs nothing now: the plugin reaches Qt only through ``qgis.PyQt`` (which QGIS
maps to PyQt5 or PyQt6), calls no Qt API that PyQt6 removed, and the engine never imports QGIS or Qt."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Imports and calls that break under PyQt6 (QGIS 4), each with what to use instead.
FORBIDDEN = {
    r"^\s*(from|import)\s+(PyQt5|PyQt6|sip)\b": "import from qgis.PyQt",
    r"\.exec_\(": "exec()",
    r"\bQRegExp\b": "QRegularExpression",
    r"\bQDesktopWidget\b": "QScreen",
}


def plugin_sources() -> list[Path]:
    """The plugin's own Python files (tests and scripts run outside QGIS and are left out)."""
    return [path for path in REPO.rglob("*.py")
            if not {"tests", ".git", "__pycache__", "build"} & set(path.relative_to(REPO).parts)
            and path.relative_to(REPO).parts[0] not in ("scripts", "benchmarks")]


def test_qt_is_reached_only_through_qgis_pyqt_with_no_api_removed_in_pyqt6():
    problems = []
    for path in plugin_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern, instead in FORBIDDEN.items():
                if re.search(pattern, line):
                    problems.append(f"{path.relative_to(REPO)}:{number}: {line.strip()} (use {instead})")
    assert problems == []
    assert len(plugin_sources()) > 30 and any(p.name == "similarity_explorer.py" for p in plugin_sources())


def test_the_engine_never_imports_qgis_or_qt():
    imports = re.compile(r"^\s*(from|import)\s+(qgis|PyQt5|PyQt6)\b", re.M)
    assert [p.name for p in (REPO / "engine").glob("*.py") if imports.search(p.read_text(encoding="utf-8"))] == []

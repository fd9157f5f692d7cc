"""Qt 6 / QGIS 4 readiness as far as it can be checked without a Qt 6 build: the plugin reaches Qt only through
``qgis.PyQt`` (which QGIS maps to PyQt5 or PyQt6), calls no Qt API that PyQt6 removed, writes every enum value
scoped (PyQt6 has no other spelling) and by its current QGIS name (checked against the QGIS running the suite:
3.22, 3.40 and 3.44), and the engine never imports QGIS or Qt. Deprecated QGIS calls fail every real-QGIS test
(tests/qgis/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from .conftest import QGIS_PYTHON

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
    assert [p.name for p in (REPO / "engine").rglob("*.py") if imports.search(p.read_text(encoding="utf-8"))] == []


def enum_problems(paths: list[Path]) -> list[str]:
    """What ``enum_spellings.py``, run by QGIS's own Python, finds in ``paths``."""
    checker = Path(__file__).with_name("enum_spellings.py")
    result = subprocess.run([QGIS_PYTHON, str(checker), *map(str, paths)], capture_output=True, text=True,
                            cwd=str(REPO), env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_every_enum_value_is_scoped_and_spelled_as_this_qgis_names_it():
    assert enum_problems(plugin_sources()) == []


def test_the_enum_check_finds_unscoped_and_moved_enums(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from qgis.core import Qgis, QgsProcessing\nfrom qgis.PyQt.QtCore import Qt\n"
                      "a = Qt.AlignLeft | Qt.AlignmentFlag.AlignTop\nb = QgsProcessing.TypeVectorPoint\n"
                      "c = Qgis.MessageLevel.Info\n", encoding="utf-8")
    problems = enum_problems([sample])
    assert sorted(p.split(": ")[1].split(" ")[0] for p in problems) == ["QgsProcessing.TypeVectorPoint", "Qt.AlignLeft"]


def test_a_deprecation_warning_raised_in_a_plugin_module_fails_the_run(qgis):
    # A module of the plugin (by name and file) that calls something deprecated, as a sip-wrapped QGIS call does.
    body = f"""
        import warnings
        code = compile("warnings.warn('saveDefaultStyle() is deprecated', DeprecationWarning)",
                       {str(qgis.plugins / "iamap" / "utils" / "old_call.py")!r}, "exec")
        exec(code, {{"__name__": "iamap.utils.old_call", "warnings": warnings}})
        print("ran")
        """
    try:
        qgis.pyqgis(body)
    except AssertionError as caught:
        assert "utils/old_call.py:1: saveDefaultStyle() is deprecated" in str(caught)
    else:
        raise AssertionError("a deprecation warning from a plugin module went unnoticed")

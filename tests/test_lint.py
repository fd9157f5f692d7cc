"""The linter passes: ``ruff check`` with the configuration of pyproject.toml ([tool.ruff]) finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from .conftest import REPO


def test_ruff_finds_nothing():
    assert importlib.util.find_spec("ruff"), ("ruff not installed: python3 -m engine.host.environment install --dev "
                                              "(requirements-dev.txt)")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=str(REPO), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_the_pinned_version():
    pinned = next(line.split("==")[1].strip() for line in (REPO / "requirements-dev.txt").read_text().splitlines()
                  if line.startswith("ruff=="))
    result = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True, text=True)
    assert result.stdout.split() == ["ruff", pinned], result.stdout + result.stderr


#: The most lines a module of the plugin may have: past it, a module holds more than one purpose.
MAX_MODULE_LINES = 350


def test_no_module_of_the_plugin_is_over_the_size_limit():
    modules = [*REPO.glob("*.py"), *REPO.glob("utils/*.py"), *REPO.glob("engine/**/*.py")]
    assert len(modules) > 60
    sizes = {str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines()) for path in modules}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}

"""Run by QGIS's own Python: every enum value the given files name, checked against the running QGIS and Qt.

``python3 enum_spellings.py FILE...`` prints a JSON list of problems, one per place:

- an enum member named on its class rather than on its enum (``Qt.AlignLeft`` for
  ``Qt.AlignmentFlag.AlignLeft``): PyQt6, and so QGIS 4, only has the scoped spelling;
- a name this QGIS keeps only as a deprecated alias (the enums that moved to ``Qgis`` in 3.30-3.36) or no longer
  has at all.

Only attribute chains that start at a name imported from ``qgis.*`` are read; what they resolve to is looked up
in the running QGIS, so the same files are checked against 3.22's API and against 3.40's.
"""

from __future__ import annotations

import ast
import enum
import importlib
import importlib.util
import json
import sys
from pathlib import Path


def _plugin_module(relative: str):
    """A module of the plugin loaded from its file (the plugin is no package on this script's path)."""
    path = Path(__file__).resolve().parents[2] / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The plugin's own rule for "current name, not an alias", so the check and the choice agree.
is_own_name = _plugin_module("utils/qgis_api.py").is_own_name


def imported_names(tree: ast.AST) -> dict:
    """``{local name: object}`` for every ``from qgis... import X`` in ``tree``."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qgis":
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def is_enum_member(value) -> bool:
    """An enum value as sip (an int subclass per enum) or Python's enum module (QGIS 3.36+) makes it."""
    if isinstance(value, enum.Enum):
        return True
    return isinstance(value, int) and type(value) not in (int, bool) and type(value).__module__ != "builtins"


def chain(node: ast.Attribute):
    """``(root name, [attributes])`` of ``a.b.c``, or None when it does not start at a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id, parts[::-1]) if isinstance(node, ast.Name) else None


def problems_in(path: str) -> list:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    names = imported_names(tree)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found = []
    for node in ast.walk(tree):
        # only whole chains: the outermost attribute of a.b.c, not a.b inside it
        if not isinstance(node, ast.Attribute) or isinstance(parents.get(node), ast.Attribute):
            continue
        parsed = chain(node)
        if parsed is None or parsed[0] not in names:
            continue
        root, attributes = parsed
        owner, value = None, names[root]
        spelled = root
        resolved = getattr(value, "__qualname__", root)  # the path under the real names (imports may rename)
        for attribute in attributes:
            spelled += "." + attribute
            resolved += "." + attribute
            try:
                owner, value = value, getattr(value, attribute)
            except AttributeError:
                found.append(f"{path}:{node.lineno}: {spelled} does not exist in this QGIS")
                break
            if type(value) is int and isinstance(owner, type) and issubclass(owner, enum.Enum):
                found.append(f"{path}:{node.lineno}: {spelled} is a deprecated alias in this QGIS (a plain int "
                             f"kept on {owner.__qualname__})")
                break
            if is_enum_member(value):
                own = f"{type(value).__qualname__}.{getattr(value, 'name', attribute)}"
                if owner is not type(value):
                    found.append(f"{path}:{node.lineno}: {spelled} names an enum member on its class "
                                 f"(write it scoped: {own})")
                elif not is_own_name(resolved, value):
                    found.append(f"{path}:{node.lineno}: {spelled} is a deprecated alias in this QGIS (use {own}, "
                                 "through utils/qgis_api.py where 3.22 spells it otherwise)")
                break
    return found


if __name__ == "__main__":
    print(json.dumps([problem for path in sys.argv[1:] for problem in problems_in(path)]))

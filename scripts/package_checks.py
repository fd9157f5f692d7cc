"""What a release zip must be before scripts/package.py writes it: the checks of the QGIS plugin repository's upload
validator (QGIS-Django, plugins/validator.py: size, paths, one top folder, __init__.py, metadata.txt and its
required fields, LICENSE, no .pyc, __pycache__, .git or __MACOSX), what QGIS's Plugin Manager needs from a custom
repository's plugins.xml, and IAMAP's own rules (no development files, no compiled files, no symlinks, under 20 MB).

Standard library only: the packaging tools' venv, the worker environment's pytest and QGIS's Python all import it.
Each function returns a list of problems, empty when all is well.
"""

from __future__ import annotations

import configparser
import re
import stat
import zipfile
from pathlib import Path
from urllib.parse import urlparse
from xml.etree import ElementTree

#: IAMAP's limit; the plugin repository refuses uploads over 25,000,000 bytes
MAX_BYTES = 20_000_000
#: metadata the plugin repository refuses an upload without
REQUIRED_METADATA = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker",
                     "repository")
#: IAMAP's own: what the Plugin Manager shows and how it classes the plugin
OWN_METADATA = ("homepage", "changelog", "tags", "category", "icon", "experimental", "hasProcessingProvider")
BOOLEAN_METADATA = ("experimental", "deprecated", "server")
URL_METADATA = ("tracker", "repository", "homepage")
#: folders the plugin repository refuses anywhere in the zip
FORBIDDEN_FOLDERS = ("__MACOSX", ".git", "__pycache__")
#: folders of the repository that the plugin never uses at run time
DEVELOPMENT_FOLDERS = ("tests", "benchmarks", "scripts", ".ci", "build", "dist", "docs/_build", "docs/screenshots",
                       "docs/pictures")
#: compiled code: the repository refuses .pyc; none of the others belongs in a pure-Python plugin either
COMPILED_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib", ".exe", ".o")
PACKAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-_]+$")  # the repository's rule for the top folder's name
QGIS_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def read_metadata(text: str) -> dict[str, str]:
    """The [general] section of a metadata.txt, keys with their case (as QGIS and the repository read it)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return dict(parser["general"])


def metadata_problems(metadata: dict[str, str], version: str) -> list[str]:
    """What the plugin repository's validator, or IAMAP, would refuse in metadata.txt's fields."""
    problems = [f"metadata.txt: {key} is missing or empty" for key in REQUIRED_METADATA + OWN_METADATA
                if not metadata.get(key, "").strip()]
    if metadata.get("version", "").strip() != version:
        problems.append(f"metadata.txt: version is {metadata.get('version')!r}, not {version!r}")
    if version not in metadata.get("changelog", ""):
        problems.append(f"metadata.txt: the changelog has no entry for {version}")
    for key in BOOLEAN_METADATA:
        if key in metadata and metadata[key].strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            problems.append(f"metadata.txt: {key}={metadata[key]!r} is not a boolean")
    for key in URL_METADATA:
        url = urlparse(metadata.get(key, "").strip())
        if url.scheme not in ("http", "https") or not url.netloc:
            problems.append(f"metadata.txt: {key} is not a web address: {metadata.get(key)!r}")
    for key in ("qgisMinimumVersion", "qgisMaximumVersion"):
        if key in metadata and not QGIS_VERSION.match(metadata[key].strip()):
            problems.append(f"metadata.txt: {key}={metadata[key]!r} is not a QGIS version")
    if "/" in metadata.get("author", ""):
        problems.append("metadata.txt: the author's name cannot contain slashes")
    return problems


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)  # 3: made on Unix


def name_problems(names: list[str], top: str) -> list[str]:
    """Problems of the zip's file list: paths, forbidden, development and compiled files, the one top folder."""
    problems = []
    tops = sorted({name.split("/")[0] for name in names})
    if tops != [top]:
        problems.append(f"the zip must hold one top folder {top}/, it holds {tops}")
    if names and "/" not in names[0]:
        problems.append(f"the zip's first entry {names[0]!r} is not inside a folder")
    if not PACKAGE_NAME.match(top):
        problems.append(f"the top folder {top!r} must start with an ASCII letter, then letters, digits, - or _")
    for name in names:
        parts = name.split("/")
        inside = "/".join(parts[1:])
        if ".." in name or name.startswith("/") or "\\" in name:
            problems.append(f"{name}: path information (.., a leading / or \\) is refused")
        if any(part in FORBIDDEN_FOLDERS for part in parts):
            problems.append(f"{name}: a {'/'.join(set(parts) & set(FORBIDDEN_FOLDERS))} folder is refused")
        if name.endswith(COMPILED_SUFFIXES) or ".pyc" in name:
            problems.append(f"{name}: compiled files are refused")
        if any(inside == folder or inside.startswith(folder + "/") for folder in DEVELOPMENT_FOLDERS):
            problems.append(f"{name}: a development file (the plugin never uses it at run time)")
    for required in ("__init__.py", "metadata.txt", "LICENSE"):
        if f"{top}/{required}" not in names:
            problems.append(f"{top}/{required} is missing")
    return problems


def zip_problems(path: Path, version: str, top: str = "iamap", max_bytes: int = MAX_BYTES) -> list[str]:
    """Every problem of the release zip at ``path``; [] when the plugin repository and IAMAP's rules accept it."""
    size = path.stat().st_size
    problems = [] if size < max_bytes else [f"{path.name} is {size:,} bytes, the limit is {max_bytes:,}"]
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        return problems + [f"{path.name} is not a zip: {error}"]
    with archive:
        bad = archive.testzip()
        if bad:
            problems.append(f"{bad}: its CRC does not match (a broken zip)")
        names = archive.namelist()
        problems += name_problems(names, top)
        problems += [f"{info.filename}: symbolic links are refused" for info in archive.infolist() if _is_symlink(info)]
        if f"{top}/metadata.txt" in names:
            try:
                metadata = read_metadata(archive.read(f"{top}/metadata.txt").decode("utf-8"))
            except (configparser.Error, KeyError, UnicodeDecodeError) as error:
                return problems + [f"metadata.txt cannot be read: {error!r}"]
            problems += metadata_problems(metadata, version)
            icon = metadata.get("icon", "").strip().removeprefix("./")
            if icon and f"{top}/{icon}" not in names:
                problems.append(f"metadata.txt: its icon {icon} is not in the zip")
    return problems


def tree_problems(folder: Path) -> list[str]:
    """Symbolic links and compiled files in the folder about to be zipped (a zip of it would copy what they
    point at, or ship bytecode)."""
    problems = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            problems.append(f"{path.relative_to(folder.parent)}: symbolic links are refused")
        elif path.name.endswith(COMPILED_SUFFIXES):
            problems.append(f"{path.relative_to(folder.parent)}: compiled files are refused")
    return problems


def plugin_id_from_file_name(file_name: str) -> str:
    """The plugin id QGIS's Plugin Manager gives a repository entry: its file_name up to the first dot
    (pyplugin_installer/installer_data.py), which must be the installed folder's name for an upgrade."""
    return file_name.partition(".")[0]


def plugins_xml_problems(text: str, version: str, download_url: str, plugin_id: str = "iamap",
                         qgis_minimum: str = "") -> list[str]:
    """What keeps QGIS's Plugin Manager from offering this plugins.xml's plugin as ``plugin_id`` ``version``."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        return [f"plugins.xml is not XML: {error}"]
    entries = root.findall("pyqgis_plugin")
    if root.tag != "plugins" or len(entries) != 1:
        return [f"plugins.xml must be <plugins> with one <pyqgis_plugin>, found <{root.tag}> with {len(entries)}"]
    entry = entries[0]
    problems = []
    if entry.get("version") != version or (entry.findtext("version") or "").strip() != version:
        problems.append(f"plugins.xml: version {entry.get('version')!r} is not {version!r}")
    if (entry.findtext("download_url") or "").strip() != download_url:
        problems.append(f"plugins.xml: download_url {entry.findtext('download_url')!r} is not {download_url!r}")
    found_id = plugin_id_from_file_name((entry.findtext("file_name") or "").strip())
    if found_id != plugin_id:
        problems.append(f"plugins.xml: file_name {entry.findtext('file_name')!r} gives the plugin id {found_id!r}, "
                        f"not {plugin_id!r}: QGIS would not see it as an upgrade of the installed plugin")
    if qgis_minimum and (entry.findtext("qgis_minimum_version") or "").strip() != qgis_minimum:
        problems.append(f"plugins.xml: qgis_minimum_version is not {qgis_minimum}")
    for flag in ("experimental", "deprecated"):
        if (entry.findtext(flag) or "").strip() not in ("True", "False"):
            problems.append(f"plugins.xml: {flag} is {entry.findtext(flag)!r}, not True or False")
    return problems

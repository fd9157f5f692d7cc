"""The release package's checks (scripts/package_checks.py) without QGIS: a zip the plugin repository would accept
passes, each thing its validator or IAMAP refuses is found; the release metadata is consistent. The package itself,
built and installed in QGIS, is tested in tests/qgis/test_package.py."""

from __future__ import annotations

import stat
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import package_checks

VERSION = package_checks.read_metadata((REPO / "metadata.txt").read_text(encoding="utf-8"))["version"]
TESTED_QGIS = ("3.22", "3.40", "3.44")


def make_zip(path: Path, files: dict[str, bytes | str], symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "../../etc/passwd")
    return path


def good_files(**changes) -> dict[str, bytes | str]:
    files = {"iamap/__init__.py": "def classFactory(iface): ...\n",
             "iamap/metadata.txt": (REPO / "metadata.txt").read_text(encoding="utf-8"),
             "iamap/LICENSE": "GNU GENERAL PUBLIC LICENSE\n", "iamap/icons/iamap.svg": "<svg/>",
             "iamap/engine/__init__.py": "", "iamap/docs/sample/sample_rgb.tif": b"II*\0"}
    files.update(changes)
    return {name: content for name, content in files.items() if content is not None}


def metadata_with(**fields) -> str:
    metadata = package_checks.read_metadata((REPO / "metadata.txt").read_text(encoding="utf-8"))
    metadata.update(fields)
    return "[general]\n" + "".join(f"{k}={v}\n" for k, v in metadata.items() if v is not None)


def test_a_zip_the_repository_accepts_has_no_problems(tmp_path):
    assert package_checks.zip_problems(make_zip(tmp_path / "ok.zip", good_files()), VERSION) == []


@pytest.mark.parametrize("changes, expected", [
    ({"iamap/engine/__pycache__/x.cpython-311.pyc": b"\0"}, "compiled files are refused"),
    ({"iamap/engine/__pycache__/x.txt": "x"}, "a __pycache__ folder is refused"),
    ({"iamap/.git/HEAD": "ref"}, "a .git folder is refused"),
    ({"iamap/engine/fast.so": b"\x7fELF"}, "compiled files are refused"),
    ({"iamap/tests/test_x.py": ""}, "a development file"),
    ({"iamap/benchmarks/b.py": ""}, "a development file"),
    ({"iamap/docs/screenshots/a.png": b""}, "a development file"),
    ({"other/readme.txt": "x"}, "one top folder iamap/"),
    ({"iamap/../evil.py": ""}, "path information"),
    ({"iamap/LICENSE": None}, "iamap/LICENSE is missing"),
    ({"iamap/__init__.py": None}, "iamap/__init__.py is missing"),
    ({"iamap/icons/iamap.svg": None}, "its icon icons/iamap.svg is not in the zip"),
    ({"iamap/metadata.txt": metadata_with(email=None)}, "email is missing"),
    ({"iamap/metadata.txt": metadata_with(version="1.0.2")}, "version is '1.0.2'"),
    ({"iamap/metadata.txt": metadata_with(tracker="bugs")}, "tracker is not a web address"),
    ({"iamap/metadata.txt": metadata_with(experimental="maybe")}, "experimental='maybe' is not a boolean"),
    ({"iamap/metadata.txt": metadata_with(author="a/b")}, "cannot contain slashes"),
    ({"iamap/metadata.txt": metadata_with(changelog="0.1.0 - first")}, f"no entry for {VERSION}"),
])
def test_each_refused_thing_is_found(tmp_path, changes, expected):
    problems = package_checks.zip_problems(make_zip(tmp_path / "bad.zip", good_files(**changes)), VERSION)
    assert any(expected in problem for problem in problems), problems


def test_symbolic_links_and_size_are_refused(tmp_path):
    linked = make_zip(tmp_path / "link.zip", good_files(), symlinks=("iamap/engine/link.py",))
    assert package_checks.zip_problems(linked, VERSION) == ["iamap/engine/link.py: symbolic links are refused"]
    big = make_zip(tmp_path / "big.zip", good_files())
    problems = package_checks.zip_problems(big, VERSION, max_bytes=100)
    assert len(problems) == 1 and "the limit is 100" in problems[0]


def test_tree_problems_find_links_and_bytecode_before_zipping(tmp_path):
    folder = tmp_path / "iamap"
    (folder / "engine").mkdir(parents=True)
    (folder / "engine" / "a.py").write_text("")
    assert package_checks.tree_problems(folder) == []
    (folder / "engine" / "a.pyc").write_bytes(b"\0")
    (folder / "link").symlink_to(folder / "engine")
    assert package_checks.tree_problems(folder) == ["iamap/engine/a.pyc: compiled files are refused",
                                                    "iamap/link: symbolic links are refused"]


PLUGINS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<plugins><pyqgis_plugin name="IAMAP" version="2.0.0">
  <download_url>https://example.org/iamap/iamap-2.0.0.zip</download_url><experimental>False</experimental>
  <deprecated>False</deprecated><file_name>{file_name}</file_name>
  <qgis_minimum_version>3.22</qgis_minimum_version><version>2.0.0</version>
</pyqgis_plugin></plugins>"""


def test_plugins_xml_must_give_the_plugin_id_qgis_upgrades():
    url = "https://example.org/iamap/iamap-2.0.0.zip"
    good = PLUGINS_XML.format(file_name="iamap.2.0.0.zip")
    assert package_checks.plugins_xml_problems(good, "2.0.0", url, "iamap", "3.22") == []
    # QGIS takes the id up to the first dot: "iamap-2.0.0.zip" would be a plugin "iamap-2", no upgrade of iamap
    dashed = package_checks.plugins_xml_problems(PLUGINS_XML.format(file_name="iamap-2.0.0.zip"), "2.0.0", url)
    assert len(dashed) == 1 and "gives the plugin id 'iamap-2'" in dashed[0]
    assert "version '2.0.0' is not '2.1.0'" in package_checks.plugins_xml_problems(good, "2.1.0", url)[0]
    assert "download_url" in package_checks.plugins_xml_problems(good, "2.0.0", url + "x")[0]


def test_release_metadata_is_consistent():
    metadata = package_checks.read_metadata((REPO / "metadata.txt").read_text(encoding="utf-8"))
    assert package_checks.metadata_problems(metadata, VERSION) == []
    from engine import __version__

    assert __version__ == VERSION == "2.0.0"  # above IAMAP 1.0.2, which this plugin replaces under the same name
    first_entry = metadata["changelog"].strip().splitlines()[0]
    assert first_entry.startswith(f"{VERSION} - ") and all(v in first_entry for v in TESTED_QGIS)
    assert all(v in metadata["about"] for v in TESTED_QGIS) and "qgisMaximumVersion" not in metadata
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "GPL-3.0-or-later" and project["license-files"] == ["LICENSE"]
    licence = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert licence.lstrip().startswith("GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007")
    debian = Path("/usr/share/common-licenses/GPL-3")
    if debian.exists():
        assert licence == debian.read_text(encoding="utf-8")
    assert "END OF TERMS AND CONDITIONS" in licence and len(licence) > 30000  # the full text


def test_git_leaves_the_development_folders_out_of_the_archive():
    attributes = (REPO / ".gitattributes").read_text(encoding="utf-8")
    ignored = {line.split()[0].strip("/") for line in attributes.splitlines()
               if line.strip() and not line.startswith("#") and "export-ignore" in line}
    present = {folder for folder in package_checks.DEVELOPMENT_FOLDERS if (REPO / folder).is_dir()} - {
        "build", "dist", "docs/_build"}  # ignored by git, never archived
    assert present <= ignored

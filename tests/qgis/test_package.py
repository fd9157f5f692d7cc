"""The release package (scripts/package.sh) as a user gets it: the zip's contents, bandit's scan, and the zip
installed into a fresh QGIS profile through the Plugin Manager's own code (Install from ZIP) in the real desktop
under Xvfb, over an IAMAP 1.0.2 of the same name that the package's plugins.xml offers to upgrade; the plugin
loads from the installed copy, offers to install its environment while there is none, and runs a tool once there
is one.

The package is built by the script into a temporary folder, or taken from ``IAMAP_PACKAGE_ZIP`` (a zip built
already, with its plugins.xml beside it: for runs under another QGIS that share one build).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import package_checks
import qgis_desktop

pytestmark = [pytest.mark.qgis, pytest.mark.slow]

VERSION = package_checks.read_metadata((REPO / "metadata.txt").read_text(encoding="utf-8"))["version"]
#: what the plugin reads at run time, by the path inside iamap/
RUN_TIME_FILES = ("__init__.py", "iamap.py", "provider.py", "encoder.py", "diagnostics.py", "metadata.txt", "LICENSE",
                  "README.md", "requirements.txt", "constraints.txt", "engine/host/status.py", "engine/worker.py",
                  "engine/contract/__init__.py", "utils/install_dialog.py", "utils/worker_runner.py",
                  "icons/iamap.svg", "models/encode_classify.model3", "models/encode_reduce_cluster.model3",
                  "docs/sample/sample_rgb.tif", "docs/sample/river_points.geojson", "docs/tools.md")


@dataclass
class Package:
    zip: Path
    plugins_xml: Path
    output: str  # what the package script printed ("" for a prebuilt zip)


def clean_environment() -> dict:
    """This environment less the worker environment's Python variables (the script makes its own venv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if "worker-env" not in p)
    return env


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Package:
    prebuilt = os.environ.get("IAMAP_PACKAGE_ZIP")
    if prebuilt:
        return Package(Path(prebuilt), Path(prebuilt).parent / "plugins.xml", "")
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(["bash", "scripts/package.sh", "--dist", str(dist)], cwd=str(REPO), capture_output=True,
                           text=True, timeout=900, env=clean_environment())
    assert built.returncode == 0, built.stdout + built.stderr
    assert sorted(p.name for p in dist.iterdir()) == [f"iamap-{VERSION}.zip", "plugins.xml", "plugins.xsl"]
    return Package(dist / f"iamap-{VERSION}.zip", dist / "plugins.xml", built.stdout)


def test_the_zip_holds_what_the_plugin_runs_with_and_nothing_of_its_development(package):
    size = package.zip.stat().st_size
    assert size < 20_000_000
    with zipfile.ZipFile(package.zip) as archive:
        names = archive.namelist()
        licence = archive.read("iamap/LICENSE")
        metadata = package_checks.read_metadata(archive.read("iamap/metadata.txt").decode("utf-8"))
    assert {name.split("/")[0] for name in names} == {"iamap"}
    inside = [name.split("/", 1)[1] for name in names]
    for development in ("tests/", "testsupport/", "benchmarks/", "scripts/", ".ci/", ".git", "__pycache__",
                        "docs/screenshots/", "docs/pictures/", "build/", "dist/"):
        assert not [name for name in inside if name.startswith(development) or f"/{development}" in name], development
    assert not [name for name in inside if name.endswith((".pyc", ".pyo", ".so")) or name in (
        "pytest.ini", "requirements-dev.txt", ".gitignore", ".gitattributes", "docs/conf.py")]
    assert not [name for name in RUN_TIME_FILES if name not in inside]
    # every Python module of the plugin and its engine, none left behind (no git needed: a chroot may lack it)
    run_time = {str(path.relative_to(REPO)) for pattern in ("*.py", "engine/**/*.py", "utils/*.py")
                for path in REPO.glob(pattern)}
    assert {name for name in inside if name.endswith(".py")} == run_time
    assert licence == (REPO / "LICENSE").read_bytes() and b"GNU GENERAL PUBLIC LICENSE" in licence[:200]
    assert metadata["version"] == VERSION and metadata["changelog"].strip().startswith(f"{VERSION} - ")
    assert package_checks.zip_problems(package.zip, VERSION) == []
    if package.output:
        assert f"{size / 1e6:.2f} MB, {len(names)} files" in package.output
        assert "bandit (medium and high severity): no findings" in package.output


def tools_bin() -> Path:
    tools = subprocess.run(["bash", "scripts/package.sh", "--tools"], cwd=str(REPO), capture_output=True, text=True,
                           timeout=900, env=clean_environment())
    assert tools.returncode == 0, tools.stdout + tools.stderr
    return Path(tools.stdout.strip().splitlines()[-1]) / "bin"


def bandit(folder: Path) -> dict:
    scan = subprocess.run([str(tools_bin() / "bandit"), "-r", str(folder), "--severity-level", "medium", "--format",
                           "json", "--quiet"], capture_output=True, text=True, timeout=600)
    assert scan.returncode in (0, 1), scan.stderr  # 1: findings
    return json.loads(scan.stdout)


def test_bandit_finds_nothing_at_medium_or_high_severity_in_the_package(package, tmp_path):
    with zipfile.ZipFile(package.zip) as archive:
        archive.extractall(tmp_path)
        python_files = [name for name in archive.namelist() if name.endswith(".py")]
    report = bandit(tmp_path / "iamap")
    assert report["errors"] == []
    assert len([name for name in report["metrics"] if name.endswith(".py")]) == len(python_files) > 50
    assert report["results"] == [], [(r["filename"], r["line_number"], r["issue_text"]) for r in report["results"]]
    # the same scan does find what it is there for
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "shell.py").write_text("import subprocess\nsubprocess.call(input(), shell=True)\n")
    assert [r["test_id"] for r in bandit(tmp_path / "bad")["results"]] == ["B602"]


def test_plugins_xml_is_a_repository_qgis_reads(package):
    xml = package.plugins_xml.read_text(encoding="utf-8")
    download = (package.zip.parent.resolve().as_uri() + "/" + package.zip.name)
    assert package_checks.plugins_xml_problems(xml, VERSION, download, "iamap", "3.22") == []
    assert (package.plugins_xml.parent / "plugins.xsl").exists()  # the stylesheet it names, for browsers


FAKE_1_0_2 = {
    "metadata.txt": "[general]\nname=IAMAP\nqgisMinimumVersion=3.0\ndescription=IAMAP 1.0.2\nabout=the old one\n"
                    "version=1.0.2\nauthor=old\nemail=old@example.org\nrepository=https://example.org\n",
    "__init__.py": "class Old:\n    def initGui(self):\n        pass\n\n    def unload(self):\n        pass\n\n\n"
                   "def classFactory(iface):\n    return Old()\n",
}

INSTALL_FROM_ZIP = """
import qgis.utils
from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtWidgets import QPushButton
import pyplugin_installer
from pyplugin_installer.installer_data import officialRepo, plugins as manager_plugins, repositories, reposGroup


def repository_entry():
    # the Plugin Manager's own reading of the release's plugins.xml as a custom repository (no network: the
    # official repository is switched off)
    settings = QgsSettings()
    settings.setValue(f"{reposGroup}/{officialRepo[0]}/url", officialRepo[1])
    settings.setValue(f"{reposGroup}/{officialRepo[0]}/enabled", False)
    settings.setValue(f"{reposGroup}/IAMAP release/url", PLUGINS_XML_URL)
    settings.setValue(f"{reposGroup}/IAMAP release/enabled", True)
    repositories.load()
    manager_plugins.clearRepoCache()
    manager_plugins.getAllInstalled()
    repositories.requestFetching("IAMAP release", force_reload=True)
    wait_until(lambda: not repositories.fetchingInProgress(), 60)
    manager_plugins.rebuild()
    entry = manager_plugins.all().get("iamap", {})
    return {key: entry.get(key) for key in ("status", "version_installed", "version_available", "download_url")} | {
        "repository_state": repositories.all()["IAMAP release"]["state"],
        "repository_error": repositories.all()["IAMAP release"]["error"]}


def body():
    RESULT["before"] = qgis.utils.pluginMetadata("iamap", "version")
    RESULT["old_loaded"] = type(qgis.utils.plugins.get("iamap")).__name__
    RESULT["repository"] = repository_entry()
    # what Plugins > Manage and Install Plugins > Install from ZIP > Install Plugin runs once its security
    # warning is answered (QgsPluginManager::buttonInstallFromZip_clicked, through QgsPythonRunner)
    pyplugin_installer.instance().installFromZipFile(ZIP)
    plugin = qgis.utils.plugins.get("iamap")
    import iamap
    RESULT["module"] = iamap.__file__
    # where the installer unpacks (3.40 no longer has qgis.utils.home_plugin_path)
    plugins_dir = os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "plugins")
    RESULT["home_plugin_path"] = plugins_dir
    RESULT["after"] = qgis.utils.pluginMetadata("iamap", "version")
    RESULT["active"] = QgsSettings().value("PythonPlugins/iamap", False, type=bool)
    RESULT["installed_files"] = sorted(os.listdir(os.path.join(plugins_dir, "iamap")))
    provider = QgsApplication.processingRegistry().providerById("iamap")
    RESULT["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else None
    RESULT["offered"] = wait_until(lambda: plugin.install_dialog is not None and plugin.install_dialog.isVisible()
                                   and plugin.install_dialog.install_button.isEnabled(), 60)
    dialog = plugin.install_dialog
    RESULT["offer"] = {"title": dialog.title.text(), "status": dialog.status_label.text(), "modal": dialog.isModal(),
                       "packages": [dialog.package_list.topLevelItem(i).text(0)
                                    for i in range(dialog.package_list.topLevelItemCount())],
                       "buttons": [b.text() for b in dialog.findChildren(QPushButton) if b.isVisible()]}
    from iamap.engine.host.status import PLUGIN_DIR
    RESULT["engine_plugin_dir"] = str(PLUGIN_DIR)
    manager_plugins.getAllInstalled()
    manager_plugins.rebuild()
    RESULT["status_after"] = manager_plugins.all()["iamap"]["status"]
"""

RUN_A_TOOL = """
import qgis.utils
import processing


def body():
    wait_until(lambda: False, 4)  # start-up and the moment an install offer would open
    plugin = qgis.utils.plugins["iamap"]
    import iamap
    RESULT["module"] = iamap.__file__
    RESULT["offered"] = plugin.install_dialog is not None
    RESULT["bar"] = len(iface.messageBar().items())
    outputs = processing.run("iamap:diagnostics", {"OUTPUT": REPORT, "REPORT": REPORT + ".html"})
    RESULT["outputs"] = outputs
    RESULT["report"] = json.load(open(REPORT, encoding="utf-8"))
"""


def test_install_from_zip_over_iamap_1_0_2_in_the_desktop_then_a_tool_runs_once_the_environment_exists(
        qgis, package, tmp_path):
    if qgis_desktop.desktop_missing():
        pytest.fail(f"QGIS desktop tests: {qgis_desktop.desktop_missing()}")
    root = tmp_path / "desktop"
    profile = root / "home" / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"
    old = profile / "python" / "plugins" / "iamap"
    old.mkdir(parents=True)
    for name, text in FAKE_1_0_2.items():
        (old / name).write_text(text, encoding="utf-8")
    (profile / "QGIS").mkdir()
    (profile / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\niamap=true\n")  # 1.0.2 installed and active
    (tmp_path / "no plugins").mkdir()
    env = {key: value for key, value in qgis.env.items() if key not in ("HOME", "QT_QPA_PLATFORM")}
    # only the profile's plugins: not the checkout that qgis_desktop would put on QGIS_PLUGINPATH
    env.update(QGIS_PLUGINPATH=str(tmp_path / "no plugins"), IAMAP_TORCH_BUILD="")
    missing = {**env, "IAMAP_PYTHON": "", "IAMAP_ENV_DIR": str(tmp_path / "no worker env")}
    prelude = (f"ZIP = {str(package.zip)!r}\n"
               f"PLUGINS_XML_URL = {package.plugins_xml.resolve().as_uri()!r}\n")
    result = qgis_desktop.run_desktop(prelude + INSTALL_FROM_ZIP, root, missing, timeout=400)
    assert "exception" not in result, result["exception"]

    assert result["before"] == "1.0.2" and result["old_loaded"] == "Old"
    repository = result["repository"]
    assert repository["repository_state"] == 2, repository  # loaded
    assert repository["status"] == "upgradeable" and repository["version_installed"] == "1.0.2", repository
    assert repository["version_available"] == VERSION
    assert repository["download_url"] == package.zip.resolve().as_uri()

    installed = Path(result["home_plugin_path"]) / "iamap"
    assert installed == old and result["after"] == VERSION and result["active"]
    assert Path(result["module"]) == installed / "__init__.py"
    assert Path(result["engine_plugin_dir"]) == installed  # the worker will run the installed engine
    assert "tests" not in result["installed_files"] and "LICENSE" in result["installed_files"]
    assert result["status_after"] == "installed"
    assert result["algorithms"] and {"iamap:encoder", "iamap:diagnostics", "iamap:ml"} <= set(result["algorithms"])

    offer = result["offer"]
    assert result["offered"] and not offer["modal"], offer
    assert offer["title"] == "Install IAMAP's Python environment"
    assert "not installed" in offer["status"] and "no worker env" in offer["status"]
    assert offer["packages"][:3] == ["torch", "torchvision", "timm"] and offer["buttons"] == ["Not now", "Install"]

    # QGIS again, same profile, now with an environment (the worker environment running these tests)
    report = tmp_path / "diagnostics.json"
    ready = {**env, "IAMAP_PYTHON": sys.executable}
    ran = qgis_desktop.run_desktop(f"REPORT = {str(report)!r}\n" + RUN_A_TOOL, root, ready, timeout=400)
    assert "exception" not in ran, ran["exception"]
    assert Path(ran["module"]) == installed / "__init__.py"
    assert ran["offered"] is False and ran["bar"] == 0
    assert ran["outputs"]["OUTPUT"] == str(report)
    qgis_side, worker_side = ran["report"]["qgis side"], ran["report"]["worker side"]
    assert qgis_side["iamap plugin"] == VERSION and qgis_side["worker environment ready"] is True
    assert worker_side["iamap engine"] == VERSION and worker_side["python executable"] == sys.executable
    assert worker_side["torch"] not in ("not installed", "unknown")

"""Fixtures that drive the real QGIS in subprocesses: ``qgis_process.bin`` and PyQGIS scripts.

The plugin is installed for QGIS as a folder named ``iamap`` (a link to this checkout) in a temporary plugin
path, with a throw-away HOME so the user's QGIS profile is never touched. The worker's Python is the one
running pytest (the worker environment), passed through ``IAMAP_PYTHON``. A deprecated QGIS call made by the
plugin fails the test that made it (``qgis_desktop.deprecation_watch``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import qgis_desktop  # noqa: E402 (scripts/ is not a package)

QGIS_PROCESS = ("/usr/bin/qgis_process.bin" if Path("/usr/bin/qgis_process.bin").exists()
                else shutil.which("qgis_process"))
QGIS_PYTHON = "/usr/bin/python3"


class Qgis:
    """Runs ``qgis_process`` and PyQGIS scripts with the plugin installed."""

    def __init__(self, root: Path):
        self.root = root
        self.calls = 0
        self.plugins = root / "plugins"
        self.plugins.mkdir()
        (self.plugins / "iamap").symlink_to(REPO, target_is_directory=True)
        self.home = root / "home"
        self.home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.env.update(HOME=str(self.home), QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(self.plugins),
                        IAMAP_PYTHON=sys.executable, XDG_RUNTIME_DIR=str(root))
        self.env["PATH"] = ":".join(p for p in self.env.get("PATH", "").split(":") if "worker-env" not in p)

    def _subprocess(self, command: list, env: dict | None, timeout: float) -> subprocess.CompletedProcess:
        """Run ``command`` in the test profile; fails when the plugin called a deprecated QGIS API meanwhile."""
        self.calls += 1
        log = self.root / f"warnings-{self.calls}.jsonl"
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=str(self.home),
                                env={**self.env, **qgis_desktop.deprecation_watch(log), **(env or {})})
        deprecated = qgis_desktop.plugin_deprecations(log)
        assert deprecated == [], "the plugin called deprecated QGIS API:\n" + "\n".join(deprecated)
        return result

    def process(self, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return self._subprocess([QGIS_PROCESS, *args], env, timeout)

    def run(self, algorithm: str, params: dict, env: dict | None = None, timeout: float = 600) -> dict:
        """``qgis_process run ALG --json`` with parameters as ``--NAME=VALUE``; returns the parsed JSON.

        Fails the test with QGIS's output when the algorithm fails.
        """
        args = ["run", algorithm, "--json"]
        for key, value in params.items():
            for item in value if isinstance(value, list) else [value]:
                args.append(f"--{key}={item}")
        result = self.process(*args, env=env, timeout=timeout)
        if result.returncode != 0:
            raise AlgorithmFailed(result)
        return json.loads(result.stdout[result.stdout.index("{"):])

    def pyqgis(self, body: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``body`` in QGIS's Python after starting QGIS, Processing and the plugin (as a script user would)."""
        prelude = textwrap.dedent(f"""
            import sys
            from qgis.core import QgsApplication
            app = QgsApplication([], False)
            app.initQgis()
            sys.path.insert(0, "/usr/share/qgis/python/plugins")
            sys.path.insert(0, {str(self.plugins)!r})
            from processing.core.Processing import Processing
            Processing.initialize()
            import processing
            import iamap
            plugin = iamap.classFactory(None)
            plugin.initProcessing()
        """)
        script = prelude + textwrap.dedent(body)
        return self._subprocess([QGIS_PYTHON, "-c", script], env, timeout)


    def run_model3(self, model_file: Path, raster_parameter: str, children: list, inputs: dict) -> dict:
        """Build a graphical model, save it as ``model_file``, load it back from the file and run it.

        The model has one raster parameter, ``raster_parameter``. ``children`` is a list of
        ``(child_id, algorithm, sources, outputs)``: ``sources`` maps a parameter of the algorithm to
        ``("parameter", name)``, ``("child", child_id, output)`` or a static value; ``outputs`` maps a model
        output name to the child's output. ``inputs`` are the run's values (``"child:output"`` for outputs).
        Returns the run's results (values as text); fails the test when the model does not run.
        """
        script = f"""
            import json
            from qgis.core import (QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                                   QgsProcessingModelChildParameterSource as Source, QgsProcessingModelParameter,
                                   QgsProcessingParameterRasterLayer, QgsProcessingModelOutput,
                                   QgsProcessingContext, QgsProcessingFeedback)
            model = QgsProcessingModelAlgorithm("chain", "iamap tests")
            model.addModelParameter(QgsProcessingParameterRasterLayer({raster_parameter!r}, {raster_parameter!r}),
                                    QgsProcessingModelParameter({raster_parameter!r}))
            for child_id, algorithm, sources, outputs in {children!r}:
                child = QgsProcessingModelChildAlgorithm(algorithm)
                child.setChildId(child_id)
                for name, source in sources.items():
                    if isinstance(source, tuple) and source[0] == "parameter":
                        source = Source.fromModelParameter(source[1])
                    elif isinstance(source, tuple) and source[0] == "child":
                        source = Source.fromChildOutput(source[1], source[2])
                    else:
                        source = Source.fromStaticValue(source)
                    child.addParameterSources(name, [source])
                model_outputs = {{}}
                for output_name, child_output in outputs.items():
                    model_outputs[output_name] = QgsProcessingModelOutput(output_name, output_name)
                    model_outputs[output_name].setChildOutputName(child_output)
                child.setModelOutputs(model_outputs)
                model.addChildAlgorithm(child)
            assert model.toFile({str(model_file)!r})
            loaded = QgsProcessingModelAlgorithm()
            assert loaded.fromFile({str(model_file)!r})
            results, ok = loaded.run({inputs!r}, QgsProcessingContext(), QgsProcessingFeedback())
            # 3.22 names each output of the results "child:output"; 3.40 by its description (here the output's name)
            for child_id, _, _, outputs in {children!r}:
                for output_name in outputs:
                    if f"{{child_id}}:{{output_name}}" not in results and output_name in results:
                        results[f"{{child_id}}:{{output_name}}"] = results[output_name]
            print("OK", ok, json.dumps({{k: str(v) for k, v in results.items()}}))
            """
        result = self.pyqgis(script)
        assert "OK True" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
        return json.loads(result.stdout.split("OK True ")[1].splitlines()[0])


class AlgorithmFailed(AssertionError):
    def __init__(self, result: subprocess.CompletedProcess):
        self.result = result
        super().__init__(f"qgis_process failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def qgis(tmp_path_factory) -> Qgis:
    if not QGIS_PROCESS or not Path(QGIS_PYTHON).exists():
        pytest.fail("QGIS is not installed: run scripts/run_tests.sh, which installs it")
    runner = Qgis(tmp_path_factory.mktemp("qgis"))
    enabled = runner.process("plugins", "enable", "iamap")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return runner

"""The algorithm dialogs in the real QGIS desktop (under Xvfb): the curated backbones read as names in the
dialog, the batch dialog and the modeler, while the parameter's value stays the key scripts use."""

from __future__ import annotations

import sys

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import qgis_desktop

pytestmark = [pytest.mark.qgis, pytest.mark.slow]


def test_backbones_show_readable_names_and_keep_their_keys_in_every_dialog(qgis, tmp_path):
    if qgis_desktop.desktop_missing():
        pytest.fail(f"QGIS desktop tests: {qgis_desktop.desktop_missing()}")
    env = {key: value for key, value in qgis.env.items() if key not in ("HOME", "QT_QPA_PLATFORM")}
    result = qgis_desktop.run_desktop("""
import processing
from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
from processing.modeler.ModelerParametersDialog import ModelerParametersDialog
from qgis.core import QgsApplication, QgsProcessingModelAlgorithm


def describe(wrapper):
    combo = wrapper.widget if hasattr(wrapper, "widget") else wrapper.wrappedWidget()
    return {"class": type(wrapper).__name__, "shown": combo.currentText(), "value": wrapper.value(),
            "first": combo.itemText(0), "tooltip": combo.itemData(0, 3)}


def body():
    dialog = processing.createAlgorithmDialog("iamap:encoder", {"BACKBONE": "vit_base_patch16_224.mae"})
    dialog.show()
    wait_until(lambda: False, 1)
    RESULT["dialog"] = describe(dialog.mainWidget().wrappers["BACKBONE"])
    algorithm = QgsApplication.processingRegistry().algorithmById("iamap:encoder")
    batch = BatchAlgorithmDialog(algorithm.create())
    batch.show()
    wait_until(lambda: False, 1)
    column = [p.name() for p in algorithm.parameterDefinitions()].index("BACKBONE")
    RESULT["batch"] = describe(batch.mainWidget().wrappers[0][column])
    model = QgsProcessingModelAlgorithm("m", "g")
    modeler = ModelerParametersDialog(algorithm.create(), model)
    modeler.show()
    wait_until(lambda: False, 1)
    panel = modeler.widget.widget if hasattr(modeler, "widget") else modeler
    wrappers = getattr(panel, "wrappers", {})
    RESULT["modeler"] = describe(wrappers["BACKBONE"]) if "BACKBONE" in wrappers else {"missing": list(wrappers)}
""", tmp_path / "profile", env, timeout=300)
    assert "exception" not in result, result["exception"]
    mae = "MAE ViT-B/16: 86 M parameters, trained to reconstruct images (less separable features)"
    assert result["dialog"] == {"class": "LabelledChoiceWrapper", "shown": mae, "value": "vit_base_patch16_224.mae",
                                "first": result["dialog"]["first"], "tooltip": "vit_small_patch14_reg4_dinov2.lvd142m"}
    assert result["dialog"]["first"].startswith("DINOv2 ViT-S/14 with registers: 22 M parameters")
    for kind in ("batch", "modeler"):  # the default backbone, shown by name, given as its key
        assert result[kind]["class"] == "LabelledChoiceWrapper", result[kind]
        assert result[kind]["shown"].startswith("DINOv2 ViT-S/14 with registers")
        assert result[kind]["value"] == "vit_small_patch14_reg4_dinov2.lvd142m"

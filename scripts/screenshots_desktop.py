"""PNG screenshots of IAMAP in the real QGIS desktop, for reviewers and the docs: the Processing toolbox with the
IAMAP provider, every algorithm's dialog, and the styled results of small runs on the bundled sample (encoder
features as RGB, PCA, clusters, similarity with its reference points, ml classes and confidence).

    python3 scripts/screenshots_desktop.py [OUT_DIR]

Runs in a throw-away profile under Xvfb with this checkout as the plugin; the worker is the installed IAMAP
environment (or IAMAP_PYTHON). Model weights cannot be downloaded everywhere: the encoder runs with random weights
(PRETRAINED off), so its features show structure, not meaning. OUT_DIR defaults to docs/screenshots.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from qgis_desktop import REPO, desktop_missing, run_desktop

BODY = """
import processing
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QTreeView

OUT = {out!r}
SAMPLE = {sample!r}
WORK = {work!r}


def save(widget, name):
    QApplication.processEvents()
    widget.grab().save(f"{{OUT}}/{{name}}")
    RESULT.setdefault("saved", []).append(name)


def show_only(layer_names, name):
    root = QgsProject.instance().layerTreeRoot()
    for node in root.findLayers():
        node.setItemVisibilityChecked(node.layer().name() in layer_names)
    iface.mapCanvas().refreshAllLayers()
    wait_until(lambda: False, 3)
    save(iface.mainWindow(), name)


def body():
    iface.mainWindow().resize(1400, 950)
    # the toolbox, filtered to IAMAP and expanded
    iface.actionShowProcessingToolbox().trigger() if hasattr(iface, "actionShowProcessingToolbox") else None
    toolbox = [d for d in iface.mainWindow().findChildren(QDockWidget) if d.objectName() == "ProcessingToolbox"]
    if toolbox:
        dock = toolbox[0]
        dock.show()
        dock.searchBox.setText("iamap") if hasattr(dock, "searchBox") else None
        for tree in dock.findChildren(QTreeView):
            tree.expandAll()
        wait_until(lambda: False, 1)
        save(dock, "desktop-0-toolbox.png")
    # every algorithm's dialog
    provider = QgsApplication.processingRegistry().providerById("iamap")
    for algorithm in sorted(provider.algorithms(), key=lambda a: a.id()):
        dialog = processing.createAlgorithmDialog(algorithm.id())
        dialog.resize(1000, 820)
        dialog.show()
        wait_until(lambda: False, 1)
        save(dialog, f"desktop-dialog-{{algorithm.name()}}.png")
        dialog.close()
    # styled results on the sample
    scene = QgsRasterLayer(SAMPLE + "/test.tif", "sample scene")
    points = QgsVectorLayer(SAMPLE + "/ml.shp", "labelled points", "ogr")
    QgsProject.instance().addMapLayers([scene, points])
    processing.runAndLoadResults("iamap:encoder", {{"INPUT": scene, "BACKBONE_NAME": "vit_tiny_patch16_224",
                                                   "PRETRAINED": False, "SIZE": 64, "STRIDE": 32,
                                                   "OUTPUT": WORK + "/features.tif"}})
    features = WORK + "/features.tif"
    processing.runAndLoadResults("iamap:reduction", {{"INPUT": features, "OUTPUT": WORK + "/pca.tif"}})
    processing.runAndLoadResults("iamap:cluster", {{"INPUT": features, "N_CLUSTERS": 6, "OUTPUT": WORK + "/c.tif"}})
    processing.runAndLoadResults("iamap:similarity", {{"INPUT": features, "TEMPLATE": points, "RANDOM_SAMPLES": 0,
                                                      "OUTPUT": WORK + "/s.tif", "OUTPUT_POINTS": WORK + "/p.gpkg"}})
    processing.runAndLoadResults("iamap:ml", {{"INPUT": scene, "TEMPLATE": points, "GT_COL": "Type",
                                              "OUTPUT": WORK + "/ml.tif", "OUTPUT_CONFIDENCE": WORK + "/conf.tif",
                                              "REPORT": WORK + "/report.html"}})
    names = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    RESULT["layers"] = names
    iface.mapCanvas().setExtent(scene.extent())
    # which layers each picture shows, by what their names say (input and method)
    pictures = (("desktop-result-0-scene.png", lambda n: n == "sample scene"),
                ("desktop-result-1-encoder.png", lambda n: n.endswith("(vit_tiny_patch16_224)")),
                ("desktop-result-2-pca.png", lambda n: "PCA" in n),
                ("desktop-result-3-clusters.png", lambda n: "KMeans" in n),
                ("desktop-result-4-similarity.png", lambda n: "similarity to" in n or "reference points" in n),
                ("desktop-result-5-ml-classes.png", lambda n: n.endswith("classes") or n == "labelled points"),
                ("desktop-result-6-ml-confidence.png", lambda n: n.endswith("confidence")))
    for picture, wanted in pictures:
        show_only([n for n in names if wanted(n)], picture)
"""


def main() -> int:
    reason = desktop_missing()
    if reason:
        print(f"cannot take desktop screenshots: {reason}")
        return 1
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    sample = REPO.parent / "shared" / "data" / "iamap-assets"
    sys.path.insert(0, str(REPO))
    from engine.host.status import worker_python

    # the throw-away profile has its own HOME: point it at this user's environment
    env = {"IAMAP_PYTHON": str(worker_python())}
    with tempfile.TemporaryDirectory(prefix="iamap-shots-") as root:
        work = Path(root) / "work"
        work.mkdir()
        result = run_desktop(BODY.format(out=str(out), sample=str(sample), work=str(work)), Path(root) / "qgis",
                             env=env, timeout=900)
    if "exception" in result:
        print(result["exception"])
        return 1
    print("layers:", ", ".join(result.get("layers", [])))
    for name in result.get("saved", []):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

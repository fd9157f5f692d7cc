"""PNG screenshots of the similarity explorer in use in the real QGIS desktop, for reviewers: the panel open on a
raster, the map after a click on the river, after a Shift+click adding a reference, the threshold mask, and the
exported mask polygons.

    <worker python> scripts/screenshots_explorer.py [OUT_DIR] [--raster PATH] [--x X --y Y] [--x2 X --y2 Y]

By default the raster is the bundled sample (docs/sample/sample_rgb.tif: any multi-band raster works, an
encoder's output best) and the clicks fall on its river points. The worker is IAMAP's installed environment (or
``IAMAP_PYTHON``); the QGIS profile is a throw-away one. Needs QGIS, xvfb-run and xauth; OUT_DIR defaults to
docs/screenshots.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from qgis_desktop import REPO, desktop_missing, run_desktop

sys.path.insert(0, str(REPO))
from engine.host.status import default_env_dir

BODY = """
from qgis.core import QgsCoordinateTransform, QgsPointXY, QgsProject
from qgis.PyQt.QtCore import QPoint, Qt
from qgis.PyQt.QtTest import QTest

OUT, RASTER, MASK = {out!r}, {raster!r}, {mask!r}
CLICKS = {clicks!r}
REPLIES = []


def save(name):
    wait_until(lambda: False, 1.5)  # the canvas renders in the background
    iface.mainWindow().grab().save(f"{{OUT}}/{{name}}")
    RESULT.setdefault("saved", []).append(name)


def screen_point(layer, x, y):
    canvas = iface.mapCanvas()
    point = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(),
                                   QgsProject.instance()).transform(QgsPointXY(x, y))
    screen = canvas.getCoordinateTransform().transform(point)
    return QPoint(int(round(screen.x())), int(round(screen.y())))


def wait_reply(count, seconds=300):
    explorer = plugins["iamap"].explorer
    if not wait_until(lambda: len(REPLIES) > count or explorer.server is None, seconds) or len(REPLIES) <= count:
        raise RuntimeError("the explorer did not answer: " + explorer.panel.status_label.text() + " | " +
                           " | ".join(item.text() for item in iface.messageBar().items()))
    return REPLIES[-1]


def body():
    iface.mainWindow().resize(1270, 1000)
    layer = iface.addRasterLayer(RASTER, "feature raster")
    iface.mapCanvas().setExtent(layer.extent())
    plugin = plugins["iamap"]
    action = [a for a in plugin.actions if "similarity" in a.text().lower()][0]
    action.trigger()
    explorer = plugin.explorer
    explorer.updated.connect(REPLIES.append)
    save("explorer-0-open.png")
    for index, ((x, y), modifiers) in enumerate(zip(CLICKS, (Qt.NoModifier, Qt.ShiftModifier))):
        count = len(REPLIES)
        QTest.mouseClick(iface.mapCanvas().viewport(), Qt.LeftButton, modifiers, screen_point(layer, x, y))
        RESULT[f"click_{{index}}"] = wait_reply(count)
        save(f"explorer-{{index + 1}}-{{'click' if index == 0 else 'shift-click'}}.png")
    explorer.panel.threshold_slider.setValue(int(round({threshold} * 100)))
    save("explorer-3-threshold.png")
    count = len(REPLIES)
    explorer.export_mask(MASK)
    RESULT["export"] = wait_reply(count)
    layer.setOpacity(1.0)
    explorer.layer.setOpacity(0.0)  # the exported polygons over the raster itself
    explorer.layer.triggerRepaint()
    save("explorer-4-mask-exported.png")
    explorer.panel.close()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--raster", type=Path, default=REPO / "docs" / "sample" / "sample_rgb.tif")
    parser.add_argument("--x", type=float, default=600605.0)
    parser.add_argument("--y", type=float, default=347541.4)
    parser.add_argument("--x2", type=float, default=601005.0)
    parser.add_argument("--y2", type=float, default=347401.1)
    parser.add_argument("--threshold", type=float, default=0.99)
    args = parser.parse_args()
    if desktop_missing():
        print(f"error: {desktop_missing()}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="iamap-screenshots-"))
    try:
        body = BODY.format(out=str(args.out.resolve()), raster=str(args.raster.resolve()),
                           mask=str(root / "mask.gpkg"), clicks=[(args.x, args.y), (args.x2, args.y2)],
                           threshold=args.threshold)
        # the profile's HOME is a throw-away one: point the worker at the user's environment found from here
        env = {} if os.environ.get("IAMAP_PYTHON") or os.environ.get("IAMAP_ENV_DIR") else \
            {"IAMAP_ENV_DIR": str(default_env_dir())}
        result = run_desktop(body, root / "qgis", env, timeout=900)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if "exception" in result:
        print(result["exception"], file=sys.stderr)
        return 1
    for key in ("click_0", "click_1", "export"):
        print(key, result.get(key))
    for name in sorted(result.get("saved", [])):
        print(args.out / name)
    return 0 if result.get("export", {}).get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())

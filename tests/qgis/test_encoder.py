"""``iamap:encoder`` through the real QGIS: qgis_process, processing.run, a .model3 chain, cancel and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from ..fixtures import random_raster
from .conftest import AlgorithmFailed

pytestmark = pytest.mark.qgis
TINY = {"BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": "false"}


def test_qgis_process_encodes_the_sentinel2_scene(qgis, assets, tmp_path):
    out = tmp_path / "features.tif"
    result = qgis.run("iamap:encoder", {"INPUT": assets / "test.tif", **TINY, "OUTPUT": out})
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as features, rasterio.open(assets / "test.tif") as src:
        assert features.count == 192 and features.crs == src.crs
        assert features.shape == (int(np.ceil(src.height / 16)), int(np.ceil(src.width / 16)))
        assert features.transform.a == 160 and (features.transform.c, features.transform.f) == \
            (src.transform.c, src.transform.f)


def test_help_names_every_encoder_parameter_and_the_curated_backbones(qgis):
    # that each parameter has an explanation is checked for every algorithm in test_plugin
    text = qgis.process("help", "iamap:encoder").stdout
    for parameter in ("INPUT", "BANDS", "EXTENT", "SIZE", "STRIDE", "BACKBONE", "BACKBONE_NAME", "PRETRAINED", "CKPT",
                      "DEVICE", "CUDA_ID", "BATCH_SIZE", "PRECISION", "MERGE_METHOD", "NORMALIZATION", "TARGET_CRS",
                      "TARGET_RESOLUTION", "RESUME", "OUTPUT"):
        assert f"<b>{parameter}</b>:" in text, parameter
    assert "vit_small_patch14_reg4_dinov2.lvd142m" in text and "SSL4EO-S12" in text


def test_bad_stride_fails_with_a_message_naming_the_parameter(qgis, tmp_path):
    path = random_raster(tmp_path / "in.tif", 300, 300)
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:encoder", {"INPUT": path, **TINY, "STRIDE": 100, "OUTPUT": tmp_path / "out.tif"})
    assert "STRIDE: 100 px does not fall on the feature grid" in info.value.result.stdout + info.value.result.stderr


def test_missing_environment_fails_at_once_with_the_install_command(qgis, tmp_path):
    path = random_raster(tmp_path / "in.tif", 100, 100)
    no_env = {"IAMAP_PYTHON": "", "IAMAP_ENV_DIR": str(tmp_path / "nothing-here")}
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:encoder", {"INPUT": path, **TINY, "OUTPUT": tmp_path / "out.tif"}, env=no_env)
    text = info.value.result.stdout + info.value.result.stderr
    assert "IAMAP's Python environment is not installed" in text
    assert "python3 -m engine.host.environment install" in text


def test_processing_run_with_an_extent_in_another_crs(qgis, assets, tmp_path):
    out = tmp_path / "part.tif"
    script = f"""
        from qgis.core import QgsRectangle, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject
        from qgis.core import QgsRasterLayer
        layer = QgsRasterLayer({str(assets / 'test.tif')!r}, "scene")
        e = layer.extent()
        inner = QgsRectangle(e.xMinimum() + 2000, e.yMinimum() + 1000, e.xMinimum() + 5000, e.yMinimum() + 3000)
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        box = QgsCoordinateTransform(layer.crs(), wgs84, QgsProject.instance()).transformBoundingBox(inner)
        extent = f"{{box.xMinimum()}},{{box.xMaximum()}},{{box.yMinimum()}},{{box.yMaximum()}} [EPSG:4326]"
        result = processing.run("iamap:encoder", {{"INPUT": layer, "EXTENT": extent, "BANDS": [3, 2, 1],
                                  "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False,
                                  "OUTPUT": {str(out)!r}}})
        print("INNER", inner.xMinimum(), inner.yMinimum(), inner.xMaximum(), inner.yMaximum())
        print("RESULT", result["OUTPUT"])
        """
    result = qgis.pyqgis(script)
    assert "RESULT" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    inner = [float(v) for v in result.stdout.split("INNER ")[1].split()[:4]]
    with rasterio.open(out) as features:
        assert features.count == 192
        b = features.bounds
        # the reprojected box contains the inner rectangle; the output covers it, snapped outward to whole pixels
        assert b.left <= inner[0] and b.bottom <= inner[1] and b.right >= inner[2] and b.top >= inner[3]
        assert b.right - b.left < 3000 + 2 * 160 + 500


def test_model3_chain_encoder_then_raster_statistics(qgis, tmp_path):
    path = random_raster(tmp_path / "in.tif", 448, 224)
    model_file = tmp_path / "chain.model3"
    outputs = qgis.run_model3(model_file, "raster", [
        ("encode", "iamap:encoder", {"INPUT": ("parameter", "raster"), "BACKBONE_NAME": "vit_tiny_patch16_224",
                                     "PRETRAINED": False}, {}),
        ("stats", "native:rasterlayerstatistics", {"INPUT": ("child", "encode", "OUTPUT"), "BAND": 5},
         {"stats_html": "OUTPUT_HTML_FILE"}),
    ], {"raster": str(path), "stats:stats_html": str(tmp_path / "stats.html")})
    assert model_file.exists() and "iamap:encoder" in model_file.read_text()
    html = outputs["stats:stats_html"]
    assert html.endswith(".html") and "Standard deviation" in open(html).read()


def test_cancel_through_processing_run_then_resume(qgis, tmp_path):
    path = random_raster(tmp_path / "big.tif", 2688, 2688)  # 144 tiles
    out = tmp_path / "features.tif"
    script = f"""
        import threading, time
        from qgis.core import QgsProcessingFeedback
        from qgis.core import QgsProcessingException
        feedback = QgsProcessingFeedback()
        state = {{}}
        def watch():
            while feedback.progress() < 20:
                time.sleep(0.05)
            state["at"] = time.monotonic()
            feedback.cancel()
        threading.Thread(target=watch, daemon=True).start()
        params = {{"INPUT": {str(path)!r}, "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False,
                   "BATCH_SIZE": 4, "OUTPUT": {str(out)!r}}}
        try:
            processing.run("iamap:encoder", params, feedback=feedback)
            print("FINISHED")
        except QgsProcessingException as exc:
            print("CANCELLED", f"{{time.monotonic() - state['at']:.3f}}", exc)
        """
    result = qgis.pyqgis(script)
    assert "CANCELLED" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert float(result.stdout.split("CANCELLED ")[1].split()[0]) < 1.0
    assert not out.exists()
    assert (tmp_path / "features.partial.tif").exists()
    rows_done = json.loads((tmp_path / "features.partial.json").read_text())["rows_done"]
    assert rows_done > 0
    resumed = qgis.process("run", "iamap:encoder", f"--INPUT={path}", "--BACKBONE_NAME=vit_tiny_patch16_224",
                           "--PRETRAINED=false", "--BATCH_SIZE=4", f"--OUTPUT={out}")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"Resuming: {rows_done} of 168 output rows" in resumed.stdout + resumed.stderr
    with rasterio.open(out) as features:
        assert features.shape == (168, 168) and np.isfinite(features.read(1)).all()
    assert not (tmp_path / "features.partial.tif").exists()


def failure_text(qgis, params) -> str:
    with pytest.raises(AlgorithmFailed) as info:
        qgis.run("iamap:encoder", params)
    return info.value.result.stdout + info.value.result.stderr


def test_a_crs_qgis_does_not_know_is_refused_naming_target_crs(qgis, tmp_path):
    path = random_raster(tmp_path / "in.tif", 224, 224)
    text = failure_text(qgis, {"INPUT": path, **TINY, "TARGET_CRS": "EPSG:999999", "OUTPUT": tmp_path / "out.tif"})
    assert "TARGET_CRS" in text and "EPSG:999999" in text and "EPSG:32631" in text
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_an_extent_without_width_is_refused_not_the_whole_raster(qgis, tmp_path):
    path = random_raster(tmp_path / "in.tif", 224, 224)  # x 500000..502240, y 3997760..4000000
    text = failure_text(qgis, {"INPUT": path, **TINY, "EXTENT": "500500,500500,3998000,3999000 [EPSG:32633]",
                               "OUTPUT": tmp_path / "out.tif"})
    assert "EXTENT" in text and "the extent has no area" in text
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_a_pipe_in_the_input_and_output_names_is_kept_by_qgis_process_and_processing_run(qgis, tmp_path):
    path = random_raster(tmp_path / "a|b.tif", 224, 224)
    out = tmp_path / "feat|ures.tif"
    result = qgis.run("iamap:encoder", {"INPUT": path, **TINY, "OUTPUT": out})
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as features:
        assert features.count == 192 and features.shape == (14, 14) and features.tags()["INPUT"] == str(path)
    second = tmp_path / "second|run.tif"
    script = f"""
        result = processing.run("iamap:encoder", {{"INPUT": {str(path)!r}, "BACKBONE_NAME": "vit_tiny_patch16_224",
                                 "PRETRAINED": False, "OUTPUT": {str(second)!r}}})
        print("RESULT", result["OUTPUT"])
        """
    run = qgis.pyqgis(script)
    assert f"RESULT {second}" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert second.exists() and not (tmp_path / "a").exists() and not (tmp_path / "second").exists()


def qgis_extent(qgis, path) -> list[float]:
    """The extent QGIS gives the raster when it loads it (xmin, ymin, xmax, ymax)."""
    check = qgis.pyqgis(f"""
        from qgis.core import QgsRasterLayer
        e = QgsRasterLayer({str(path)!r}, "r").extent()
        print("EXTENT", e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum())
        """)
    assert "EXTENT" in check.stdout, check.stdout[-3000:] + check.stderr[-3000:]
    return [float(v) for v in check.stdout.split("EXTENT ")[1].split()[:4]]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the input has none, on purpose
def test_features_of_a_raster_without_geotransform_cover_it_in_qgis(qgis, tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=448, height=224, count=3, dtype="uint8") as dst:
        dst.write(np.random.default_rng(0).integers(1, 250, (3, 224, 448)).astype("uint8"))
    out = tmp_path / "features.tif"
    qgis.run("iamap:encoder", {"INPUT": path, **TINY, "OUTPUT": out})
    assert qgis_extent(qgis, path) == [0, -224, 448, 0]  # QGIS: origin top-left, y going down
    assert qgis_extent(qgis, out) == [0, -224, 448, 0]


def test_float16_features_read_in_qgis_as_the_engine_wrote_them(qgis, tmp_path):
    """Feature storage float16 (GDAL NBITS=16): QGIS's own GDAL reads it as Float32 with the values the worker's
    GDAL reads, nodata included."""
    path = random_raster(tmp_path / "in.tif", 300, 200)
    out = tmp_path / "f16.tif"
    qgis.run("iamap:encoder", {"INPUT": path, **TINY, "OUTPUT_FORMAT": "float16", "OUTPUT": out})
    with rasterio.open(out) as src:
        expected = src.read([1, 192])
    result = qgis.pyqgis(f"""
        import json
        from qgis.core import Qgis, QgsRasterLayer
        layer = QgsRasterLayer({str(out)!r}, "f16")
        provider = layer.dataProvider()
        values = []
        for band in (1, 192):
            block = provider.block(band, layer.extent(), layer.width(), layer.height())
            values.append([[None if block.isNoData(r, c) else block.value(r, c) for c in range(layer.width())]
                           for r in range(layer.height())])
        print("F16", json.dumps({{"valid": layer.isValid(), "type": int(provider.dataType(1)),
                                  "float32": int(Qgis.DataType.Float32), "values": values}}))
        """)
    shown = json.loads(result.stdout.split("F16 ", 1)[1].splitlines()[0])
    assert shown["valid"] and shown["type"] == shown["float32"]
    read = np.array([[[np.nan if v is None else v for v in row] for row in band] for band in shown["values"]])
    assert read.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(read), np.isnan(expected))
    np.testing.assert_allclose(read, expected, rtol=0, atol=0, equal_nan=True)
    assert np.nanstd(read) > 0

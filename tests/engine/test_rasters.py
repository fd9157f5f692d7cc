"""Raster input checks shared by every tool: target CRS, complex bands, degenerate extents, and where a raster
without georeferencing lies."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from engine.cluster import run_cluster
from engine.encoder import run_encoder
from engine.errors import ParameterError
from engine.events import Reporter
from engine.rasters import extent_window, grid_transform, open_raster, window_transform
from engine.reduction import run_reduction
from engine.similarity import run_similarity

from ..fixtures import random_raster


def unreferenced_raster(path, width=60, height=40, bands=3):
    """A GeoTIFF with no geotransform and no CRS (rasterio then reports the identity)."""
    data = np.random.default_rng(0).integers(1, 250, (bands, height, width)).astype("uint8")
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands, dtype="uint8") as dst:
            dst.write(data)
    return path


def test_an_unknown_target_crs_is_a_parameter_error_with_the_fix(tmp_path):
    path = random_raster(tmp_path / "in.tif", 20, 20)
    with pytest.raises(ParameterError) as info:
        with open_raster(str(path), target_crs="EPSG:999999"):
            pass
    assert info.value.parameter == "TARGET_CRS"
    assert "'EPSG:999999' is not a coordinate reference system" in str(info.value)
    assert "EPSG:32631" in str(info.value) and "leave it empty" in str(info.value)


def test_a_known_target_crs_reprojects(tmp_path):
    path = random_raster(tmp_path / "in.tif", 20, 20)
    with open_raster(str(path), target_crs="EPSG:4326") as src:
        assert src.crs.to_epsg() == 4326


def test_the_encoder_refuses_an_unknown_target_crs_before_writing(tmp_path):
    path = random_raster(tmp_path / "in.tif", 32, 32)
    with pytest.raises(ParameterError, match="TARGET_CRS: 'EPSG:999999' is not a coordinate reference system"):
        run_encoder({"INPUT": str(path), "OUTPUT": str(tmp_path / "out.tif"), "BACKBONE_NAME": "vit_tiny_patch16_224",
                     "PRETRAINED": False, "TARGET_CRS": "EPSG:999999"}, Reporter())
    assert list(tmp_path.iterdir()) == [path]


def complex_raster(path, dtype="complex64", bands=1, size=16):
    """A GeoTIFF of complex bands (``complex_int16`` is GDAL's CInt16, ``complex64`` its CFloat32)."""
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands, dtype=dtype, crs="EPSG:32633",
                       transform=Affine(10, 0, 500_000, 0, -10, 4_000_000)) as dst:
        dst.write(np.full((bands, size, size), 3 + 4j, "complex64"))
    return path


@pytest.mark.parametrize("dtype", ["complex_int16", "complex64"])
def test_complex_bands_are_refused_naming_input_and_the_fix(tmp_path, dtype):
    path = complex_raster(tmp_path / "slc.tif", dtype, bands=2)
    with rasterio.open(path) as src:  # what the check prevents: the imaginary part silently dropped
        assert src.read(1, out_dtype="float32")[0, 0] == 3
    with pytest.raises(ParameterError) as info:
        with open_raster(str(path)):
            pass
    message = str(info.value)
    assert info.value.parameter == "INPUT" and message.startswith("INPUT: slc.tif has complex-valued band(s) [1, 2]")
    assert dtype in message and "imaginary" in message and "real(A)" in message and "imag(A)" in message


COMPLEX_RUNS = {
    "encoder": lambda p: run_encoder({**p, "BACKBONE_NAME": "vit_tiny_patch16_224", "PRETRAINED": False}, Reporter()),
    "reduction": lambda p: run_reduction(p, Reporter()),
    "cluster": lambda p: run_cluster(p, Reporter()),
    "similarity": lambda p: run_similarity({**p, "TEMPLATE": "none.gpkg"}, Reporter()),
}


@pytest.mark.parametrize("tool", sorted(COMPLEX_RUNS))
def test_every_tool_refuses_complex_input(tmp_path, tool):
    path = complex_raster(tmp_path / "slc.tif")
    with pytest.raises(ParameterError, match="INPUT: slc.tif has complex-valued band"):
        COMPLEX_RUNS[tool]({"INPUT": str(path), "OUTPUT": str(tmp_path / "out.tif")})
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("extent", [
    [500_100, 3_999_900, 500_100, 3_999_950],  # no width
    [500_100, 3_999_900, 500_150, 3_999_900],  # no height
    [500_150, 3_999_900, 500_100, 3_999_950],  # xmin > xmax
])
def test_a_degenerate_extent_is_refused_not_the_whole_raster(tmp_path, extent):
    path = random_raster(tmp_path / "in.tif", 20, 20)
    with rasterio.open(path) as src, pytest.raises(ParameterError) as info:
        extent_window(src, extent)
    assert info.value.parameter == "EXTENT" and "empty extent" in str(info.value)


def test_a_raster_without_geotransform_lies_where_qgis_shows_it(tmp_path):
    path = unreferenced_raster(tmp_path / "plain.tif")
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        src = rasterio.open(path)
    with src:
        assert src.transform == Affine.identity()  # what rasterio reports
        assert grid_transform(src) == Affine(1, 0, 0, 0, -1, 0)  # QGIS: origin top-left, y going down
        assert window_transform(src, Window(10, 5, 20, 20)) == Affine(1, 0, 10, 0, -1, -5)
        # EXTENT drawn in QGIS on that raster is in those coordinates
        assert extent_window(src, [10, -25, 30, -5]) == Window(10, 5, 20, 20)


def test_a_stored_identity_or_a_real_geotransform_is_kept(tmp_path):
    path = random_raster(tmp_path / "geo.tif", 20, 20)
    with rasterio.open(path) as src:
        assert grid_transform(src) == src.transform and grid_transform(src).e == -10


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the input has none, on purpose
def test_outputs_of_a_raster_without_geotransform_line_up_with_it(tmp_path):
    path = unreferenced_raster(tmp_path / "plain.tif", 64, 48)
    run_reduction({"INPUT": str(path), "OUTPUT": str(tmp_path / "pca.tif"), "EXTENT": [16, -40, 64, -8]}, Reporter())
    with rasterio.open(tmp_path / "pca.tif") as out:
        assert out.transform == Affine(1, 0, 16, 0, -1, -8) and out.shape == (32, 48)
        assert out.crs is None

"""Reading rasters: opening (and refusing complex bands or an unknown target CRS), band and extent checks, padded
reads, strips, and where a raster without geotransform lies (writing: test_raster_writing.py)."""

from __future__ import annotations


import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from engine import rasters
from engine.cluster import run_cluster
from engine.encoder import run_encoder
from engine.errors import ParameterError
from engine.events import Reporter
from engine.rasters import (check_bands, extent_window, grid_transform, iter_strips, open_raster, read_padded,
                            strip_rows, window_transform)
from engine.reduction import run_reduction
from engine.similarity import run_similarity

from ..fixtures import UTM_ORIGIN, random_raster, write_raster

X0, Y0 = UTM_ORIGIN  # top-left corner of the generated rasters; 10 m pixels


def counting_raster(path, bands=2, height=6, width=8, dtype="float32", nodata=None):
    """Band b (0-based), row r, column c holds ``1000 * b + 10 * r + c``: every pixel tells where it comes from."""
    b, r, c = np.indices((bands, height, width))
    return write_raster(path, (1000 * b + 10 * r + c).astype(dtype), nodata=nodata)


# -- opening and checks ------------------------------------------------------------------------------------


def test_a_path_that_is_not_a_raster_names_input(tmp_path):
    (tmp_path / "notes.txt").write_text("not a raster")
    for path in (tmp_path / "missing.tif", tmp_path / "notes.txt"):
        with pytest.raises(ParameterError) as info:
            with open_raster(str(path)):
                pass
        assert info.value.parameter == "INPUT" and f"cannot open {path} as a raster" in str(info.value)


def test_open_raster_reads_the_file_or_a_warped_view(tmp_path):
    path = counting_raster(tmp_path / "in.tif", height=20, width=40)
    with open_raster(str(path)) as src:
        assert (src.width, src.height, src.res) == (40, 20, (10.0, 10.0))
    with open_raster(str(path), resolution=20) as src:
        assert (src.width, src.height, src.res) == (20, 10, (20.0, 20.0)) and src.crs.to_epsg() == 32633
    with open_raster(str(path), target_crs="EPSG:4326") as src:
        assert src.crs.to_epsg() == 4326 and abs(src.bounds.left - 15.0) < 1  # UTM 33 N, 500 km easting: 15 E


def test_a_resolution_that_leaves_no_raster_names_target_resolution_and_its_units(tmp_path):
    # 10 meant as metres on a raster in degrees: 64 x 64 pixels of 0.0001 degrees become one pixel
    path = write_raster(tmp_path / "geo.tif", np.ones((1, 64, 64), "float32"), crs="EPSG:4326", res=0.0001,
                        origin=(15.0, 45.0))
    with pytest.raises(ParameterError) as info:
        with open_raster(str(path), resolution=10):
            pass
    assert info.value.parameter == "TARGET_RESOLUTION"
    assert "1 x 1 pixel(s) in EPSG:4326" in str(info.value) and "degrees" in str(info.value)
    with open_raster(str(path), resolution=0.0002) as src:  # a resolution in degrees is still taken
        assert (src.width, src.height) == (32, 32)


def test_check_bands_defaults_to_all_and_refuses_empty_or_missing_bands(tmp_path):
    with rasterio.open(counting_raster(tmp_path / "in.tif", bands=3)) as src:
        assert check_bands(src, None) == [1, 2, 3]
        assert check_bands(src, ["3", 1]) == [3, 1]  # order kept, text accepted
        with pytest.raises(ParameterError, match=r"^BANDS: no band selected"):
            check_bands(src, [])
        with pytest.raises(ParameterError, match=r"^BANDS: band\(s\) 0, 4 do not exist: the raster has 3 band"):
            check_bands(src, [0, 1, 4])
        with pytest.raises(ParameterError, match=r"^OTHER: no band"):
            check_bands(src, [], parameter="OTHER")


def test_extent_window_whole_raster_inside_and_partial_overlap_clipped(tmp_path):
    with rasterio.open(counting_raster(tmp_path / "in.tif", height=30, width=50)) as src:  # 500 x 300 m
        assert extent_window(src, None) == Window(0, 0, 50, 30)
        inside = extent_window(src, [X0 + 100, Y0 - 250, X0 + 300, Y0 - 50])
        assert inside == Window(10, 5, 20, 20)
        snapped = extent_window(src, [X0 + 105, Y0 - 245, X0 + 295, Y0 - 55])  # whole pixels covering it
        assert snapped == Window(10, 5, 20, 20)
        clipped = extent_window(src, [X0 - 1000, Y0 - 100, X0 + 200, Y0 + 1000])
        assert clipped == Window(0, 0, 20, 10)
        clipped_right = extent_window(src, [X0 + 400, Y0 - 5000, X0 + 9000, Y0 - 200])
        assert clipped_right == Window(40, 20, 10, 10)


def test_extent_outside_the_raster_gives_both_boxes(tmp_path):
    with rasterio.open(counting_raster(tmp_path / "in.tif", height=30, width=50)) as src:
        with pytest.raises(ParameterError) as info:
            extent_window(src, [0, 0, 10, 10])
    message = str(info.value)
    assert info.value.parameter == "EXTENT"
    assert "the extent (0, 0, 10, 10) does not overlap the raster" in message
    assert "bounds are (500000, 3.9997e+06, 500500, 4e+06) in EPSG:32633" in message


def test_inverted_extent_is_refused(tmp_path):
    with rasterio.open(counting_raster(tmp_path / "in.tif")) as src:
        with pytest.raises(ParameterError, match=r"^EXTENT: empty extent .*xmin must be < xmax and ymin < ymax"):
            extent_window(src, [X0 + 50, Y0 - 10, X0 + 10, Y0])  # xmin > xmax
        with pytest.raises(ParameterError, match=r"^EXTENT: empty extent"):
            extent_window(src, [X0 + 10, Y0 - 10, X0 + 50, Y0 - 10])  # ymin == ymax


# -- reading -------------------------------------------------------------------------------------------------


def test_read_padded_inside_returns_the_pixels(tmp_path):
    with rasterio.open(counting_raster(tmp_path / "in.tif")) as src:
        data, valid = read_padded(src, [2, 1], Window(1, 1, 6, 4), 1, 2, 2, 3)
    # window row 1 = raster row 2, window column 2 = raster column 3; bands in the asked order
    np.testing.assert_array_equal(data, [[[1023, 1024, 1025], [1033, 1034, 1035]],
                                         [[23, 24, 25], [33, 34, 35]]])
    assert data.dtype == np.float32 and valid.all()


def test_read_padded_pads_outside_the_window_with_invalid_pixels(tmp_path):
    with rasterio.open(counting_raster(tmp_path / "in.tif")) as src:  # 8 x 6
        window = Window(2, 1, 4, 3)  # raster rows 1-3, columns 2-5
        data, valid = read_padded(src, [1], window, -1, 5, 2, 4)  # one row above, one below, 2 columns right
        assert data.shape == valid.shape == (1, 5, 4)
        expected_valid = np.zeros((5, 4), bool)
        expected_valid[1:4, :2] = True
        np.testing.assert_array_equal(valid[0], expected_valid)
        np.testing.assert_array_equal(data[0, 1:4, :2], [[14, 15], [24, 25], [34, 35]])  # not the raster's
        assert (data[0][~expected_valid] == 0).all()  # columns 6-7, which lie outside the window
        empty, none_valid = read_padded(src, [1], window, 10, 2, 0, 4)
        assert empty.shape == (1, 2, 4) and not none_valid.any()


def test_nodata_values_and_nan_are_invalid(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    data[0, 0, 0] = -9999  # nodata in band 1 only
    data[1, 2, 3] = np.nan  # NaN without being the nodata value
    path = write_raster(tmp_path / "in.tif", data, nodata=-9999)
    with rasterio.open(path) as src:
        _, valid = read_padded(src, [1, 2], Window(0, 0, 4, 3), 0, 3, 0, 4)
    expected = np.ones((2, 3, 4), bool)
    expected[0, 0, 0] = expected[1, 2, 3] = False
    np.testing.assert_array_equal(valid, expected)


@pytest.mark.parametrize("dtype, nodata", [("float32", 0.1), ("float64", 0.1), ("float32", -3.4028234663852886e38),
                                           ("uint16", 65535), ("float32", float("nan"))])
def test_nodata_of_any_type_is_recognised_after_the_float32_read(tmp_path, dtype, nodata):
    data = np.full((1, 2, 3), 7, dtype)
    data[0, 1, 2] = nodata
    with rasterio.open(write_raster(tmp_path / "in.tif", data, nodata=nodata)) as src:
        values, valid = read_padded(src, [1], Window(0, 0, 3, 2), 0, 2, 0, 3)
    assert valid.sum() == 5 and not valid[0, 1, 2]
    assert (values[0][valid[0]] == 7).all()


def test_strip_rows_bounds_the_bytes_of_a_strip():
    window = Window(0, 0, 100, 1000)
    assert strip_rows(window, 4, strip_bytes=100 * 4 * 4 * 10) == 10  # exactly 10 rows of 4 float32 bands
    assert strip_rows(window, 4, strip_bytes=100 * 4 * 4 * 10 - 1) == 9
    assert strip_rows(window, 4, strip_bytes=1) == 1  # at least one row
    assert strip_rows(window, 4, strip_bytes=10**12) == 1000  # at most the window
    assert strip_rows(window, 4) * 100 * 4 * 4 <= 64 * 2**20


def test_iter_strips_yields_every_pixel_once_in_row_major_order(tmp_path, monkeypatch):
    data = np.arange(2 * 7 * 5, dtype=np.float32).reshape(2, 7, 5)
    data[1, 3, 4] = np.nan
    with rasterio.open(write_raster(tmp_path / "in.tif", data, nodata=float("nan"))) as src:
        window = Window(1, 1, 4, 5)  # raster rows 1-5, columns 1-4
        strips = list(iter_strips(src, [1, 2], window, rows=2))
        monkeypatch.setattr(rasters, "STRIP_BYTES", 4 * 2 * 4 * 3)  # the default height follows STRIP_BYTES
        assert [row for row, _, _ in iter_strips(src, [1, 2], window)] == [0, 3]
    assert [row for row, _, _ in strips] == [0, 2, 4]
    assert [len(pixels) for _, pixels, _ in strips] == [8, 8, 4]  # the last strip holds the rows left
    pixels = np.concatenate([p for _, p, _ in strips])
    valid = np.concatenate([v for _, _, v in strips])
    np.testing.assert_array_equal(pixels[:, 0], data[0, 1:6, 1:5].ravel())
    expected_valid = np.isfinite(data[:, 1:6, 1:5]).all(axis=0).ravel()
    np.testing.assert_array_equal(valid, expected_valid)
    assert valid.sum() == 19 and not valid[2 * 4 + 3]  # raster (3, 4) = window (2, 3)


# -- output names, finalize, JSON ------------------------------------------------------------------------------


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
    assert info.value.parameter == "INPUT" and message.startswith("INPUT: slc.tif has complex-valued band(s) 1, 2 (")
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

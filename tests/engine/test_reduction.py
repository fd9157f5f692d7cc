"""The reduction engine: PCA equal to scikit-learn on the same pixels, nodata, georeferencing, saved models,
the nearest-neighbour stand-in of t-SNE, non-negative methods, and UMAP on the shared scene."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from engine.errors import ParameterError
from engine.events import Reporter
from engine.model_files import load_model
from engine.reduction import run_reduction

from ..fixtures import all_pixels, described, pickle_like_1_0_2, regions_raster


def reduce(tmp_path, raster, name="r.tif", **params):
    reporter = Reporter()
    outputs = run_reduction({"INPUT": str(raster), "OUTPUT": str(tmp_path / name), **params}, reporter)
    with rasterio.open(outputs["OUTPUT"]) as src:
        return src.read(), described(src), outputs, reporter


def test_pca_equals_scikit_learn_on_the_same_pixels_and_keeps_nodata(tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 60, 50, bands=12, regions=5, noise=0.3, nodata_corner=10)
    result, src, outputs, _ = reduce(tmp_path, raster, METHOD="PCA", N_COMPONENTS=4)
    with rasterio.open(raster) as source:
        data = source.read()
        assert src.crs == source.crs and src.transform == source.transform
    valid = truth >= 0
    pixels = data[:, valid].T  # every valid pixel, row-major: the same pixels the tool sampled (SAMPLE_SIZE > count)
    expected_pca = PCA(4, random_state=0).fit(StandardScaler().fit_transform(pixels))
    expected = expected_pca.transform(StandardScaler().fit_transform(pixels))
    np.testing.assert_allclose(result[:, valid].T, expected, atol=2e-4)
    np.testing.assert_allclose(outputs["EXPLAINED_VARIANCE"], expected_pca.explained_variance_ratio_, rtol=1e-4)
    assert result.shape == (4, 50, 60) and src.dtypes == ("float32",) * 4 and np.isnan(src.nodata)
    assert np.isnan(result[:, ~valid]).all() and np.isfinite(result[:, valid]).all()
    assert src.descriptions[0] == "PCA component 1"


def test_saved_model_reapplied_gives_identical_output_on_another_raster(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 64, 64, seed=1, noise=0.4)
    other, _ = regions_raster(tmp_path / "g.tif", 40, 30, seed=2, noise=0.4, nodata_corner=5)
    fitted, _, fit_outputs, _ = reduce(tmp_path, raster, SAMPLE_SIZE=500, SAVE_MODEL=str(tmp_path / "pca.iamapmodel"))
    again, _, _, _ = reduce(tmp_path, raster, "again.tif", LOAD_MODEL=str(tmp_path / "pca.iamapmodel"))
    np.testing.assert_array_equal(fitted, again)
    elsewhere, _, outputs, _ = reduce(tmp_path, other, "other.tif", LOAD_MODEL=str(tmp_path / "pca.iamapmodel"))
    assert elsewhere.shape == (3, 30, 40) and np.isnan(elsewhere[:, :5, :5]).all()
    assert outputs["EXPLAINED_VARIANCE"] == fit_outputs["EXPLAINED_VARIANCE"]  # the fit's figure, kept with it


def test_a_1_0_2_pca_pkl_under_trust_model_gives_1_0_2_s_components(tmp_path):
    import joblib

    raster = regions_raster(tmp_path / "fit.tif", 30, 20, bands=6, regions=3, noise=0.3)[0]
    pkl = pickle_like_1_0_2(tmp_path / "pca.pkl", raster, PCA(3))
    other = regions_raster(tmp_path / "other.tif", 25, 20, bands=6, regions=4, seed=5, noise=0.3)[0]
    with pytest.raises(ParameterError, match="LOAD_MODEL: pca.pkl is not an IAMAP model file"):
        reduce(tmp_path, other, LOAD_MODEL=str(pkl))
    result, src, outputs, reporter = reduce(tmp_path, other, LOAD_MODEL=str(pkl), TRUST_MODEL=True)
    pixels = all_pixels(other)
    by_hand = joblib.load(pkl).transform(StandardScaler().fit(pixels).transform(pixels))
    np.testing.assert_allclose(result.reshape(3, -1).T, by_hand, rtol=1e-5, atol=1e-5)
    assert src.dtypes == ("float32",) * 3 and outputs["COMPONENTS"] == 3
    np.testing.assert_allclose(outputs["EXPLAINED_VARIANCE"], joblib.load(pkl).explained_variance_ratio_)
    assert "SAVE_MODEL (\u201cSave the fitted model\u201d) set to a .iamapmodel file re-saves this model" in \
        " ".join(e.get("message", "") for e in reporter.events)


def test_tsne_fitted_on_the_sample_and_extended_to_every_pixel(tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 40, 40, regions=2, nodata_corner=4)
    result, _, outputs, reporter = reduce(tmp_path, raster, METHOD="TSNE", N_COMPONENTS=2, SAMPLE_SIZE=300,
                                          SAVE_MODEL=str(tmp_path / "tsne.iamapmodel"))
    valid = truth >= 0
    assert np.isfinite(result[:, valid]).all() and np.isnan(result[:, ~valid]).all()
    left, right = result[:, valid & (truth == 0)], result[:, truth == 1]
    gap = np.linalg.norm(left.mean(axis=1) - right.mean(axis=1))
    assert gap > 3 * max(left.std(axis=1).max(), right.std(axis=1).max())  # the two regions stay apart
    assert any("TSNE cannot handle pixels outside the fitted sample" in e.get("message", "") for e in reporter.events)
    again, _, _, _ = reduce(tmp_path, raster, "again.tif", LOAD_MODEL=str(tmp_path / "tsne.iamapmodel"))
    np.testing.assert_array_equal(result, again)


def test_nonnegative_methods_get_minmax_scaled_input(tmp_path):
    raster, truth = regions_raster(tmp_path / "f.tif", 32, 32)  # values around 0, many negative
    result, _, _, _ = reduce(tmp_path, raster, METHOD="NMF", N_COMPONENTS=2, SK_PARAM='{"max_iter": 500}',
                             SAVE_MODEL=str(tmp_path / "nmf.iamapmodel"))
    assert np.all(result >= 0) and result.max() > 0
    scaler = load_model(str(tmp_path / "nmf.iamapmodel"), "reduction", 8)["pipeline"]["scale"]
    assert isinstance(scaler, MinMaxScaler) and scaler.clip  # pixels beyond the sample's range stay in [0, 1]
    with rasterio.open(raster) as src:
        pixels = src.read().reshape(src.count, -1).T
    assert scaler.transform(pixels).min() == 0 and scaler.transform(pixels - 100).max() == 0


def test_too_many_components_names_the_parameter(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 16, 16, bands=4)
    with pytest.raises(ParameterError, match="N_COMPONENTS: PCA failed"):
        reduce(tmp_path, raster, N_COMPONENTS=6)
    assert not (tmp_path / "r.tif").exists() and not (tmp_path / "r.partial.tif").exists()


def test_umap_on_the_sentinel2_scene(tmp_path, assets):
    result, src, outputs, _ = reduce(tmp_path, assets / "test.tif", METHOD="UMAP", SAMPLE_SIZE=3000, RANDOM_SEED=1)
    assert result.shape == (3, 379, 968) and src.crs.to_epsg() == 32633
    assert np.isfinite(result).all()  # the scene has no nodata pixel
    assert all(low < high for low, high in outputs["DISPLAY_RANGES"])

"""The ml report: self-contained (pictures embedded, nothing fetched), every user text escaped, the figures and
where they come from, every parameter; written atomically."""

from __future__ import annotations

import base64
import io
import os
import re

import pytest
from PIL import Image

from engine.ml_report import render_report, write_report

CLASSIFICATION_METRICS = {
    "pixels": 10, "accuracy": 0.7, "kappa": 0.5454, "f1_macro": 0.69, "f1_weighted": 0.7,
    "per_class": [{"name": "forest", "code": 1, "precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4},
                  {"name": "<b>wet</b> & dry", "code": 2, "precision": None, "recall": 0.0, "f1": None,
                   "support": 3}],
    "labels": ["forest", "<b>wet</b> & dry"], "confusion": [[3, 1], [3, 0]]}


def classification_report(**changes) -> dict:
    report = {
        "title": "RandomForestClassifier on scene.tif", "created": "2026-11-24T20:00:00+0000", "iamap_version": "0.3",
        "task": "classification", "method": "RandomForestClassifier", "input": "/data/scene.tif", "bands": [1, 2],
        "band_names": ["B2", "B3"], "parameters": {"INPUT": "/data/scene.tif", "CV": "group", "EXTENT": None,
                                                   "SK_PARAM": {"n_estimators": 10}},
        "estimator_parameters": {"n_estimators": "10"}, "model_source": "trained",
        "classes": [{"code": 1, "name": "forest", "colour": "#1f77b4"},
                    {"code": 2, "name": "<b>wet</b> & dry", "colour": "#ff7f0e"}],
        "training": {"layer": "/data/p.gpkg", "label_field": "Type", "features_used": 7, "pixels": 10,
                     "dropped": {"outside the raster or EXTENT": 2},
                     "class_counts": {"forest": {"features": 4, "pixels": 4},
                                      "<b>wet</b> & dry": {"features": 3, "pixels": 6}}},
        "validation": {"cv": "group", "description": "2-fold by feature", "folds_count": 2,
                       "folds": [{"fold": 1, "train_pixels": 5, "test_pixels": 5, "test_features": 3,
                                  "metrics": CLASSIFICATION_METRICS}] * 2, "overall": CLASSIFICATION_METRICS},
        "importances": {"kind": "impurity", "values": {"B2": 0.8, "B3": 0.2}},
        "prediction": {"class_pixels": {"forest": 30, "<b>wet</b> & dry": 10}},
        "warnings": ["CV kfold <mixes> pixels"], "versions": {"scikit-learn": "1.9.1"},
    }
    report.update(changes)
    return report


def pictures(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(data)))
            for data in re.findall(r'<img alt="figure" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_a_classification_report_is_self_contained_escaped_and_complete(tmp_path):
    path = write_report(tmp_path / "report.html", classification_report())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    page = path.read_text(encoding="utf-8")
    images = pictures(page)
    assert len(images) == 2 and all(image.format == "PNG" and image.width >= 300 for image in images)  # matrix, bars
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "&lt;b&gt;wet&lt;/b&gt; &amp; dry" in page and "<b>wet</b>" not in page
    assert "&lt;mixes&gt;" in page
    assert "Overall accuracy <b>0.700</b>" in page and "cross-validation (2-fold by feature)" in page
    for parameter in ("INPUT", "CV", "EXTENT", "SK_PARAM"):
        assert f'<td class="t">{parameter}</td>' in page
    assert "0.750" in page and "\u2013" in page  # a precision, and an undefined one
    assert "75.0 %" in page  # share of the map


def test_a_regression_report_plots_predicted_against_observed(tmp_path):
    metrics = {"pixels": 4, "r2": 0.9, "rmse": 0.3536, "mae": 0.25}
    report = classification_report(task="regression", classes=[], importances=None, prediction={},
                                   training={"layer": "t.gpkg", "label_field": "height", "features_used": 4,
                                             "pixels": 4, "dropped": {},
                                             "target_summary": {"min": 1, "max": 4, "mean": 2.5, "std": 1.1}},
                                   validation={"cv": "kfold", "description": "2-fold over pixels", "folds_count": 2,
                                               "folds": [], "overall": metrics, "observed": [1, 2, 3, 4],
                                               "predicted": [1.5, 2, 2.5, 4]})
    page = render_report(report)
    assert "R\u00b2 <b>0.900</b>" in page and "RMSE <b>0.354</b>" in page
    assert len(pictures(page)) == 1 and "Predicted against observed" in page


@pytest.mark.parametrize("changes, text", [
    ({"validation": None, "training": None, "model_source": "loaded", "model_file": "/m/x.iamapmodel"},
     "Model applied from /m/x.iamapmodel"),
    ({"validation": None}, "Not validated: CV = none and no test layer"),
    ({"test": {"layer": "test (/data/test.gpkg)", "features_used": 3, "pixels": 10, "dropped": {},
               "metrics": CLASSIFICATION_METRICS}}, "from the independent test layer test (/data/test.gpkg)"),
])
def test_the_summary_says_where_the_figures_come_from(changes, text):
    report = {k: v for k, v in {**classification_report(), **changes}.items() if v is not None}
    assert text in render_report(report)


def test_a_failed_write_leaves_nothing_under_the_final_name(tmp_path, monkeypatch):
    def refuse(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_report(tmp_path / "report.html", classification_report())
    assert list(tmp_path.iterdir()) == []

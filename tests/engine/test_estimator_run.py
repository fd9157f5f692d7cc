"""The parameters shared by the estimator tools: TRUST_MODEL and SAVE_MODEL checked before any work."""

from __future__ import annotations

import pytest

from engine.errors import ParameterError
from engine.estimator_run import estimator_params
from engine.events import Reporter
from engine.reduction import run_reduction

from ..fixtures import regions_raster


@pytest.mark.parametrize("value, expected", [(None, False), (False, False), (True, True), ("true", True),
                                             ("false", False), ("0", False), ("1", True)])
def test_trust_model_is_false_unless_explicitly_set(value, expected):
    params = estimator_params({"INPUT": "x.tif", "OUTPUT": "y.tif", "TRUST_MODEL": value}, "cluster")
    assert params.TRUST_MODEL is expected


def test_a_save_model_name_that_is_no_model_file_is_refused_before_the_fit(tmp_path):
    raster, _ = regions_raster(tmp_path / "f.tif", 16, 16, bands=3)
    reporter = Reporter()
    with pytest.raises(ParameterError, match=r"SAVE_MODEL: m.joblib: give a file name ending in \.iamapmodel"):
        run_reduction({"INPUT": str(raster), "OUTPUT": str(tmp_path / "r.tif"),
                       "SAVE_MODEL": str(tmp_path / "m.joblib")}, reporter)
    assert not any("Fitting" in e.get("message", "") for e in reporter.events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.tif"]

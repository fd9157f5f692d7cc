"""Labels as class codes: whole numbers keep their value, text gets 1, 2, 3... in order, decimals and text are
refused where the estimator cannot take them, and the class raster's type is the smallest that fits."""

from __future__ import annotations

import numpy as np
import pytest

from engine.class_codes import ClassCodes, regression_targets
from engine.errors import ParameterError


def test_text_labels_get_codes_in_sorted_order_and_unknown_labels_a_code_of_no_class():
    classes = ClassCodes.from_labels(np.array(["water", "forest", " town", "forest"], object), "RF")
    assert classes.codes == (1, 2, 3) and classes.names == ("forest", "town", "water")
    assert classes.encode(np.array(["town", "water", "desert"], object)).tolist() == [2, 3, classes.missing]
    assert classes.missing not in classes.codes and classes.raster_type == ("uint8", 255)


@pytest.mark.parametrize("labels", [np.array([10, 20, 20, 300]), np.array([10.0, 20.0, 300.0]),
                                    np.array(["10", "20", "300"], object)])
def test_whole_numbers_keep_their_value_whatever_their_type(labels):
    classes = ClassCodes.from_labels(labels, "RF")
    assert classes.codes == (10, 20, 300) and classes.names == ("10", "20", "300")
    assert classes.encode(np.array([20, "300", 10.0], object)).tolist() == [20, 300, 10]
    assert classes.raster_type == ("uint16", 65535)


@pytest.mark.parametrize("codes, expected", [
    ((1, 2), ("uint8", 255)), ((0, 254), ("uint8", 255)), ((0, 255), ("uint16", 65535)),
    ((-1, 3), ("int16", -32768)), ((1, 70000), ("int32", -2147483648)),
])
def test_the_class_raster_type_is_the_smallest_holding_codes_and_nodata(codes, expected):
    assert ClassCodes(codes, tuple(map(str, codes))).raster_type == expected


def test_decimal_labels_are_refused_for_a_classifier_and_text_for_a_regressor():
    with pytest.raises(ParameterError, match=r"GT_COL: holds decimal numbers \(such as 0.5\), and SVC is a "
                                             "classifier"):
        ClassCodes.from_labels(np.array([1.0, 0.5]), "SVC")
    with pytest.raises(ParameterError, match=r"GT_COL: holds text \('forest'\), and SVR is a regressor"):
        regression_targets(np.array([1.0, "forest"], object), "SVR")
    assert regression_targets(np.array(["1.5", 2]), "SVR").tolist() == [1.5, 2.0]


def test_codes_survive_the_model_record():
    classes = ClassCodes.from_labels(np.array(["b", "a"], object), "RF")
    assert ClassCodes.from_dict(classes.as_dict()) == classes

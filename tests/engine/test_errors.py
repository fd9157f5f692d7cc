"""The one exceptions module: user errors carry the parameter they are about."""

from __future__ import annotations

from engine.errors import EnvironmentProblem, IamapError, ModelLoadError, ParameterError


def test_a_parameter_error_names_its_parameter_first():
    error = ParameterError("STRIDE", "100 px does not fall on the feature grid.")
    assert str(error) == "STRIDE: 100 px does not fall on the feature grid." and error.parameter == "STRIDE"


def test_every_user_error_is_an_iamap_error():
    for cls in (ParameterError, ModelLoadError, EnvironmentProblem):
        assert issubclass(cls, IamapError)

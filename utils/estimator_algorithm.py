"""Base class of the tools that fit a scikit-learn estimator on a pixel sample (reduction, cluster): what
their QGIS side shares besides the contract's parameters."""

from __future__ import annotations

from .algorithm import IamapAlgorithm


class EstimatorAlgorithm(IamapAlgorithm):
    """Runs the engine with the contract's parameters; subclasses style the output and pick their figures."""

    def fit_and_apply(self, parameters, context, feedback) -> tuple[dict, dict]:
        """Run the tool; returns (the engine's outputs, the algorithm's file outputs)."""
        params = self.engine_parameters(parameters, context, feedback)
        outputs = self.run_engine(params, feedback)
        files = {"OUTPUT": outputs["OUTPUT"]}
        if params["SAVE_MODEL"]:
            files["SAVE_MODEL"] = params["SAVE_MODEL"]
        return outputs, files

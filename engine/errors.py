"""The one exceptions module of the engine.

Every error a user can cause is an :class:`IamapError`; its message is shown verbatim in QGIS, so it names
the parameter at fault and says how to fix it. Anything else reaching the worker's top level is a bug and
is reported with its traceback.
"""

from __future__ import annotations


class IamapError(Exception):
    """An error caused by the input or the environment, with a message meant for the user."""


class ParameterError(IamapError):
    """A parameter value is invalid.

    Parameters
    ----------
    parameter : str
        The algorithm parameter id (``"STRIDE"``, ``"SK_PARAM"`` ...), named in the message.
    message : str
        What is wrong and how to fix it.
    """

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class ModelLoadError(IamapError):
    """A backbone, its weights or a checkpoint could not be loaded."""


class EnvironmentProblem(IamapError):
    """The worker environment is missing, incomplete or broken."""

"""The graphical models shipped in the plugin's ``models`` folder, listed under the Processing toolbox's "Models".

QGIS 3.22's model provider (Processing's ``ModelerAlgorithmProvider``) loads every ``.model3`` under the folders of
Processing's ``MODELS_FOLDER`` setting, a ``;``-separated list kept in ``Processing/Configuration/MODELS_FOLDER``.
The plugin's folder is appended to that list while the plugin is loaded and taken out when it unloads. Appended,
never put first: the model designer saves new models in the first folder, which must stay the user's.
"""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SETTING = "MODELS_FOLDER"
SETTINGS_KEY = f"Processing/Configuration/{SETTING}"
MODEL_PROVIDER = "model"


def _same_folder(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _processing_config():
    """Processing's settings registry, or None where Processing is not there (a bare PyQGIS script)."""
    try:
        # deferred: QGIS's processing plugin is importable once QGIS has loaded it
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return None
    return ProcessingConfig


def models_folders() -> list[str]:
    """The folders the model provider reads, as Processing sees them now."""
    config = _processing_config()
    value = None
    if config is not None and SETTING in config.settings:  # the model provider has loaded
        value = config.getSetting(SETTING)
    if not value:
        value = QgsSettings().value(SETTINGS_KEY, None)
    if not value:  # never set: the provider's own default, which must stay first
        value = _default_folder()
    return [folder for folder in str(value).split(";") if folder]


def _default_folder() -> str:
    try:
        # deferred: QGIS's processing plugin is importable once QGIS has loaded it
        from processing.modeler.ModelerUtils import ModelerUtils
    except ImportError:
        return ""
    return ModelerUtils.defaultModelsFolder()


def _set_models_folders(folders: list[str]) -> None:
    value = ";".join(folders) or _default_folder()
    config = _processing_config()
    if config is not None and SETTING in config.settings:
        # the value the provider reads, saved to QgsSettings too (not through setSettingValue, whose check
        # refuses the whole list when one of the user's folders has gone)
        config.settings[SETTING].value = value
        config.settings[SETTING].save()
    else:  # the model provider reads QgsSettings when it loads later
        QgsSettings().setValue(SETTINGS_KEY, value)
    provider = QgsApplication.processingRegistry().providerById(MODEL_PROVIDER)
    if provider is not None:
        provider.refreshAlgorithms()


def add_models_folder() -> None:
    """Append the plugin's models folder to Processing's models folders (once) and reload the models."""
    folders = models_folders()
    if not any(_same_folder(folder, str(MODELS_DIR)) for folder in folders):
        folders.append(str(MODELS_DIR))
    _set_models_folders(folders)


def remove_models_folder() -> None:
    """Take the plugin's models folder out of Processing's models folders and reload the models."""
    folders = [folder for folder in models_folders() if not _same_folder(folder, str(MODELS_DIR))]
    _set_models_folders(folders)

"""QGIS entry point of the IAMAP plugin (the repository root is the plugin folder)."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS's entry point: the plugin object for ``iface``."""
    # deferred: QGIS imports the plugin module when it asks for the plugin
    from .iamap import IamapPlugin

    return IamapPlugin(iface)

"""The plugin object QGIS creates: registers the Processing provider and, in the desktop, its menu."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import IamapProvider


class IamapPlugin:
    """Loaded by QGIS through :func:`classFactory`.

    ``iface`` is None under ``qgis_process`` and PyQGIS scripts, where only :meth:`initProcessing` runs.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider: IamapProvider | None = None
        self.actions = []

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        if self.provider is None:
            self.provider = IamapProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtWidgets import QAction

        action = QAction(self.provider.icon(), "IAMAP diagnostics…", self.iface.mainWindow())
        action.triggered.connect(self._open_diagnostics)
        self.iface.addPluginToMenu("&IAMAP", action)
        self.actions.append(action)

    def _open_diagnostics(self):
        import processing

        processing.execAlgorithmDialog("iamap:diagnostics", {})

    def unload(self):
        if self.iface is not None:
            for action in self.actions:
                self.iface.removePluginMenu("&IAMAP", action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

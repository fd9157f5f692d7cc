"""The plugin object QGIS creates: registers the Processing provider and its graphical models (models/) and, in
the desktop, the Plugins > IAMAP menu and the offer to install the worker environment when it is missing."""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsSettings
from qgis.PyQt.QtCore import QTimer, QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QAction, QPushButton

from .engine.host.status import check_environment
from .provider import IamapProvider
from .utils.algorithm import plugin_icon
from .utils.shipped_models import add_models_folder, remove_models_folder

PLUGIN_DIR = Path(__file__).resolve().parent
MENU = "&IAMAP"
SAMPLE_RASTER = PLUGIN_DIR / "docs" / "sample" / "sample_rgb.tif"
SAMPLE_POINTS = PLUGIN_DIR / "docs" / "sample" / "river_points.geojson"


class IamapPlugin:
    """Loaded by QGIS through :func:`classFactory`.

    ``iface`` is None under ``qgis_process`` and PyQGIS scripts, where only :meth:`initProcessing` runs: no
    dialog, no menu; the algorithms are registered either way and say how to install when the environment is
    missing.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider: IamapProvider | None = None
        self.actions = []
        self.install_dialog = None
        self.message_item = None
        self.explorer = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        if self.provider is None:
            self.provider = IamapProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)
            # after the provider, so that the models find their IAMAP algorithms when they are reloaded
            add_models_folder()

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return

        for text, slot in (("Install / repair environment\u2026", self.show_install_dialog),
                           ("Diagnostics\u2026", self._open_diagnostics), ("Documentation", self._open_documentation),
                           ("Sample data", self._load_sample_data)):
            self._add_action(text, slot)
        explorer = self._add_action("Similarity explorer (click on a feature raster)\u2026", self.show_explorer)
        explorer.setIcon(plugin_icon("similarity"))
        self.iface.addToolBarIcon(explorer)
        for action in self.iface.pluginMenu().actions():  # the IAMAP submenu that addPluginToMenu made
            if action.text() == MENU:
                action.setIcon(plugin_icon("iamap"))
        # never during start-up: once the main window is shown (at once when the plugin is enabled later)
        if self.iface.mainWindow().isVisible():
            QTimer.singleShot(0, self._offer_install)
        else:
            self.iface.initializationCompleted.connect(self._offer_install)

    def _add_action(self, text, slot):
        action = QAction(self.provider.icon(), text, self.iface.mainWindow())
        action.triggered.connect(slot)
        self.iface.addPluginToMenu(MENU, action)
        self.actions.append(action)
        return action

    def show_explorer(self):
        """Open the similarity explorer (panel and map tool) on the active raster layer."""
        if self.explorer is None:
            # deferred: desktop only; qgis_process never loads the explorer's widgets
            from .utils.similarity_explorer import SimilarityExplorer

            self.explorer = SimilarityExplorer(self.iface)
        self.explorer.open()

    def _offer_install(self):
        # deferred: desktop only; qgis_process never loads the dialog's widgets
        from .utils.install_dialog import DONT_SHOW_KEY

        status = check_environment()
        if status.complete:
            return
        if QgsSettings().value(DONT_SHOW_KEY, False, type=bool):
            QgsMessageLog.logMessage(f"{status.problem} Plugins > IAMAP > Install / repair environment installs it.",
                                     "IAMAP", Qgis.MessageLevel.Warning)
            return
        self.show_install_dialog()

    def show_install_dialog(self):
        """Open the (non-modal) install dialog, or bring back the one already open, install running or not."""
        if self.install_dialog is None:
            # deferred: desktop only; qgis_process never loads the dialog's widgets
            from .utils.install_dialog import InstallDialog

            self.install_dialog = InstallDialog(self.iface.mainWindow(), settings=QgsSettings())
            self.install_dialog.declined.connect(self._offer_install_later)
            self.install_dialog.finished_install.connect(self._install_finished)
        else:
            self.install_dialog.refresh()
        self._clear_message()
        self.install_dialog.show()
        self.install_dialog.raise_()
        self.install_dialog.activateWindow()

    def _offer_install_later(self):
        """After "Not now": a message bar with an Install button, until the user closes it."""
        self._clear_message()
        bar = self.iface.messageBar()
        item = bar.createMessage("IAMAP", "Its Python environment is not ready: the IAMAP tools need it.")
        button = QPushButton("Install\u2026")
        button.clicked.connect(self.show_install_dialog)
        item.layout().addWidget(button)
        self.message_item = bar.pushWidget(item, Qgis.MessageLevel.Info, 0)

    def _install_finished(self, ok, message):
        if self.install_dialog is not None and not self.install_dialog.isVisible():
            level = Qgis.MessageLevel.Success if ok else Qgis.MessageLevel.Warning
            self.iface.messageBar().pushMessage("IAMAP", message, level, 0)

    def _clear_message(self):
        if self.message_item is not None:
            try:
                self.iface.messageBar().popWidget(self.message_item)
            except RuntimeError:  # already closed by the user (the C++ item is gone)
                pass
            self.message_item = None

    def _open_diagnostics(self):
        # deferred: QGIS's processing plugin is importable once QGIS has loaded it
        import processing

        processing.execAlgorithmDialog("iamap:diagnostics", {})

    def _open_documentation(self):
        readme = PLUGIN_DIR / "README.md"
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(readme))):  # no program for .md files here
            self.iface.messageBar().pushMessage("IAMAP", f"The documentation is {readme}; each tool's help is in its "
                                                         "Processing dialog.", Qgis.MessageLevel.Info, 0)

    def _load_sample_data(self):
        """Add the bundled sample raster and reference points to the project, ready for the IAMAP tools."""
        raster = self.iface.addRasterLayer(str(SAMPLE_RASTER), "IAMAP sample (RGB)")
        points = self.iface.addVectorLayer(str(SAMPLE_POINTS), "IAMAP sample river points", "ogr")
        if raster is None or points is None:
            self.iface.messageBar().pushMessage("IAMAP", f"Cannot load the sample data from {SAMPLE_RASTER.parent}.",
                                                Qgis.MessageLevel.Warning, 10)
            return
        self.iface.messageBar().pushMessage(
            "IAMAP", "Sample data loaded: try Processing Toolbox > IAMAP > Encoder on it, then Similarity with the "
                     "river points.", Qgis.MessageLevel.Info, 15)

    def unload(self):
        if self.install_dialog is not None:
            if self.install_dialog.run is not None:
                self.install_dialog.run.cancel()  # no pip left running on behalf of a plugin that is gone
            self.install_dialog.close()
            self.install_dialog.deleteLater()
            self.install_dialog = None
        if self.explorer is not None:
            self.explorer.unload()  # ends its worker
            self.explorer = None
        if self.iface is not None:
            self._clear_message()
            try:
                self.iface.initializationCompleted.disconnect(self._offer_install)
            except TypeError:  # never connected (enabled after start-up) or already fired and disconnected
                pass
            for action in self.actions:
                self.iface.removePluginMenu(MENU, action)
                self.iface.removeToolBarIcon(action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
            remove_models_folder()

"""The install dialog's widgets: its title, buttons, the plan page and the install page, and the label helpers.

Built by :class:`InstallDialogWidgets`, which :class:`utils.install_dialog.InstallDialog` derives from; what the
widgets do is the dialog's. Only qgis, Qt and the standard library here.
"""

from __future__ import annotations

import html

from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QFont, QFontDatabase
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)

from ..engine.host.torch_build import BUILDS

#: QgsSettings key: True once the user ticked "Don't show this at start-up again".
DONT_SHOW_KEY = "iamap/install_dialog/dont_show_at_startup"
#: What each requirement is for, shown beside it (a requirement missing here is shown without).
PURPOSES = {"torch": "deep-learning engine", "torchvision": "image models and transforms",
            "timm": "vision transformers (the encoder's backbones)", "torchgeo": "remote-sensing weights (SSL4EO-S12)",
            "rasterio": "raster reading and writing, with its own GDAL", "geopandas": "reference vectors (similarity)",
            "scikit-learn": "PCA, KMeans and the other estimators", "umap-learn": "UMAP reduction",
            "hdbscan": "HDBSCAN clustering", "numba": "the compiled neighbour search of UMAP and HDBSCAN",
            "skops": "model files that cannot run code", "numpy": "arrays",
            "pandas": "tables", "safetensors": "weight files that cannot run code",
            "huggingface_hub": "pretrained weights from the Hugging Face hub", "requests": "downloads",
            "matplotlib": "the pictures of the ml report", "dask": "running on a cluster (Scheduler)",
            "distributed": "the Dask client of a cluster run", "openvino": "the encoder's faster CPU runtime"}
#: Package rows the list keeps when the dialog is made small (it scrolls then); it opens showing them all.
SMALLEST_LIST_ROWS = 5


class InstallDialogWidgets:
    """The widgets of the install dialog (a mixin of the QDialog: ``self`` is the dialog)."""

    def _build_widgets(self) -> None:
        self.title = QLabel()
        self.title.setFont(bigger(self.title.font(), 3, bold=True))
        self.status_label = wrapping_label()
        self.pages = QStackedWidget()
        self.pages.addWidget(self._plan_page())
        self.pages.addWidget(self._run_page())
        self.dont_show_box = QCheckBox("Don't show this at start-up again")
        if self.settings is not None:
            self.dont_show_box.setChecked(self.settings.value(DONT_SHOW_KEY, False, type=bool))
            self.dont_show_box.toggled.connect(lambda on: self.settings.setValue(DONT_SHOW_KEY, on))
        self.not_now_button = QPushButton("Not now")
        self.install_button = QPushButton("Install")
        self.install_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel install")
        self.copy_button = QPushButton("Copy details")
        self.back_button = QPushButton("Back")
        self.close_button = QPushButton("Close")
        self.not_now_button.clicked.connect(self._not_now)
        self.install_button.clicked.connect(self.start_install)
        self.cancel_button.clicked.connect(self.cancel_install)
        self.copy_button.clicked.connect(self.copy_details)
        self.back_button.clicked.connect(self.refresh)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.dont_show_box)
        buttons.addStretch()
        for button in (self.copy_button, self.back_button, self.not_now_button, self.cancel_button,
                       self.install_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.status_label)
        layout.addWidget(self.pages, 1)
        layout.addLayout(buttons)

    def _plan_page(self) -> QWidget:
        page = QWidget()
        intro = wrapping_label("IAMAP runs its deep-learning tools in a Python environment of its own, so QGIS's "
                                "Python is never changed. It is built once, in the background: QGIS stays usable, "
                                "and no restart is needed afterwards.")
        self.build_combo = QComboBox()
        for build in BUILDS:
            self.build_combo.addItem(build.label, build.name)
        self.build_combo.currentIndexChanged.connect(self._build_changed)
        self.build_reason = wrapping_label()
        self.package_list = QTreeWidget()
        self.package_list.setHeaderLabels(["Package", "Version", "For"])
        self.package_list.setRootIsDecorated(False)
        self.package_list.setColumnWidth(0, 150)
        self.package_list.setColumnWidth(1, 140)
        self.dependencies_label = wrapping_label()
        self.download_label = wrapping_label()
        self.disk_label = wrapping_label()
        self.command_label = wrapping_label()
        for label in (self.download_label, self.disk_label, self.command_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("PyTorch build:", self.build_combo)
        form.addRow("", self.build_reason)
        form.addRow("Will be installed:", self.package_list)
        form.addRow("", self.dependencies_label)
        form.addRow("Download:", self.download_label)
        form.addRow("Disk:", self.disk_label)
        form.addRow("From a terminal:", self.command_label)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(intro)
        layout.addLayout(form)
        return page

    def _run_page(self) -> QWidget:
        page = QWidget()
        self.stage_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.result_label = wrapping_label()
        self.self_test_view = wrapping_label()
        self.relevant_view = QPlainTextEdit()
        self.relevant_view.setReadOnly(True)
        self.relevant_view.setMaximumHeight(150)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_view.setMinimumHeight(220)
        # follow the end of the log unless the user scrolls up to read (scrolling back down follows again)
        self._follow_log = True
        scroll_bar = self.log_view.verticalScrollBar()
        scroll_bar.actionTriggered.connect(lambda _action: setattr(self, "_follow_log", False))
        scroll_bar.valueChanged.connect(
            lambda value: value == scroll_bar.maximum() and setattr(self, "_follow_log", True))
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.stage_label, self.progress_bar, self.result_label, self.self_test_view,
                       self.relevant_view):
            layout.addWidget(widget)
        layout.addWidget(QLabel("Log:"))
        layout.addWidget(self.log_view, 1)
        return page


class FittedLayout:
    """Keeps the dialog's widgets from being drawn over each other (a mixin of the dialog, like
    :class:`InstallDialogWidgets`).

    A window manager on X11 does not ask a dialog how high its wrapped labels need to be at its width, so a
    dialog made (or opened) too small squeezed them and Qt drew rows over one another. Each wrapped label's
    height is therefore its text's height at its current width, updated on every resize, which makes the
    dialog's minimum height the real one; the package list shrinks to a few rows and scrolls instead.
    """

    def fit_layout(self) -> None:
        """Give each wrapped label the height of its text, then open tall enough to list every package."""
        if not self.isVisible():
            return
        rows = self.package_list
        row = rows.sizeHintForRow(0) if rows.topLevelItemCount() else 18
        rows.setMinimumHeight(rows.header().height() + SMALLEST_LIST_ROWS * row + 2 * rows.frameWidth())
        screen = self.screen().availableGeometry().height() - 60
        for _ in range(3):  # the labels' heights follow the new size: settle it
            self.layout().activate()
            self._hold_wrapped_text()
            self.layout().activate()
            missing = rows.topLevelItemCount() * row - rows.viewport().height()
            if self.pages.currentIndex() != 0 or missing <= 0 or self.height() >= screen:
                break
            self.resize(self.width(), min(self.height() + missing, screen))

    def showEvent(self, event):  # noqa: N802 (Qt's name)
        super().showEvent(event)
        QTimer.singleShot(0, self.fit_layout)

    def resizeEvent(self, event):  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._hold_wrapped_text()

    def _hold_wrapped_text(self) -> None:
        """Each wrapped label exactly as high as its text at its current width (its size hint guesses a narrower
        width, hence rows taller than their text)."""
        for label in self.findChildren(QLabel):
            if label.wordWrap():
                label.setFixedHeight(label.heightForWidth(label.width()) if label.text() else 0)


def escape(text) -> str:
    """Text for a rich-text label (quotes left as they are: Qt shows ``&#x27;`` literally in some places)."""
    return html.escape(str(text), quote=False)


def wrapping_label(text: str = "") -> QLabel:
    """A label that wraps its rich text."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def bigger(font: QFont, points: int, bold: bool = False) -> QFont:
    """``font`` ``points`` larger (and bold)."""
    font.setPointSize(font.pointSize() + points)
    font.setBold(bold)
    return font

"""A choice box that shows readable names while the parameter's value stays its key (``BACKBONE``: "DINOv2
ViT-S/14 with registers..." in the dialog, ``vit_small_patch14_reg4_dinov2.lvd142m`` in scripts, ``qgis_process``
and saved models).

QGIS 3.22's enum parameter shows its option strings themselves; a static-string enum keeps the keys as options
(so every key is accepted from scripts and in .model3 files) and this widget wrapper, named in the parameter's
``widget_wrapper`` metadata, only changes what the dialog, the batch dialog and the modeler show. Processing
imports it when a dialog opens, never in ``qgis_process``.
"""

from __future__ import annotations

from processing.gui.wrappers import DIALOG_BATCH, DIALOG_STANDARD, WidgetWrapper
from qgis.core import QgsProcessingParameterEnum, QgsProcessingParameterString
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QComboBox


class LabelledChoiceWrapper(WidgetWrapper):
    """A combo box listing ``labels`` (one per option of the enum parameter), whose value is the option's key."""

    def __init__(self, param, dialog, row=0, col=0, labels=(), **kwargs):
        self.labels = list(labels)
        super().__init__(param, dialog, row, col, **kwargs)

    def createWidget(self, **kwargs):  # noqa: N802 (Processing's name)
        combo = QComboBox()
        options = self.parameterDefinition().options()
        labels = self.labels if len(self.labels) == len(options) else options
        for key, label in zip(options, labels):
            combo.addItem(label, key)
            combo.setItemData(combo.count() - 1, key, Qt.ItemDataRole.ToolTipRole)  # the key scripts use
        if self.dialogType not in (DIALOG_STANDARD, DIALOG_BATCH):  # the modeler: model inputs too
            for value in self.dialog.getAvailableValuesOfType([QgsProcessingParameterEnum,
                                                                QgsProcessingParameterString]):
                combo.addItem(self.dialog.resolveValueDescription(value), value)
        combo.currentIndexChanged.connect(lambda: self.widgetValueHasChanged.emit(self))
        return combo

    def setValue(self, value):  # noqa: N802
        if value is not None:
            self.setComboValue(value)

    def value(self):
        return self.comboValue()

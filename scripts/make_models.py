"""Make the graphical models shipped in models/ (run with QGIS's Python: ``/usr/bin/python3 scripts/make_models.py
[FOLDER]``, FOLDER default models/).

The .model3 files are committed; this script is how they are made, so that a change of a tool's parameters is a
re-run rather than an edit of XML by hand. The models are built with PyQGIS's model API with the plugin and
Processing loaded, so every child algorithm and parameter is checked against the real tools, and written in the
format of the QGIS that runs the script (3.22, the oldest QGIS the plugin supports, reads its own files and newer
ones read them too).

Each model keeps the tools' defaults except what its inputs expose: the raster, the backbone, and whether to
use the pretrained weights (on by default: a user wants them; the tests switch them off, having no network).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Qt writes XML attributes in hash order: a fixed seed gives the same file from the same model (a clean diff)
os.environ["QT_HASH_SEED"] = "0"
REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "models"
GROUP = "IAMAP"


def start_qgis():
    """QGIS, Processing and the plugin (as ``iamap``: the folder name QGIS gives it) loaded in this process."""
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    plugins = Path(tempfile.mkdtemp(prefix="iamap-plugins-"))
    (plugins / "iamap").symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(plugins))
    from processing.core.Processing import Processing

    Processing.initialize()
    import iamap

    plugin = iamap.classFactory(None)
    plugin.initProcessing()
    return app, plugin


class ModelBuilder:
    """A :class:`QgsProcessingModelAlgorithm` filled in order: inputs, then children left to right."""

    def __init__(self, name: str, description: str):
        from qgis.core import QgsProcessingModelAlgorithm

        self.model = QgsProcessingModelAlgorithm(name, GROUP, GROUP)
        self.help = {"ALG_DESC": description, "ALG_CREATOR": "IAMAP developers",
                     "ALG_HELP_CREATOR": "IAMAP developers"}
        self.inputs = 0
        self.children = 0

    def add_input(self, definition, help_text: str):
        from qgis.core import QgsProcessingModelParameter
        from qgis.PyQt.QtCore import QPointF

        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120, 60 + 90 * self.inputs))
        definition.setHelp(help_text)
        self.model.addModelParameter(definition, component)
        self.help[definition.name()] = help_text
        self.inputs += 1

    def input_from_contract(self, tool: str, parameter: str, name: str, help_text: str):
        """A model input with the same widget, choices and default as ``tool``'s ``parameter``."""
        from iamap.engine.contract import TOOLS
        from iamap.utils.parameters import qgis_parameter

        definition = qgis_parameter(TOOLS[tool][parameter])
        definition.setName(name)
        definition.setFlags(definition.flags() & ~definition.FlagAdvanced)
        self.add_input(definition, help_text)

    def add_child(self, child_id: str, algorithm: str, description: str, sources: dict, outputs: dict):
        """``sources``: parameter -> ``("input", name)``, ``("child", child_id, output)`` or a static value.
        ``outputs``: model output name -> (the child's output, its description)."""
        from qgis.core import QgsApplication, QgsProcessingModelChildAlgorithm
        from qgis.core import QgsProcessingModelChildParameterSource as Source
        from qgis.core import QgsProcessingModelOutput
        from qgis.PyQt.QtCore import QPointF

        if QgsApplication.processingRegistry().algorithmById(algorithm) is None:
            raise SystemExit(f"{algorithm} is not registered: the plugin did not load")
        child = QgsProcessingModelChildAlgorithm(algorithm)
        child.setChildId(child_id)
        child.setDescription(description)
        x = 420 + 300 * self.children
        child.setPosition(QPointF(x, 160))
        for name, source in sources.items():
            if isinstance(source, tuple) and source[0] == "input":
                made = Source.fromModelParameter(source[1])
            elif isinstance(source, tuple) and source[0] == "child":
                made = Source.fromChildOutput(source[1], source[2])
            else:
                made = Source.fromStaticValue(source)
            child.addParameterSources(name, [made])
        # the tool's default for every other mandatory parameter, as the modeler stores it when a child is added
        definitions = QgsApplication.processingRegistry().algorithmById(algorithm).parameterDefinitions()
        for definition in definitions:
            mandatory = not definition.flags() & definition.FlagOptional
            if mandatory and not definition.isDestination() and definition.name() not in sources:
                child.addParameterSources(definition.name(), [Source.fromStaticValue(definition.defaultValue())])
        model_outputs = {}
        for index, (name, (child_output, output_description)) in enumerate(outputs.items()):
            output = QgsProcessingModelOutput(name, output_description)
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            output.setPosition(QPointF(x + 40, 280 + 70 * index))
            model_outputs[name] = output
        child.setModelOutputs(model_outputs)
        self.model.addChildAlgorithm(child)
        self.children += 1

    def save(self, path: Path) -> Path:
        from qgis.core import QgsProcessingModelAlgorithm

        self.model.setHelpContent(self.help)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.model.toFile(str(path)):
            raise SystemExit(f"cannot write {path}")
        loaded = QgsProcessingModelAlgorithm()
        if not loaded.fromFile(str(path)):
            raise SystemExit(f"{path} does not load back")
        for child_id in loaded.childAlgorithms():
            ok, problems = loaded.validateChildAlgorithm(child_id)
            if not ok:
                raise SystemExit(f"{path}: child {child_id}: {'; '.join(problems)}")
        return path


PRETRAINED_HELP = ("Use the backbone's published weights (default; downloaded once, then cached). Off: random "
                   "weights, only for trying the model without a network.")
BACKBONE_HELP = "The model that turns the raster into features (the encoder's Backbone: see its help)."


def encoder_inputs(builder: ModelBuilder) -> None:
    from qgis.core import QgsProcessingParameterBoolean, QgsProcessingParameterRasterLayer

    builder.add_input(QgsProcessingParameterRasterLayer("raster", "Raster"),
                      "The raster to map: any band count, 8/16-bit or float, any CRS.")
    builder.input_from_contract("encoder", "BACKBONE", "backbone", BACKBONE_HELP)
    builder.add_input(QgsProcessingParameterBoolean("pretrained", "Use pretrained weights", True), PRETRAINED_HELP)


def encode_child(builder: ModelBuilder) -> None:
    builder.add_child("encode", "iamap:encoder", "Encode the raster into features",
                      {"INPUT": ("input", "raster"), "BACKBONE": ("input", "backbone"),
                       "PRETRAINED": ("input", "pretrained")},
                      {"features": ("OUTPUT", "Features")})


def encode_reduce_cluster() -> ModelBuilder:
    from qgis.core import QgsProcessingParameterNumber

    builder = ModelBuilder(
        "Encode, reduce and cluster",
        "Unsupervised map of a raster in one run: the encoder turns it into features, PCA reduces them to a few "
        "components (the first three shown as RGB), and KMeans groups the reduced pixels into clusters. Each step "
        "is the IAMAP tool of the same name with its defaults; open the model in the modeler to change them.")
    encoder_inputs(builder)
    components = QgsProcessingParameterNumber("n_components", "Number of PCA components",
                                              QgsProcessingParameterNumber.Integer, 8, False, 1)
    builder.add_input(components, "Bands of the reduced raster, which the clustering works on (default "
                               f"{components.defaultValue()}).")
    clusters = QgsProcessingParameterNumber("n_clusters", "Number of clusters", QgsProcessingParameterNumber.Integer,
                                            6, False, 2)
    builder.add_input(clusters, f"Number of KMeans clusters (default {clusters.defaultValue()}).")
    encode_child(builder)
    builder.add_child("reduce", "iamap:reduction", "Reduce the features (PCA)",
                      {"INPUT": ("child", "encode", "OUTPUT"), "METHOD": "PCA",
                       "N_COMPONENTS": ("input", "n_components")},
                      {"reduced": ("OUTPUT", "Reduced features (PCA)")})
    builder.add_child("cluster", "iamap:cluster", "Cluster the reduced features (KMeans)",
                      {"INPUT": ("child", "reduce", "OUTPUT"), "METHOD": "KMeans",
                       "N_CLUSTERS": ("input", "n_clusters")},
                      {"clusters": ("OUTPUT", "Clusters")})
    return builder


def encode_classify() -> ModelBuilder:
    from qgis.core import QgsProcessing, QgsProcessingParameterFeatureSource, QgsProcessingParameterField

    builder = ModelBuilder(
        "Encode and classify",
        "Supervised map of a raster from a few labelled points or polygons: the encoder turns the raster into "
        "features, and a random forest trained on the features under the labelled locations maps every pixel to a "
        "class, validated by 5-fold cross-validation by feature (the HTML report gives the figures and the "
        "confusion matrix). Each step is the IAMAP tool of the same name with its defaults.")
    encoder_inputs(builder)
    builder.add_input(QgsProcessingParameterFeatureSource("training", "Training data (labelled points or polygons)",
                                                          [QgsProcessing.TypeVectorAnyGeometry]),
                      "Points or polygons with a label field, any CRS.")
    builder.add_input(QgsProcessingParameterField("label_field", "Field with the labels", None, "training",
                                                  QgsProcessingParameterField.Any),
                      "Field of the training data holding the class of each feature (names or whole numbers).")
    encode_child(builder)
    builder.add_child("classify", "iamap:ml", "Train a classifier and map the classes",
                      {"INPUT": ("child", "encode", "OUTPUT"), "TEMPLATE": ("input", "training"),
                       "GT_COL": ("input", "label_field")},
                      {"class_map": ("OUTPUT", "Class map"), "report": ("REPORT", "Validation report (HTML)")})
    return builder


MODELS = {"encode_reduce_cluster.model3": encode_reduce_cluster, "encode_classify.model3": encode_classify}


def main(out_dir: Path = MODELS_DIR) -> None:
    app, plugin = start_qgis()
    for file_name, build in MODELS.items():
        print(build().save(out_dir / file_name))
    plugin.unload()
    app.exitQgis()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else MODELS_DIR)  # another folder: to compare with models/

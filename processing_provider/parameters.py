"""Parameters several algorithms share: the patch-record field selectors, the labelled enums, number display."""

from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication

from ..balanced_sampling_plugin.contract import (
    BACKENDS,
    COL_OFF,
    DEFAULT_BACKEND,
    EDGE_MODES,
    IMAGE_PATH,
    MASK_PATH,
    PATCH_SIZE,
    ROW_OFF,
    SAMPLING_METHODS,
)

# Parameter name -> (engine column, label). Defaults are the footprint layer's field names;
# labels are marked for pylupdate5 here and translated when the parameter is created.
RECORD_FIELDS = {
    "IMAGE_PATH_FIELD": (IMAGE_PATH, QT_TRANSLATE_NOOP("parameters", "Image path field")),
    "MASK_PATH_FIELD": (MASK_PATH, QT_TRANSLATE_NOOP("parameters", "Mask path field")),
    "ROW_OFF_FIELD": (ROW_OFF, QT_TRANSLATE_NOOP("parameters", "Row offset field (pixels)")),
    "COL_OFF_FIELD": (COL_OFF, QT_TRANSLATE_NOOP("parameters", "Column offset field (pixels)")),
    "PATCH_SIZE_FIELD": (PATCH_SIZE, QT_TRANSLATE_NOOP("parameters", "Patch size field (pixels)")),
}


def add_record_field_parameters(algorithm, parent: str, needed=tuple(RECORD_FIELDS)) -> None:
    """Add one field selector per record column in ``needed``, advanced, defaulting to the standard names."""
    for name in needed:
        column, label = RECORD_FIELDS[name]
        parameter = QgsProcessingParameterField(
            name, QCoreApplication.translate("parameters", label), defaultValue=column,
            parentLayerParameterName=parent, optional=True)  # empty -> the standard name
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        algorithm.addParameter(parameter)


def record_field_map(algorithm, parameters, context, needed=tuple(RECORD_FIELDS)) -> dict:
    """Engine column -> the layer field the user chose for it."""
    chosen = {}
    for name in needed:
        column = RECORD_FIELDS[name][0]
        chosen[column] = algorithm.parameterAsString(parameters, name, context) or column
    return chosen


# Enum options read like a person wrote them, short enough not to widen the dialog (the help says more);
# the order is the contract's (saved models and qgis_process calls store the index). Marked for pylupdate5
# here, translated when the parameter is made.
SAMPLING_METHOD_LABELS = {
    "rank_max": QT_TRANSLATE_NOOP("parameters", "rank_max — higher of the two ranks (tool default)"),
    "rank_multiply": QT_TRANSLATE_NOOP("parameters", "rank_multiply — product of the two ranks"),
    "rank_add": QT_TRANSLATE_NOOP("parameters", "rank_add — mean of the two ranks"),
    "multiplicative": QT_TRANSLATE_NOOP("parameters", "multiplicative — weight × uniqueness, unranked"),
    "composition_only": QT_TRANSLATE_NOOP("parameters", "composition_only — composition rank"),
    "uniqueness_only": QT_TRANSLATE_NOOP("parameters", "uniqueness_only — uniqueness rank"),
    "class_balanced": QT_TRANSLATE_NOOP("parameters", "class_balanced — lifts rare classes"),
    "target_shares": QT_TRANSLATE_NOOP("parameters", "target_shares — class shares you ask for"),
    "repeat_factor": QT_TRANSLATE_NOOP("parameters", "repeat_factor — LVIS repeat factor"),
    "rare_class_sampling": QT_TRANSLATE_NOOP("parameters", "rare_class_sampling — DAFormer"),
}
#: The QGIS default: the one method that lifts a 1-2 % class well (rank methods stop near 1.5-2x).
DEFAULT_SAMPLING_METHOD = "class_balanced"
BACKEND_LABELS = {
    "hnsw": QT_TRANSLATE_NOOP("parameters", "hnsw — hnswlib, approximate"),
    "faiss": QT_TRANSLATE_NOOP("parameters", "faiss — exact search"),
    "sklearn": QT_TRANSLATE_NOOP("parameters", "sklearn — exact, slowest"),
    "nndescent": QT_TRANSLATE_NOOP("parameters", "nndescent — fastest, re-scored exactly"),
    "torch": QT_TRANSLATE_NOOP("parameters", "torch — exact, on the GPU when there is one"),
}
PRECISION_LABELS = {
    "fp32": QT_TRANSLATE_NOOP("parameters", "fp32 — full precision"),
    "bf16": QT_TRANSLATE_NOOP("parameters", "bf16 — faster where supported"),
    "int8": QT_TRANSLATE_NOOP("parameters", "int8 — quantised, fastest on the CPU"),
    "fp16": QT_TRANSLATE_NOOP("parameters", "fp16 — half precision, for GPUs"),
    "auto": QT_TRANSLATE_NOOP("parameters", "auto — bf16 where the CPU or GPU has it, else fp32 / fp16"),
}
K_SELECTION_LABELS = {
    "elbow": QT_TRANSLATE_NOOP("parameters", "elbow — where the inertia curve bends"),
    "fixed": QT_TRANSLATE_NOOP("parameters", "fixed — the k below"),
}

EDGE_MODE_LABELS = {
    "drop": QT_TRANSLATE_NOOP("parameters", "Drop partial windows"),
    "shift": QT_TRANSLATE_NOOP("parameters", "Shift inward to the edge"),
}


def labelled_enum(name: str, description: str, values, labels: dict, default: str) -> QgsProcessingParameterEnum:
    """An enum over ``values`` (contract order) shown with their translated ``labels``."""
    options = [QCoreApplication.translate("parameters", labels[value]) for value in values]
    return QgsProcessingParameterEnum(name, description, options=options, defaultValue=list(values).index(default))


def sampling_method_parameter(name: str, description: str) -> QgsProcessingParameterEnum:
    """The sampling method: an index into ``SAMPLING_METHODS``, defaulting to :data:`DEFAULT_SAMPLING_METHOD`."""
    return labelled_enum(name, description, SAMPLING_METHODS, SAMPLING_METHOD_LABELS, DEFAULT_SAMPLING_METHOD)


def knn_backend_parameter(name: str, description: str) -> QgsProcessingParameterEnum:
    """The kNN backend choice: an index into ``BACKENDS`` (append-only), defaulting to ``DEFAULT_BACKEND``."""
    return labelled_enum(name, description, BACKENDS, BACKEND_LABELS, DEFAULT_BACKEND)


def edge_mode_parameter(name: str, description: str) -> QgsProcessingParameterEnum:
    """What happens to windows that cross the raster edge: an index into ``EDGE_MODES``, default drop."""
    return labelled_enum(name, description, EDGE_MODES, EDGE_MODE_LABELS, "drop")


def optional_number(algorithm, parameters, name, context):
    """The value of an optional number parameter, or None when it is not set."""
    if parameters.get(name) in (None, ""):
        return None
    return algorithm.parameterAsDouble(parameters, name, context)


def with_decimals(parameter: QgsProcessingParameterNumber, decimals: int) -> QgsProcessingParameterNumber:
    """Show ``decimals`` digits in the dialog's spin box (QGIS shows 6 by default: 1.000000)."""
    parameter.setMetadata({**parameter.metadata(), "widget_wrapper": {"decimals": decimals}})
    return parameter

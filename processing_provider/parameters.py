"""Parameters several algorithms share: the patch-record field selectors and the kNN backend."""

from qgis.core import QgsProcessingParameterDefinition, QgsProcessingParameterEnum, QgsProcessingParameterField
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication

from ..balanced_sampling_plugin.contract import (
    BACKENDS,
    COL_OFF,
    DEFAULT_BACKEND,
    IMAGE_PATH,
    MASK_PATH,
    PATCH_SIZE,
    ROW_OFF,
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


def knn_backend_parameter(name: str, description: str) -> QgsProcessingParameterEnum:
    """The kNN backend choice: an index into ``BACKENDS`` (append-only), defaulting to ``DEFAULT_BACKEND``."""
    return QgsProcessingParameterEnum(name, description, options=list(BACKENDS),
                                      defaultValue=BACKENDS.index(DEFAULT_BACKEND))

"""What every Balanced Sampling algorithm shares: translation, icon, group, instance creation."""

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterBoolean, QgsWkbTypes
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..layers import crs_from, output_fields, table_fields, update_layer_in_place, write_features, write_polygons
from ..styles import style_on_load
from ..utils import icon_path

IN_PLACE = "IN_PLACE"


class BalancedSamplingAlgorithm(QgsProcessingAlgorithm):
    """Base class; subclasses define name, displayName, shortHelpString, initAlgorithm, processAlgorithm."""

    #: File name of the algorithm's icon in resources/icons.
    icon_name = "balanced_sampling.svg"

    def tr(self, string):
        # The class name is the context, as pylupdate5 records it for self.tr() calls.
        return QCoreApplication.translate(type(self).__name__, string)

    def createInstance(self):  # noqa: N802 (QGIS API name)
        return type(self)()

    #: One of "patches", "signals", "weights".
    group_key = "signals"

    def group(self):
        # Literal strings so pylupdate5 finds them; the base class is their context.
        names = {
            "patches": QCoreApplication.translate("BalancedSamplingAlgorithm", "Patch records"),
            "signals": QCoreApplication.translate("BalancedSamplingAlgorithm", "Sampling signals"),
            "weights": QCoreApplication.translate("BalancedSamplingAlgorithm", "Sampler weights"),
        }
        return names[self.group_key]

    def groupId(self):  # noqa: N802 (QGIS API name)
        return self.group_key

    def icon(self):
        return QIcon(icon_path(self.icon_name))

    def helpUrl(self):  # noqa: N802 (QGIS API name)
        return "https://github.com/balanced-sampling/qgis-balanced-sampling#readme"

    def add_in_place_parameter(self) -> None:
        self.addParameter(QgsProcessingParameterBoolean(
            IN_PLACE, QCoreApplication.translate("BalancedSamplingAlgorithm",
                                                 "Update the input layer in place (no new layer)"),
            defaultValue=False))

    def write_output(self, parameters, context, feedback, source, table, styler=None,
                     progress_span=(90.0, 100.0)) -> str:
        """Write the input features plus the table's columns to OUTPUT, or, with IN_PLACE,
        keep the table for :meth:`postProcessAlgorithm` to write into the input layer.

        Returns the output layer id/path (the input layer's id in place).
        """
        if self.parameterAsBool(parameters, IN_PLACE, context):
            layer = self.parameterAsVectorLayer(parameters, "INPUT", context)
            if layer is None:
                raise QgsProcessingException(
                    QCoreApplication.translate("BalancedSamplingAlgorithm",
                                               "In-place update needs a vector layer as input."))
            self._in_place = (layer, table)  # written in the main thread, after the run
            return layer.id()
        fields = output_fields(source.fields(), table)
        sink, dest_id = self.parameterAsSink(parameters, "OUTPUT", context, fields, source.wkbType(),
                                             source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, "OUTPUT"))
        write_features(source, sink, fields, table, feedback, progress_span)
        if styler is not None:
            style_on_load(self, context, dest_id, styler)
        return dest_id

    def write_patch_layer(self, parameters, context, feedback, table, rings, crs_authid, crs_wkt,
                          progress_span=(50.0, 100.0)) -> str:
        """Write a new polygon layer to OUTPUT: one feature per table row, its ring as geometry."""
        fields = table_fields(table)
        sink, dest_id = self.parameterAsSink(parameters, "OUTPUT", context, fields, QgsWkbTypes.Polygon,
                                             crs_from(crs_authid, crs_wkt))
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, "OUTPUT"))
        write_polygons(sink, fields, table, rings, feedback, progress_span)
        return dest_id

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS API name)
        pending = getattr(self, "_in_place", None)
        if pending is not None:
            self._in_place = None
            update_layer_in_place(*pending, feedback)
        return {}

"""What every Balanced Sampling algorithm shares: translation, icon, group, instance creation."""

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterBoolean, QgsWkbTypes
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...balanced_sampling_plugin.file_safety import check_paths
from ...balanced_sampling_plugin.geopackage import update_fields_in_place
from ..file_outputs import (
    destination_file,
    layer_file,
    refuse_truncated_fields,
    rename_layer_to_load,
    sink_definition,
)
from ..layers import crs_from, output_fields, table_fields, update_layer_in_place, write_features, write_polygons
from ..styles import style_on_load
from ..utils import engine_errors, engine_progress, icon_path

IN_PLACE = "IN_PLACE"


def raster_reads(records) -> dict:
    """The rasters a patch table points at, for :meth:`BalancedSamplingAlgorithm.check_paths`."""
    return {QCoreApplication.translate("BalancedSamplingAlgorithm", "a raster of the field {}").format(column):
            records[column].dropna().astype(str).unique() for column in ("image_path", "mask_path")
            if column in records.columns}


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

    def check_paths(self, writes, reads=None) -> None:
        """Refuse, before any work, outputs that would overwrite an input or each other, or cannot be
        written (see :func:`...balanced_sampling_plugin.file_safety.check_paths`); keys name parameters."""
        with engine_errors():
            check_paths(writes, reads)

    def input_file(self, parameters, context, name: str = "INPUT"):
        """The file the vector layer parameter ``name`` reads, or None (database, memory layer)."""
        found = layer_file(self.parameterAsVectorLayer(parameters, name, context))
        return found[0] if found else None

    def output_file(self, parameters, context, name: str = "OUTPUT"):
        """The file the sink parameter ``name`` will write, or None (memory, database, in place, skipped)."""
        if name == "OUTPUT" and IN_PLACE in parameters and self.parameterAsBool(parameters, IN_PLACE, context):
            return None
        return destination_file(self.parameterAsOutputLayer(parameters, name, context))

    def write_output(self, parameters, context, feedback, source, table, outputs, styler=None,
                     progress_span=(90.0, 100.0)) -> str:
        """Write the input features plus the table's columns to OUTPUT (as a partial file of
        ``outputs`` when it is a file), or, with IN_PLACE, into the input layer, all or nothing.

        Returns the output layer id/path (the input layer's id in place).
        """
        if self.parameterAsBool(parameters, IN_PLACE, context):
            layer = self.parameterAsVectorLayer(parameters, "INPUT", context)
            if layer is None:
                raise QgsProcessingException(
                    QCoreApplication.translate("BalancedSamplingAlgorithm",
                                               "In-place update needs a vector layer as input."))
            self.update_in_place(layer, table, feedback, progress_span)
            return layer.id()
        fields = output_fields(source.fields(), table)

        def write(sink):
            write_features(source, sink, fields, table, feedback, progress_span)

        dest_id = self.write_sink(parameters, context, fields, source.wkbType(), source.sourceCrs(), outputs, write)
        if styler is not None:
            style_on_load(self, context, dest_id, styler)
        return dest_id

    def write_patch_layer(self, parameters, context, feedback, table, rings, crs_authid, crs_wkt, outputs,
                          progress_span=(50.0, 100.0)) -> str:
        """Write a new polygon layer to OUTPUT: one feature per table row, its ring as geometry."""
        fields = table_fields(table)

        def write(sink):
            write_polygons(sink, fields, table, rings, feedback, progress_span)

        return self.write_sink(parameters, context, fields, QgsWkbTypes.Polygon, crs_from(crs_authid, crs_wkt),
                               outputs, write)

    def write_sink(self, parameters, context, fields, wkb_type, crs, outputs, write, name: str = "OUTPUT") -> str:
        """Create the sink ``name``, let ``write(sink)`` fill it, and close it; returns its layer id.

        A file destination is written as a partial file of ``outputs`` (renamed into place by
        ``outputs.commit()``), so a failure or a kill never leaves a broken file at the destination.
        """
        final = destination_file(self.parameterAsOutputLayer(parameters, name, context))
        refuse_truncated_fields(final, fields.names(), name)
        if final is None:
            sink, dest_id = self.parameterAsSink(parameters, name, context, fields, wkb_type, crs)
            if sink is None:
                raise QgsProcessingException(self.invalidSinkError(parameters, name))
            write(sink)
            return dest_id
        partial = outputs.partial(final)
        sink, partial_id = self.parameterAsSink({**parameters, name: sink_definition(parameters, name, partial)},
                                                name, context, fields, wkb_type, crs)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, name))
        write(sink)
        del sink  # closes the file: everything is on disk before the rename
        dest_id = partial_id.replace(partial, final)
        rename_layer_to_load(context, partial_id, dest_id)
        return dest_id

    def update_in_place(self, layer, table, feedback, progress_span=(90.0, 100.0)) -> None:
        """Write the table's columns into ``layer``: now, in one transaction, for a GeoPackage; in the main
        thread after the run (:meth:`postProcessAlgorithm`) for a temporary (memory) layer. Other storages
        are refused before anything is written: they cannot be updated all or nothing."""
        name = layer.name()
        if layer.isEditable():
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm",
                "Layer '{}' is in edit mode; save or discard its edits and leave edit mode, then run again.")
                .format(name))
        if layer.providerType() == "memory":
            self._in_place = (layer, table)  # written in the main thread, after the run
            return
        found = layer_file(layer)
        if found is None or not found[0].lower().endswith(".gpkg"):
            where = found[0] if found else layer.source().split("|")[0]
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm",
                "In-place update writes all fields or none, which works for GeoPackage layers and temporary "
                "layers; layer '{}' ({}) is stored as {}. Write a new layer (Output) instead, or save the layer "
                "as a GeoPackage first.").format(name, where, layer.storageType() or layer.providerType()))
        progress = engine_progress(feedback).child(progress_span[0] / 100.0, progress_span[1] / 100.0) \
            if feedback is not None else None
        with engine_errors():
            update_fields_in_place(found[0], table, found[1], progress)
        self._reload_after_run = layer  # its provider must re-read the file: main thread, after the run

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS API name)
        pending = getattr(self, "_in_place", None)
        if pending is not None:
            self._in_place = None
            update_layer_in_place(*pending, feedback)
        layer = getattr(self, "_reload_after_run", None)
        if layer is not None:
            self._reload_after_run = None
            layer.dataProvider().reloadData()
            layer.updateFields()
            layer.triggerRepaint()
        return {}

"""What every Balanced Sampling algorithm shares: translation, icon, group, instance creation."""

import contextlib
import os
import re

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...balanced_sampling_plugin.dependencies import TABLES, missing_packages
from ...balanced_sampling_plugin.file_safety import check_paths, check_replaced_kind
from ..dask_scheduler import DASK_SCHEDULER, scheduler_problem
from ..file_outputs import (
    destination_file,
    layer_file,
    layer_read,
    load_on_completion,
    refuse_raster_ending,
    refuse_replacing_other_layers,
    refuse_truncated_fields,
    sink_definition,
)
from ..layers import crs_from, output_fields, table_fields, update_layer_in_place, write_features, write_polygons
from ..python_packages import install_line
from ..styles import style_on_load
from ..utils import engine_errors, engine_progress, icon_path, raise_if_canceled

IN_PLACE = "IN_PLACE"


def raster_reads(records) -> dict:
    """The rasters a patch table points at, for :meth:`BalancedSamplingAlgorithm.check_paths`.

    The keys are set into the engine's English sentences, so they stay English (like parameter names).
    """
    return {f"raster of the field {column}": records[column].dropna().astype(str).unique()
            for column in ("image_path", "mask_path") if column in records.columns}


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

    @staticmethod
    def with_in_place_help(text: str) -> str:
        """``text`` (a help string) followed by what the in-place option does and where it works."""
        return text + "\n" + QCoreApplication.translate(
            "BalancedSamplingAlgorithm",
            "<b>Update the input layer in place</b>: writes the fields into the input layer instead of a new one, "
            "all or nothing: for GeoPackage layers (one transaction) and temporary layers; other storage, and a layer "
            "in edit mode, is refused before any work. The layer keeps its own style. (QGIS's 'Edit Features "
            "In-Place' mode of the Toolbox is for algorithms that change features one by one, so it does not list "
            "these.)")

    #: Modules (import names) the algorithm needs; see :mod:`...balanced_sampling_plugin.dependencies`.
    required_modules = TABLES

    def modules_needed(self, parameters, context) -> tuple:
        """The modules this run needs (subclasses add those of the chosen options)."""
        return tuple(self.required_modules)

    def missing_packages_message(self, parameters, context):
        """One message naming every package this run needs and Python cannot find, and how to install them;
        None when nothing is missing."""
        missing = missing_packages(self.modules_needed(parameters, context))
        if not missing:
            return None
        return QCoreApplication.translate(
            "BalancedSamplingAlgorithm",
            "{} needs the Python packages {}, which the Python of this QGIS cannot import. Install them from "
            "the menu Plugins > Balanced Sampling > Install Python packages…, or in a terminal:\n{}\n"
            "then restart QGIS.").format(self.displayName(), ", ".join(missing), install_line(missing))

    def require_packages(self, parameters, context) -> None:
        """Refuse to run, before any work, when a needed package is missing (one message for all), or when the
        algorithm's Dask scheduler cannot be used."""
        message = self.missing_packages_message(parameters, context) or self._scheduler_problem(parameters, context)
        if message:
            raise QgsProcessingException(message)

    def _scheduler_problem(self, parameters, context):
        """Why the ``DASK_SCHEDULER`` given cannot be used (text not understood, dask missing), or None; None too
        for an algorithm without that parameter."""
        if self.parameterDefinition(DASK_SCHEDULER) is None:
            return None
        return scheduler_problem(self, parameters, context)

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        message = self.missing_packages_message(parameters, context) or self._scheduler_problem(parameters, context)
        if message:
            return False, message
        # QGIS calls an input file that exists but holds no readable layer "not found"; say what it is.
        for definition in self.parameterDefinitions():
            value = parameters.get(definition.name())
            if definition.type() not in ("source", "vector") or not isinstance(value, str):
                continue
            path = value.split("|")[0]
            if not os.path.isfile(path) or QgsVectorLayer(value, "check", "ogr").isValid():
                continue
            if path != value and QgsVectorLayer(path, "check", "ogr").isValid():
                return False, QCoreApplication.translate(
                    "BalancedSamplingAlgorithm", "{} '{}' has no layer '{}'. Check the layer name.").format(
                    definition.name(), path, value.split("|", 1)[1].replace("layername=", ""))
            return False, QCoreApplication.translate(
                "BalancedSamplingAlgorithm",
                "{} '{}' exists but no layer can be read from it: the file is damaged or unfinished (for "
                "example written by a run that was killed). Create it again.").format(definition.name(), path)
        message = self._number_out_of_range(parameters)
        if message:
            return False, message
        return super().checkParameterValues(parameters, context)

    def _number_out_of_range(self, parameters):
        """QGIS says only "Incorrect parameter value for X" for a number out of range; name the range."""
        for definition in self.parameterDefinitions():
            value = parameters.get(definition.name())
            if definition.type() != "number" or isinstance(value, bool) or value in (None, ""):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue  # an expression or a property: QGIS evaluates and checks it
            low, high = definition.minimum(), definition.maximum()
            has_low, has_high = low > -1e300, high < 1e300
            if (has_low and number < low) or (has_high and number > high):
                if has_low and has_high:
                    limits = QCoreApplication.translate("BalancedSamplingAlgorithm", "between {} and {}").format(
                        f"{low:g}", f"{high:g}")
                elif has_low:
                    limits = QCoreApplication.translate("BalancedSamplingAlgorithm", "at least {}").format(f"{low:g}")
                else:
                    limits = QCoreApplication.translate("BalancedSamplingAlgorithm", "at most {}").format(f"{high:g}")
                return QCoreApplication.translate(
                    "BalancedSamplingAlgorithm", "{} ({}) is {}; it must be {}.").format(
                    definition.name(), definition.description(), f"{number:g}", limits)
        return None

    def check_paths(self, writes, reads=None, writable: bool = True, kinds: bool = True) -> None:
        """Refuse, before any work, outputs that would overwrite an input or each other, or (``writable``)
        cannot be written (see :func:`...balanced_sampling_plugin.file_safety.check_paths`); keys name
        parameters. A second check, once the rasters are known, passes ``writable=False``: the outputs'
        folders were probed by the first. ``kinds``: also refuse a file output that would replace an existing
        file of another kind (off in a first check that a raster check follows, which names that case better)."""
        with engine_errors():
            check_paths(writes, reads, writable)
            for name, path in writes.items() if kinds else ():  # a report over a training CSV, ...
                extensions = self._file_extensions(name)
                if extensions and isinstance(path, str):
                    check_replaced_kind(path, extensions, name)

    def file_output(self, parameters, name, context) -> str:
        """``parameterAsFileOutput``, with the parameter's first file ending added to a name that has none (as
        QGIS adds .gpkg to a layer's): qgis_process and scripts pass names as typed, the dialog adds it. A folder
        is left as it is, for the path checks to refuse by name."""
        path = self.parameterAsFileOutput(parameters, name, context)
        extensions = self._file_extensions(name)
        if path and extensions and not os.path.splitext(os.path.basename(path))[1] and not os.path.isdir(path):
            path += extensions[0]
        return path

    def _file_extensions(self, name) -> tuple:
        """The endings a file destination parameter writes (from its filter, e.g. ``CSV files (*.csv)``); () for
        other parameters and for the embedding cache (its own check reads the file's content)."""
        definition = self.parameterDefinition(name)
        if not isinstance(definition, QgsProcessingParameterFileDestination):
            return ()
        extensions = tuple(dict.fromkeys(e.lower() for e in re.findall(r"\*(\.[A-Za-z0-9_]+)",
                                                                        definition.fileFilter())))
        return () if ".parquet" in extensions else extensions

    def input_file(self, parameters, context, name: str = "INPUT"):
        """What the vector layer parameter ``name`` reads: its file (or its layer of a GeoPackage), or
        None (database, memory layer)."""
        return layer_read(self.parameterAsVectorLayer(parameters, name, context))

    def destination(self, parameters, context, name: str = "OUTPUT") -> str:
        """The sink ``name``'s destination string, as ``parameterAsOutputLayer`` gives it but without its
        side effect (it registers the destination to load when the run ends: a memory destination would
        then be listed twice, once under a name that never exists)."""
        value = parameters.get(name)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = QgsProcessingOutputLayerDefinition(value)
            value.destinationProject = None
        return self.parameterAsOutputLayer({**parameters, name: value}, name, context)

    #: Fields the algorithm adds to its OUTPUT layer whatever the input (checked before any work).
    added_fields = ()

    def output_file(self, parameters, context, name: str = "OUTPUT"):
        """The file the sink parameter ``name`` will write, or None (memory, database, in place, skipped).

        Refuses, before any work, a format that cannot hold :attr:`added_fields` (a shapefile)."""
        if name == "OUTPUT" and IN_PLACE in parameters and self.parameterAsBool(parameters, IN_PLACE, context):
            self.in_place_target(parameters, context)  # refused now rather than after the work
            return None
        destination = self.destination(parameters, context, name)
        refuse_raster_ending(destination, name)
        path = destination_file(destination)
        refuse_truncated_fields(path, self.added_fields, name)
        refuse_replacing_other_layers(path, name)
        return path

    def write_output(self, parameters, context, feedback, source, table, outputs, styler=None,
                     progress_span=(90.0, 100.0), drop=()) -> str:
        """Write the input features plus the table's columns to OUTPUT (as a partial file of
        ``outputs`` when it is a file), or, with IN_PLACE, into the input layer, all or nothing. Input fields named in
        ``drop`` are left out of a new layer (in place they stay: refuse the run before, where that matters).

        Returns the output layer id/path (in place: the input layer's source, or its id for a memory layer).
        """
        if self.parameterAsBool(parameters, IN_PLACE, context):
            layer, geopackage = self.in_place_target(parameters, context)
            raise_if_canceled(feedback)
            ignored = destination_file(self.destination(parameters, context))
            if ignored is not None and feedback is not None:
                feedback.pushWarning(QCoreApplication.translate(
                    "BalancedSamplingAlgorithm", "The input layer is updated in place, so OUTPUT '{}' is not written; "
                    "leave it empty, or turn off the in-place update to write a new layer.").format(ignored))
            if geopackage is None:
                self._in_place = (layer, table)  # a memory layer: written in the main thread, after the run
                return layer.id()
            progress = engine_progress(feedback).child(progress_span[0] / 100.0, progress_span[1] / 100.0) \
                if feedback is not None else None
            # Done by commit(), the last step: once the transaction is committed nothing else may fail.
            self._geopackage_update = (layer, geopackage, table, progress)
            return layer.source()  # a path scripts and qgis_process can use (the id is this run's own)
        fields = output_fields(source.fields(), table, drop)

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
        A named layer inside an existing file (a GeoPackage) and database or memory destinations
        are written by QGIS directly: replacing the whole file would lose its other layers.
        """
        final = destination_file(self.destination(parameters, context, name))
        refuse_truncated_fields(final, fields.names(), name)
        if not isinstance(final, str):
            sink, dest_id = self.parameterAsSink(parameters, name, context, fields, wkb_type, crs)
            if sink is None:
                raise QgsProcessingException(self.invalidSinkError(parameters, name))
            write(sink)
            sink.flushBuffer()
            return dest_id
        partial = outputs.partial(final)
        sink, partial_id = self.parameterAsSink({**parameters, name: sink_definition(parameters, name, partial)},
                                                name, context, fields, wkb_type, crs)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, name))
        try:
            write(sink)
            sink.flushBuffer()
        finally:
            del sink  # closes the file: everything is on disk before the rename, nothing open on failure
        if not partial_id.startswith(partial):
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm", "QGIS wrote the output '{}', not '{}' as asked.").format(
                partial_id, partial))
        dest_id = final + partial_id[len(partial):]  # keeps a '|layername=...' QGIS added
        load_on_completion(self, parameters, name, context, dest_id)
        return dest_id

    def in_place_target(self, parameters, context):
        """(layer, (GeoPackage path, layer name) or None for a memory layer) that IN_PLACE updates.

        Only these can be updated all or nothing (a GeoPackage in one SQLite transaction, a memory
        layer through its edit buffer); any other storage, and a layer in edit mode, is refused.
        """
        layer = self.parameterAsVectorLayer(parameters, "INPUT", context)
        if layer is None:
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm", "In-place update needs a vector layer as input."))
        name = layer.name()
        if layer.isEditable():
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm",
                "Layer '{}' is in edit mode; save or discard its edits and leave edit mode, then run again.")
                .format(name))
        if layer.providerType() == "memory":
            return layer, None
        found = layer_file(layer)
        if found is None or not found[0].lower().endswith(".gpkg"):
            where = found[0] if found else layer.source().split("|")[0]
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm",
                "In-place update writes all fields or none, which works for GeoPackage layers and temporary "
                "layers; layer '{}' ({}) is stored as {}. Write a new layer (Output) instead, or save the layer "
                "as a GeoPackage first.").format(name, where, layer.storageType() or layer.providerType()))
        from ...balanced_sampling_plugin.geopackage import check_updatable

        with engine_errors():  # before the work, not after it
            check_updatable(found[0])
        return layer, found

    def commit(self, outputs, feedback) -> None:
        """Unless the user cancelled meanwhile: update the input GeoPackage in place (one transaction; a
        cancel during it rolls it back), then rename every partial output into place."""
        raise_if_canceled(feedback)
        update = getattr(self, "_geopackage_update", None)
        try:
            with engine_errors():
                if update is None:
                    outputs.commit()
                    if getattr(self, "_in_place", None) is not None:
                        # The memory layer is updated after the run, in the main thread: until it is, the files
                        # just placed can still be put back (postProcessAlgorithm).
                        self._committed_files = outputs.hand_over()
                    return
                self._geopackage_update = None
                layer, (path, layer_name), table, progress = update
                from ...balanced_sampling_plugin.geopackage import update_fields_in_place

                # The files are placed inside the layer's transaction: both change, or neither.
                update_fields_in_place(path, table, layer_name, progress, outputs=outputs)
                self._reload_after_run = layer  # its provider must re-read the file: main thread, after the run
        except OSError as exc:
            raise QgsProcessingException(QCoreApplication.translate(
                "BalancedSamplingAlgorithm",
                "Could not put the output '{}' in place ({}); the earlier files were kept as they were.")
                .format(exc.filename or "", exc.strerror or exc)) from None

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS API name)
        pending = getattr(self, "_in_place", None)
        if pending is not None:
            self._in_place = None
            committed, self._committed_files = getattr(self, "_committed_files", None), None
            with committed or contextlib.nullcontext():
                try:
                    update_layer_in_place(*pending, feedback)
                except BaseException:
                    if committed is not None:
                        committed.restore()  # the layer kept its fields: the files the run replaced come back
                    raise
        layer = getattr(self, "_reload_after_run", None)
        if layer is not None:
            self._reload_after_run = None
            layer.dataProvider().reloadData()
            layer.updateFields()
            layer.triggerRepaint()
        return {}

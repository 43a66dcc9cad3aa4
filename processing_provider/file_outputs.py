"""Layers as files: which file a layer reads or a destination writes, and writing a sink as a partial file.

QGIS's feature sinks write straight into their destination, so a failed, cancelled or killed
run would leave a broken file where the user's earlier output was. Here a file destination
is redirected to a partial file beside it (:mod:`..balanced_sampling_plugin.file_safety`),
renamed into place together with the algorithm's other outputs once all are complete.
"""

import contextlib
import os
import re
import sqlite3

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProperty,
    QgsProviderRegistry,
    QgsVectorFileWriter,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..balanced_sampling_plugin.file_safety import LayerInFile

#: Providers whose destinations are not files (databases, memory).
_NOT_FILES = re.compile(r"^(memory|postgres|postgis|spatialite|mssql|oracle|hana|ogr:dbname=PG|PG):", re.IGNORECASE)
_OGR_DBNAME = re.compile(r"^ogr:dbname='((?:[^']|'')*)'")
#: Longest field name a shapefile (dBase) can hold.
SHAPEFILE_FIELD_LENGTH = 10


def layer_file(layer):
    """(file path, layer name or None) of a vector layer stored in a local file, else None."""
    if layer is None:
        return None
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    path = parts.get("path") or ""
    if not path or not os.path.isfile(path):
        return None
    return path, (parts.get("layerName") or None)


def layer_read(layer):
    """What reading ``layer`` reads, for the path checks: its file, or :class:`LayerInFile` when the
    file is a GeoPackage (writing another layer into it is fine), or None (database, memory)."""
    found = layer_file(layer)
    if found is None:
        return None
    path, name = found
    if path.lower().endswith(".gpkg"):
        tables = _geopackage_layers(path)
        if name is None and len(tables) == 1:
            name = tables[0]
        if name is not None:
            return LayerInFile(path, name)
    return path


def _geopackage_layers(path: str) -> list:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return [row[0] for row in db.execute("SELECT table_name FROM gpkg_contents")]
    except sqlite3.Error:
        return []


def destination_file(destination: str):
    """What a sink destination string writes: a file path (as QGIS will name it: an unknown or missing
    extension gets ``.gpkg``), a :class:`LayerInFile` for a named layer inside a file, or None (memory
    layer, database, nothing)."""
    if not destination:
        return None
    dbname = _OGR_DBNAME.match(destination)
    if dbname:
        table = re.search(r'\btable="((?:[^"]|"")*)"', destination)
        path = dbname.group(1).replace("''", "'")
        return LayerInFile(path, table.group(1).replace('""', '"')) if table else path
    if _NOT_FILES.match(destination) or destination.startswith("ogr:"):
        return None
    path, _, options = destination.partition("|")
    layer = re.search(r"layername=([^|]*)", options)
    if layer:
        return LayerInFile(path, layer.group(1))
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if extension not in {e.lower() for e in QgsVectorFileWriter.supportedFormatExtensions()}:
        path += ".gpkg"  # what QGIS does with such a name
    return path


def refuse_truncated_fields(path: str, names, parameter: str) -> None:
    """A shapefile cuts field names to 10 characters (``sampler_weight`` -> ``sampler_we``), which the
    next algorithm then cannot find: refuse it with the reason, before any work."""
    if not isinstance(path, str) or not path.lower().endswith(".shp"):
        return
    long_names = list(dict.fromkeys(name for name in names if len(name) > SHAPEFILE_FIELD_LENGTH))
    if long_names:
        raise QgsProcessingException(
            QCoreApplication.translate("file_outputs", "{} '{}' is a shapefile, whose field names are cut to 10 "
                                       "characters ({}), so the next algorithms would not find them. Write a "
                                       "GeoPackage (.gpkg) instead.").format(
                parameter, path, ", ".join(f"{name} -> {name[:SHAPEFILE_FIELD_LENGTH]}" for name in long_names)))


#: Endings of raster files: a layer output given one is a slip (QGIS would write ``<name>.tif.gpkg`` beside it).
RASTER_ENDINGS = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".png", ".jpg", ".jpeg")


def refuse_raster_ending(destination: str, parameter: str) -> None:
    """Refuse, before any work, a layer destination named like a raster (``…/masks/tile_02.tif``): QGIS would
    write a GeoPackage named ``tile_02.tif.gpkg`` beside the rasters."""
    if not destination or _NOT_FILES.match(destination) or destination.startswith("ogr:"):
        return
    path = destination.partition("|")[0]
    ending = os.path.splitext(path)[1]
    if ending.lower() in RASTER_ENDINGS:
        raise QgsProcessingException(
            QCoreApplication.translate("file_outputs", "{} '{}' is named like a raster ({}), but the output is a "
                                       "vector layer: QGIS would write '{}.gpkg' beside it. Give a name ending in "
                                       ".gpkg.").format(parameter, path, ending, path))


def refuse_replacing_other_layers(path: str, parameter: str) -> None:
    """A file destination replaces the whole file: refuse, before any work, an existing GeoPackage that holds
    several layers (QGIS's style table aside), one of them not the layer the output writes (named after the file).
    A file of one layer is replaced as any file is (a re-run, an earlier output)."""
    if not isinstance(path, str) or not path.lower().endswith(".gpkg") or not os.path.isfile(path):
        return
    layers = [name for name in _geopackage_layers(path) if name.lower() != "layer_styles"]
    others = [name for name in layers if name.lower() != os.path.splitext(os.path.basename(path))[0].lower()]
    if len(layers) > 1 and others:
        stem = os.path.splitext(os.path.basename(path))[0]
        raise QgsProcessingException(
            QCoreApplication.translate("file_outputs", "{} '{}' is a GeoPackage that holds other layers ({}): "
                                       "writing the file would replace them all. Choose a new file, or write a new "
                                       "layer into it: in the dialog Save to GeoPackage… with a layer name, with "
                                       "qgis_process the destination ogr:dbname='{}' table=\"{}\" (geom).").format(
                parameter, path, ", ".join(others), path, stem))


def sink_definition(parameters, name: str, partial: str):
    """A copy of the sink parameter ``name`` that writes ``partial`` and is not loaded when done (the caller
    registers the final file instead: :func:`load_on_completion`); keeps the creation options."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        definition = QgsProcessingOutputLayerDefinition(value)
    else:
        definition = QgsProcessingOutputLayerDefinition(str(value) if value is not None else "")
    definition.sink = QgsProperty.fromValue(partial)
    definition.destinationProject = None
    return definition


def load_on_completion(algorithm, parameters, name: str, context, layer_id: str) -> None:
    """Ask QGIS to load ``layer_id`` when the run ends, as ``parameterAsSink`` does for a sink whose
    output definition names a project (the Toolbox's "Open output file after running")."""
    value = parameters.get(name)
    if not isinstance(value, QgsProcessingOutputLayerDefinition) or value.destinationProject is None:
        return
    definition = algorithm.parameterDefinition(name)
    details = QgsProcessingContext.LayerDetails(value.destinationName or definition.description(),
                                                value.destinationProject, name)
    context.addLayerToLoadOnCompletion(layer_id, details)

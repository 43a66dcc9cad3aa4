"""Layers as files: which file a layer reads or a destination writes, and writing a sink as a partial file.

QGIS's feature sinks write straight into their destination, so a failed, cancelled or killed
run would leave a broken file where the user's earlier output was. Here a file destination
is redirected to a partial file beside it (:mod:`..balanced_sampling_plugin.file_safety`),
renamed into place together with the algorithm's other outputs once all are complete.
"""

import os
import re

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProperty,
    QgsProviderRegistry,
)
from qgis.PyQt.QtCore import QCoreApplication

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


def destination_file(destination: str):
    """The file a sink destination string writes, or None (memory layer, database, nothing)."""
    if not destination:
        return None
    dbname = _OGR_DBNAME.match(destination)
    if dbname:
        return dbname.group(1).replace("''", "'")
    if _NOT_FILES.match(destination) or destination.startswith("ogr:"):
        return None
    return destination.split("|")[0]


def refuse_truncated_fields(path: str, names, parameter: str) -> None:
    """A shapefile cuts field names to 10 characters (``sampler_weight`` -> ``sampler_we``), which the
    next algorithm then cannot find: refuse it with the reason, before any work."""
    if not path or not path.lower().endswith(".shp"):
        return
    long_names = list(dict.fromkeys(name for name in names if len(name) > SHAPEFILE_FIELD_LENGTH))
    if long_names:
        raise QgsProcessingException(
            QCoreApplication.translate("file_outputs", "{} '{}' is a shapefile, whose field names are cut to 10 "
                                       "characters ({}), so the next algorithms would not find them. Write a "
                                       "GeoPackage (.gpkg) instead.").format(
                parameter, path, ", ".join(f"{name} -> {name[:SHAPEFILE_FIELD_LENGTH]}" for name in long_names)))


def sink_definition(parameters, name: str, partial: str):
    """A copy of the sink parameter ``name`` that writes ``partial`` (keeping encoding, load-on-completion)."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        definition = QgsProcessingOutputLayerDefinition(value)
    else:
        definition = QgsProcessingOutputLayerDefinition(str(value) if value is not None else "")
    definition.sink = QgsProperty.fromValue(partial)
    return definition


def rename_layer_to_load(context, old_id: str, new_id: str) -> None:
    """Point the 'load this layer when done' entry of ``old_id`` at ``new_id``."""
    layers = context.layersToLoadOnCompletion()
    if old_id in layers:
        layers[new_id] = layers.pop(old_id)
        context.setLayersToLoadOnCompletion(layers)

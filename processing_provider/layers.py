"""Layer <-> engine table conversion: features in, one pandas row per feature, fields out.

numpy and pandas are imported where used, so the plugin loads in a QGIS that lacks them.
"""

import math

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
)
from qgis.PyQt.QtCore import QCoreApplication, QVariant

from .utils import raise_if_canceled

FEATURE_ID = "_fid"
# How many features between two progress/cancel checks when streaming a layer.
BATCH = 2000


def read_table(source, columns: dict, feedback=None, progress_span=(0.0, 5.0), optional=()):
    """Read the fields ``columns`` (engine name -> layer field name) of every feature.

    ``optional`` names more fields (or ``prefix*`` patterns, e.g. ``cls_*``) read under
    their own names when the layer has them. Returns a DataFrame indexed by feature id.
    Raises ``QgsProcessingException`` naming a required field the layer lacks.
    """
    import pandas as pd

    names = source.fields().names()
    missing = [f"'{field}' ({role})" for role, field in columns.items() if field not in names]
    if missing:
        raise QgsProcessingException(
            f"The input layer has no field {', '.join(missing)}. Available fields: {', '.join(names) or 'none'}. "
            "Choose the matching fields in the algorithm's parameters."
        )
    indexes = {role: names.index(field) for role, field in columns.items()}
    for pattern in optional:
        matching = [n for n in names if n.startswith(pattern[:-1])] if pattern.endswith("*") else \
            [pattern] if pattern in names else []
        for name in matching:
            indexes.setdefault(name, names.index(name))
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
    request.setSubsetOfAttributes(sorted(set(indexes.values())))
    total = max(source.featureCount(), 1)
    ids, values = [], {role: [] for role in indexes}
    for n, feature in enumerate(source.getFeatures(request)):
        if feedback is not None and n % BATCH == 0:
            raise_if_canceled(feedback)
            feedback.setProgress(progress_span[0] + (progress_span[1] - progress_span[0]) * n / total)
        ids.append(feature.id())
        attributes = feature.attributes()
        for role, index in indexes.items():
            values[role].append(_python_value(attributes[index]))
    return pd.DataFrame(values, index=pd.Index(ids, name=FEATURE_ID))


def _python_value(value):
    """QVariant NULL -> None; everything else as is."""
    if isinstance(value, QVariant):
        return None if value.isNull() else value.value()
    return value


def qgis_field_for(name: str, series) -> QgsField:
    """A QgsField whose type fits a pandas column."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return QgsField(name, QVariant.Bool)
    if pd.api.types.is_integer_dtype(series):
        return QgsField(name, QVariant.LongLong)
    if pd.api.types.is_float_dtype(series):
        return QgsField(name, QVariant.Double)  # no precision: GeoPackage would round to it
    return QgsField(name, QVariant.String)


def output_fields(input_fields: QgsFields, table, drop=()) -> QgsFields:
    """The input fields but those named in ``drop``, then one field per table column the input does not have yet."""
    fields = QgsFields()
    for field in input_fields:
        if field.name() not in drop:
            fields.append(field)
    for column in table.columns:
        if fields.indexOf(column) < 0:
            fields.append(qgis_field_for(column, table[column]))
    return fields


def _to_qgis(value):
    import numpy as np

    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    return value


def write_features(source, sink, fields: QgsFields, table, feedback=None, progress_span=(90.0, 100.0)):
    """Copy every feature of ``source`` into ``sink`` with the table's columns set by feature id.

    Input attributes of the fields in ``fields`` are kept (``fields`` from :func:`output_fields`); a table column that
    shares a name with an input field overwrites it. Features missing from the table keep NULL in the new fields.
    """
    positions = [fields.indexOf(column) for column in table.columns]
    rows = {fid: row for fid, row in zip(table.index, table.itertuples(index=False, name=None))}
    total = max(source.featureCount(), 1)
    kept = [i for i, field in enumerate(source.fields()) if fields.indexOf(field.name()) >= 0]
    n_input = len(kept)
    for n, feature in enumerate(source.getFeatures()):
        if feedback is not None and n % BATCH == 0:
            raise_if_canceled(feedback)
            feedback.setProgress(progress_span[0] + (progress_span[1] - progress_span[0]) * n / total)
        values = feature.attributes()
        attributes = [values[i] for i in kept] + [None] * (fields.count() - n_input)
        row = rows.get(feature.id())
        if row is not None:
            for position, value in zip(positions, row):
                attributes[position] = _to_qgis(value)
        out = QgsFeature(fields)
        out.setGeometry(feature.geometry())
        out.setAttributes(attributes)
        if not sink.addFeature(out, QgsFeatureSink.FastInsert):
            raise QgsProcessingException(QCoreApplication.translate(
                "layers", "Could not write feature {} to the output layer.").format(feature.id()))


def update_layer_in_place(layer, table, feedback=None) -> None:
    """Write the table's columns into ``layer`` by feature id, adding missing fields; all or nothing.

    Runs in the main thread (``postProcessAlgorithm``). The changes go through the layer's
    edit buffer and are committed once; any failure rolls the buffer back, so the layer and
    its file stay as they were. A layer the user put in edit mode meanwhile is refused: committing or rolling
    back its buffer would save or discard the user's own pending edits.
    """
    if layer.isEditable():
        raise QgsProcessingException(QCoreApplication.translate(
            "layers", "Layer {} was put in edit mode during the run, so its fields were not updated (your edits "
            "are kept). Save or discard them, leave edit mode and run again.").format(layer.name()))
    if not layer.startEditing():
        raise QgsProcessingException(QCoreApplication.translate(
            "layers", "Layer {} cannot be edited; write a new layer instead.").format(layer.name()))
    try:
        for column in table.columns:
            if layer.fields().indexOf(column) < 0 and not layer.addAttribute(qgis_field_for(column, table[column])):
                raise QgsProcessingException(QCoreApplication.translate(
                    "layers", "Could not add field '{}' to layer {}.").format(column, layer.name()))
        positions = [layer.fields().indexOf(column) for column in table.columns]
        for n, (fid, row) in enumerate(zip(table.index, table.itertuples(index=False, name=None))):
            if feedback is not None and n % BATCH == 0:
                raise_if_canceled(feedback)
            values = {position: _to_qgis(value) for position, value in zip(positions, row)}
            if not layer.changeAttributeValues(int(fid), values):
                raise QgsProcessingException(QCoreApplication.translate(
                    "layers", "Could not update feature {} of layer {}.").format(fid, layer.name()))
        if not layer.commitChanges():
            raise QgsProcessingException(QCoreApplication.translate("layers", "Could not save layer {}: {}").format(
                layer.name(), "; ".join(layer.commitErrors())))
    except BaseException:
        layer.rollBack()
        raise


def table_fields(table) -> QgsFields:
    """One field per table column, typed from the column."""
    fields = QgsFields()
    for column in table.columns:
        fields.append(qgis_field_for(column, table[column]))
    return fields


def crs_from(authid: str, wkt: str) -> QgsCoordinateReferenceSystem:
    return QgsCoordinateReferenceSystem(authid) if authid else QgsCoordinateReferenceSystem.fromWkt(wkt)


def write_polygons(sink, fields: QgsFields, table, rings, feedback=None, progress_span=(50.0, 100.0)):
    """One polygon feature per table row: ``rings[i]`` (closed ring of map coordinates) with row i's values."""
    total = max(len(table), 1)
    for i, (row, ring) in enumerate(zip(table.itertuples(index=False, name=None), rings)):
        if feedback is not None and i % BATCH == 0:
            raise_if_canceled(feedback)
            feedback.setProgress(progress_span[0] + (progress_span[1] - progress_span[0]) * i / total)
        feature = QgsFeature(fields)
        feature.setGeometry(QgsGeometry.fromPolygonXY([[QgsPointXY(x, y) for x, y in ring]]))
        feature.setAttributes([_to_qgis(value) for value in row])
        if not sink.addFeature(feature, QgsFeatureSink.FastInsert):
            raise QgsProcessingException(QCoreApplication.translate(
                "layers", "Could not write patch {} to the output layer.").format(i))

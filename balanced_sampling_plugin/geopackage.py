"""Write a table's columns into a GeoPackage layer in place: all rows or none.

A GeoPackage is an SQLite database, and SQLite's ``ALTER TABLE ... ADD COLUMN`` is
transactional: the new columns and every value go in one transaction, committed at the end.
Any failure (a trigger refusing a row, a read-only file, a locked database, a missing
feature, a cancel) rolls it back, so the file is as it was, byte for byte. Other connections
(QGIS showing the layer) are served by SQLite's own locking.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import struct
from typing import Optional

import numpy as np
import pandas as pd

from .errors import BalancedSamplingError, OperationCanceled
from .file_safety import creation_refused
from .i18n import _
from .progress import Progress, as_progress

#: Rows per executemany call between two progress/cancel checks.
BATCH = 5000
#: Seconds to wait for another connection (QGIS drawing the layer) to release the database.
BUSY_TIMEOUT = 30


def _envelope(blob):
    """(flags, (minx, maxx, miny, maxy) or None) from a GeoPackage geometry blob's header."""
    if blob is None or len(blob) < 8 or bytes(blob[:2]) != b"GP":
        raise ValueError(_("not a GeoPackage geometry"))
    flags = blob[3]
    order = "<" if flags & 1 else ">"
    if (flags >> 1) & 7 == 0:
        return flags, None
    return flags, struct.unpack(order + "4d", bytes(blob[8:40]))


def _bound(position: int):
    def function(blob):
        if blob is None:
            return None
        envelope = _envelope(blob)[1]
        if envelope is None:  # never the case for layers GDAL or QGIS wrote; the update then fails, unchanged
            raise ValueError(_("geometry without envelope"))
        return envelope[position]

    return function


def _register_geometry_functions(db) -> None:
    """The SQL functions a GeoPackage's R-tree triggers name (GDAL provides them to its own connections).

    The triggers only evaluate them when a geometry or a feature id changes, which an update of
    attribute fields never does; SQLite still needs them to exist to compile the triggers.
    """
    db.create_function("ST_IsEmpty", 1, lambda blob: None if blob is None else int(bool(_envelope(blob)[0] & 16)),
                       deterministic=True)
    for name, position in (("ST_MinX", 0), ("ST_MaxX", 1), ("ST_MinY", 2), ("ST_MaxY", 3)):
        db.create_function(name, 1, _bound(position), deterministic=True)


def column_type(series: pd.Series) -> str:
    """The GeoPackage column type of a pandas column."""
    if pd.api.types.is_bool_dtype(series):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "INTEGER"
    if pd.api.types.is_float_dtype(series):
        return "REAL"
    return "TEXT"


def _sql_value(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def feature_tables(path: str) -> list[str]:
    """The feature tables (layers) of a GeoPackage, in ``gpkg_contents`` order."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [row[0] for row in db.execute(
            "SELECT table_name FROM gpkg_contents WHERE data_type = 'features' ORDER BY rowid")]


def check_updatable(path) -> None:
    """Raise unless the GeoPackage ``path`` can be updated: the file and its folder writable (SQLite writes its
    journal beside it; the folder probed by :func:`~.file_safety.creation_refused`). Meant to be called before any
    work as well as before the update."""
    path = os.path.abspath(os.fspath(path))
    refused = BalancedSamplingError(
        _("The GeoPackage '{path}' (or its folder) is read-only, so the layer cannot be updated in place. Make "
          "it writable, or write a new layer instead of updating in place.").format(path=path))
    if not os.access(path, os.W_OK) or not os.access(os.path.dirname(path), os.W_OK) \
            or creation_refused(os.path.dirname(path)) is not None:
        raise refused


def update_fields_in_place(path, table: pd.DataFrame, layer_name: Optional[str] = None,
                           progress: Optional[Progress] = None, outputs=None) -> None:
    """Write every column of ``table`` into layer ``layer_name`` of the GeoPackage ``path``.

    Parameters
    ----------
    path : the GeoPackage file.
    table : one row per feature, indexed by feature id (the layer's primary key, which is
        what QGIS calls the feature id); a column the layer lacks is added with a type that
        fits (:func:`column_type`), an existing one is overwritten.
    layer_name : the feature table; None when the file holds exactly one.
    progress : updated per batch of rows; cancel rolls everything back (until the commit; after it,
        nothing is checked, so a late cancel never reports "nothing was written" over a changed file).
    outputs : an :class:`~.file_safety.OutputFiles` of the same run, committed inside the transaction
        just before it commits (so the files and the layer change together); restored if the
        transaction's commit then fails.

    Raises :class:`BalancedSamplingError` (file unchanged) naming the layer, the feature or
    the column at fault.
    """
    progress = as_progress(progress)
    path = os.fspath(path)
    check_updatable(path)
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise BalancedSamplingError(
            _("Cannot open the GeoPackage '{path}': {error}.").format(path=path, error=exc)) from None
    with contextlib.closing(db):
        _register_geometry_functions(db)
        try:
            layer = layer_name or _only_feature_table(db, path)
            columns = {row[1]: row for row in db.execute(f"PRAGMA table_info({_quote(layer)})")}
        except sqlite3.Error as exc:  # locked by another connection, not a GeoPackage...
            raise BalancedSamplingError(
                _("Cannot read the GeoPackage '{path}' ({error}); nothing was changed.").format(path=path, error=exc)
            ) from None
        described = {"layer": layer, "path": path}  # for messages
        if not columns:
            raise BalancedSamplingError(_("The GeoPackage '{path}' has no layer '{layer}'.").format(**described))
        primary = [name for name, row in columns.items() if row[5]]
        if len(primary) != 1:
            raise BalancedSamplingError(
                _("The layer '{layer}' of '{path}' has no single integer feature id column.").format(**described))
        lowered = {name.lower() for name in columns}
        new = [c for c in table.columns if str(c).lower() not in lowered]
        assignments = ", ".join(f"{_quote(c)} = ?" for c in table.columns)
        statement = f"UPDATE {_quote(layer)} SET {assignments} WHERE {_quote(primary[0])} = ?"
        rows = list(zip(*(table[c].tolist() for c in table.columns), table.index.tolist()))
        try:
            db.execute("BEGIN IMMEDIATE")
            for column in new:
                db.execute(f"ALTER TABLE {_quote(layer)} ADD COLUMN {_quote(column)} {column_type(table[column])}")
            for start in range(0, len(rows), BATCH):
                progress.update(start, len(rows))
                batch = [tuple(_sql_value(v) for v in row) for row in rows[start : start + BATCH]]
                _update_batch(db, statement, batch, described, f"SELECT {_quote(primary[0])} FROM {_quote(layer)}")
            progress.check_canceled()
            db.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                       "WHERE table_name = ?", (layer,))
            if outputs is not None:
                outputs.commit()  # all or nothing itself; raising here rolls the layer back
            try:
                db.execute("COMMIT")
            except BaseException:
                if outputs is not None:
                    outputs.restore()
                raise
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, (BalancedSamplingError, OperationCanceled)):
                raise
            if isinstance(exc, sqlite3.Error):
                raise BalancedSamplingError(
                    _("Could not update the layer '{layer}' of '{path}' ({error}); nothing was changed. Write a new "
                      "layer instead, or fix what the database reports.").format(**described, error=exc)
                ) from None
            raise
    progress.update(1, 1, check_cancel=False)


def _update_batch(db, statement: str, batch: list, described: dict, select_ids: str) -> None:
    try:
        cursor = db.executemany(statement, batch)
    except sqlite3.Error as exc:
        if not db.in_transaction:  # RAISE(ROLLBACK) / ON CONFLICT ROLLBACK ended it: a retry would commit rows
            raise BalancedSamplingError(
                _("Could not update the layer '{layer}' of '{path}': {error}. Nothing was changed.").format(
                    **described, error=exc)) from None
        # Find the row at fault, for the message (the whole transaction is rolled back anyway).
        for row in batch:
            try:
                db.execute(statement, row)
            except sqlite3.Error as exc:
                raise BalancedSamplingError(
                    _("Could not update feature {feature} of the layer '{layer}' of '{path}': {error}. Nothing was "
                      "changed.").format(**described, feature=row[-1], error=exc)
                ) from None
        raise
    if cursor.rowcount < len(batch):  # rows this statement changed (total_changes also counts triggers' writes)
        present = {r[0] for r in db.execute(select_ids)}
        missing = next((row[-1] for row in batch if row[-1] not in present), None)
        if missing is not None:
            raise BalancedSamplingError(
                _("The layer '{layer}' of '{path}' has no feature {feature}; nothing was changed.").format(
                    **described, feature=missing))
        skipped = next((row[-1] for row in batch if db.execute(statement, row).rowcount == 0), "?")
        raise BalancedSamplingError(
            _("A trigger of the layer '{layer}' of '{path}' skipped feature {feature} (RAISE(IGNORE)); nothing was "
              "changed.").format(**described, feature=skipped)
        )


def _only_feature_table(db, path: str) -> str:
    tables = [row[0] for row in db.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")]
    if len(tables) != 1:
        raise BalancedSamplingError(
            _("The GeoPackage '{path}' holds {n} layers ({layers}); choose the layer itself as input.").format(
                path=path, n=len(tables), layers=", ".join(tables) or _("none"))
        )
    return tables[0]

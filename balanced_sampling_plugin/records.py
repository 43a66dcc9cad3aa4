"""The patch table: one row per patch window, the columns every stage agrees on.

A patch is a square window ``[row_off, row_off + patch_size) x [col_off, col_off + patch_size)``
(pixels) of an image raster and of its mask raster, which share one pixel grid.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd

# Field names live in .contract (free of numpy/pandas, so the QGIS side can read them anywhere).
from .contract import (  # noqa: F401  (re-exported: the engine's modules import them from here)
    CLASS_ENTROPY,
    CLASS_PREFIX,
    COL_OFF,
    EXCLUDED,
    EXCLUSION_REASON,
    FREQ_CLUSTER_ID,
    FREQ_CLUSTER_SIZE,
    FREQ_CLUSTER_WEIGHT,
    IMAGE_PATH,
    MASK_PATH,
    NODATA_RATIO,
    PATCH_ID,
    PATCH_SIZE,
    RECORD_COLUMNS,
    ROW_OFF,
    SAMPLER_WEIGHT,
    UNIQUENESS_SCORE,
    WINDOW_COLUMNS,
)
from .errors import BalancedSamplingError
from .i18n import _


def class_column(class_value: int) -> str:
    """Name of the proportion column of a mask class, e.g. ``cls_3``."""
    return f"{CLASS_PREFIX}{int(class_value)}"


def class_columns(columns) -> list[str]:
    """The class-proportion columns among ``columns``, sorted by class value."""
    found = [c for c in columns if c.startswith(CLASS_PREFIX) and c[len(CLASS_PREFIX):].isdigit()]
    return sorted(found, key=lambda c: int(c[len(CLASS_PREFIX):]))


def normalize_path(path: str) -> str:
    """Absolute, normalised form of a raster path, used for identity (ids, cache keys, grouping)."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def patch_id(image_path: str, row_off: int, col_off: int, patch_size: int) -> str:
    """Stable id of a patch: a 16-hex digest of the normalised image path and the window.

    The same window of the same image gets the same id in every run and on every
    layer, so embedding caches and joins can rely on it.
    """
    key = f"{normalize_path(image_path)}|{int(row_off)}|{int(col_off)}|{int(patch_size)}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def patch_ids(records: pd.DataFrame) -> pd.Series:
    """:func:`patch_id` for every row of a validated record table."""
    return pd.Series(
        [
            patch_id(p, r, c, s)
            for p, r, c, s in zip(records[IMAGE_PATH], records[ROW_OFF], records[COL_OFF], records[PATCH_SIZE])
        ],
        index=records.index,
        dtype=object,
    )


def shown_value(value) -> str:
    """A field value as messages show it: ``NULL (empty)`` for a missing value, never 'nan' or 'None'."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return _("NULL (empty)")
    if isinstance(value, str) and not value.strip():
        return _("{value} (empty)").format(value=repr(value))
    if isinstance(value, np.generic):  # numpy 2 would show np.int64(-5), not -5
        value = value.item()
    return repr(value)


def describe_patch(records: pd.DataFrame, index) -> str:
    """Human description of one patch for error messages."""
    row = records.loc[index]
    pid = row[PATCH_ID] if PATCH_ID in records.columns else None
    where = _("{image} window row_off={row_off}, col_off={col_off}, size={size}").format(
        image=row.get(IMAGE_PATH, "?"), row_off=row.get(ROW_OFF, "?"), col_off=row.get(COL_OFF, "?"),
        size=row.get(PATCH_SIZE, "?"))
    if pid:
        return _("patch {id} ({where})").format(id=pid, where=where)
    return _("patch at row {row} ({where})").format(row=index, where=where)


def validate_records(
    records: pd.DataFrame,
    required: tuple[str, ...] = RECORD_COLUMNS,
    source: str | None = None,
) -> pd.DataFrame:
    """Check and normalise a patch table; return a copy with integer windows and a ``patch_id``.

    Raises :class:`BalancedSamplingError` naming the missing column, or the first row
    with an empty path or a window that is not a non-negative integer (size > 0). ``source`` names the table in
    messages (already translated; default "the patch table").
    """
    source = _("the patch table") if source is None else source
    missing = [c for c in required if c not in records.columns]
    if missing:
        raise BalancedSamplingError(
            _("{source} has no field {missing}; available fields: {available}. Pick the right field names in the "
              "algorithm's parameters (in Python: rename the columns, or join a stage's result to the records it "
              "was computed from, e.g. records.join(result.table)).").format(
                source=source, missing=", ".join(repr(m) for m in missing),
                available=", ".join(map(str, records.columns)) or _("none"))
        )
    out = records.copy()
    if len(out) == 0:
        raise BalancedSamplingError(_("There is no patch in {source} (no feature or row); give one that holds "
                                      "patches.").format(source=source))
    for column in (IMAGE_PATH, MASK_PATH):
        if column not in out.columns:
            continue
        empty = out[column].isna() | (out[column].astype(str).str.strip() == "")
        if empty.any():
            first = out.index[np.flatnonzero(empty.to_numpy())[0]]
            raise BalancedSamplingError(_("Field '{field}' is empty for the patch at row {row} of {source}.").format(
                field=column, row=first, source=source))
        out[column] = out[column].astype(str)
    for column in WINDOW_COLUMNS:
        if column not in out.columns:
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() | (values != np.floor(values)) | (values < (1 if column == PATCH_SIZE else 0))
        if bad.any():
            position = np.flatnonzero(bad.to_numpy())[0]
            message = (_("Field '{field}' of the patch at row {row} of {source} is {value}; expected a positive "
                         "integer (pixels).") if column == PATCH_SIZE else
                       _("Field '{field}' of the patch at row {row} of {source} is {value}; expected a non-negative "
                         "integer (pixels)."))
            raise BalancedSamplingError(message.format(
                field=column, row=out.index[position], source=source,
                value=shown_value(records[column].iloc[position])))
        out[column] = values.astype(np.int64)
    if all(c in out.columns for c in (IMAGE_PATH, *WINDOW_COLUMNS)):
        ids = patch_ids(out)
        if PATCH_ID in out.columns:
            given = out[PATCH_ID]
            given_missing = given.isna() | (given.astype(str).str.strip() == "")
            out[PATCH_ID] = given.astype(object).where(~given_missing, ids)
        else:
            out[PATCH_ID] = ids
    return out

"""The training CSV read by pytorch-smt-tools' ``CSVWindowedSegmentationDataset``.

One row per patch: image and mask paths, the window (pixels) and ``sampler_weight``,
plus diagnostic columns when the table has them. The file is written atomically
(:func:`~balanced_sampling_plugin.file_safety.atomic_write`): a failure or a cancel
leaves any earlier file untouched.
"""

from __future__ import annotations

import json
import math
import os
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from .errors import BalancedSamplingError
from .i18n import _
from .file_safety import atomic_write
from .contract import BLACK_BORDER, BORDER_NODATA
from .records import (
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
    ROW_OFF,
    SAMPLER_WEIGHT,
    UNIQUENESS_SCORE,
    class_columns,
    shown_value,
    validate_records,
)
from .weights import included_mask

# The diagnostics pytorch-smt-tools' build-balanced-dataset writes, derived from the patch table's fields.
HAS_MASK_BORDER_NODATA = "has_mask_border_nodata"
HAS_IMAGE_BLACK_BORDER = "has_image_black_border"
HAS_LOW_ENTROPY = "has_low_entropy"  # also the exclusion reason (composition.LOW_ENTROPY)
HAS_HIGH_NODATA = "has_high_nodata"
CLASS_DIST_JSON = "class_dist_json"
#: Significant digits of the shares in ``class_dist_json``.
CLASS_DIST_DIGITS = 6

#: Written after the trainer's columns, in this order, when the table has what they need: the
#: patch_id, then the columns of the tool's own CSV.
DEFAULT_DIAGNOSTIC_COLUMNS = (
    PATCH_ID, CLASS_ENTROPY, NODATA_RATIO, HAS_MASK_BORDER_NODATA, HAS_IMAGE_BLACK_BORDER, HAS_LOW_ENTROPY,
    HAS_HIGH_NODATA, EXCLUDED, FREQ_CLUSTER_ID, FREQ_CLUSTER_SIZE, FREQ_CLUSTER_WEIGHT, UNIQUENESS_SCORE,
    CLASS_DIST_JSON,
)


def _flag(field: str) -> Callable[[pd.DataFrame, str], Optional[np.ndarray]]:
    """A boolean field of the table (bool, 0/1, "true"/"false", NULL = false), as bool."""
    def derive(rows, excluded_field):
        return ~included_mask(rows, field) if field in rows.columns else None
    return derive


def _has_reason(reason: str) -> Callable[[pd.DataFrame, str], Optional[np.ndarray]]:
    """True where the comma-separated ``exclusion_reason`` names ``reason``."""
    def derive(rows, excluded_field):
        if EXCLUSION_REASON not in rows.columns:
            return None
        return np.array([reason in {r.strip() for r in str(v).split(",")} if isinstance(v, str) else False
                         for v in rows[EXCLUSION_REASON]], dtype=bool)
    return derive


def _excluded(rows, excluded_field) -> Optional[np.ndarray]:
    return ~included_mask(rows, excluded_field) if excluded_field in rows.columns else None


def class_dist_json(rows: pd.DataFrame) -> Optional[np.ndarray]:
    """One compact JSON object per row, class value -> share, from the ``cls_<c>`` columns.

    Shares are rounded to :data:`CLASS_DIST_DIGITS` significant digits; a missing (NULL) share
    is written as null. None when the table has no class column.
    """
    columns = class_columns(map(str, rows.columns))
    if not columns:
        return None
    keys = [json.dumps(c[len(CLASS_PREFIX):]) for c in columns]
    shares = rows[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)

    def number(value: float) -> str:
        return json.dumps(float(f"{value:.{CLASS_DIST_DIGITS}g}")) if math.isfinite(value) else "null"

    return np.array(["{" + ",".join(f"{k}:{number(v)}" for k, v in zip(keys, row)) + "}" for row in shares],
                    dtype=object)


def expand_class_dist(table: pd.DataFrame) -> pd.DataFrame:
    """``cls_<c>`` columns from the training CSV's ``class_dist_json`` when the table has none."""
    if class_columns(map(str, table.columns)) or CLASS_DIST_JSON not in table.columns:
        return table
    parsed = []
    for i, text in enumerate(table[CLASS_DIST_JSON]):
        try:
            value = json.loads(text) if isinstance(text, str) and text.strip() else {}
        except json.JSONDecodeError as exc:
            raise BalancedSamplingError(_("Column {column} of row {row} is not JSON: {error}.").format(
                column=CLASS_DIST_JSON, row=i, error=exc)) from None
        parsed.append(value if isinstance(value, dict) else {})
    keys = sorted({k for row in parsed for k in row if str(k).isdigit()}, key=int)
    out = table.copy()
    for key in keys:
        out[f"{CLASS_PREFIX}{int(key)}"] = [row.get(key) for row in parsed]
    return out


def layer_fields_from_training_csv(table: pd.DataFrame) -> pd.DataFrame:
    """A training CSV read back as patch records, with the layer's field names: ``cls_<c>`` from
    ``class_dist_json`` (:func:`expand_class_dist`) and ``border_nodata`` / ``black_border`` from
    ``has_mask_border_nodata`` / ``has_image_black_border``, where the table lacks them, so the algorithms that
    read those fields take the CSV's values. Other tables are returned as they are."""
    out = expand_class_dist(table)
    if out is not table:  # its cls_<c> columns are the proportions now (a JSON copy would go stale)
        out = out.drop(columns=[CLASS_DIST_JSON])
    for flag, layer_name in ((HAS_MASK_BORDER_NODATA, BORDER_NODATA), (HAS_IMAGE_BLACK_BORDER, BLACK_BORDER)):
        if flag in out.columns and layer_name not in out.columns:
            flagged = out[flag].map(lambda value: str(value).strip().lower() in ("true", "1", "1.0"))
            out = out.drop(columns=[flag]).assign(**{layer_name: flagged.to_numpy(dtype=bool)})
    return out


#: Diagnostic columns computed from other fields (None when the table lacks them).
DERIVED_COLUMNS = {
    HAS_MASK_BORDER_NODATA: _flag(BORDER_NODATA),
    HAS_IMAGE_BLACK_BORDER: _flag(BLACK_BORDER),
    HAS_LOW_ENTROPY: _has_reason(HAS_LOW_ENTROPY),
    HAS_HIGH_NODATA: _has_reason(NODATA_RATIO),
    EXCLUDED: _excluded,
    CLASS_DIST_JSON: lambda rows, excluded_field: class_dist_json(rows),
}


def training_frame(
    table: pd.DataFrame,
    csv_folder: str | None = None,
    *,
    image_column: str = "image",
    mask_column: str = "mask",
    drop_excluded: bool = False,
    diagnostic_columns: Sequence[str] = DEFAULT_DIAGNOSTIC_COLUMNS,
    excluded_field: str = EXCLUDED,
) -> pd.DataFrame:
    """The rows and columns of the training CSV, as a DataFrame.

    Columns: ``image_column, mask_column, row_off, col_off, patch_size, sampler_weight``,
    then those of ``diagnostic_columns`` the table has or can derive (:data:`DERIVED_COLUMNS`):
    ``has_mask_border_nodata`` / ``has_image_black_border`` from ``border_nodata`` /
    ``black_border``, ``has_low_entropy`` / ``has_high_nodata`` from the ``has_low_entropy`` /
    ``nodata_ratio`` reasons of ``exclusion_reason``, ``excluded`` from ``excluded_field`` (as
    booleans), ``class_dist_json`` from the ``cls_<c>`` shares. With ``csv_folder`` set, image
    and mask paths are made relative to it (a path on another Windows drive, which
    has no relative form, stays absolute); otherwise they are written as given.

    Raises :class:`BalancedSamplingError` for a missing field, a sampler weight that
    is not a finite number >= 0, or no row with a positive weight.
    """
    if SAMPLER_WEIGHT not in table.columns:
        raise BalancedSamplingError(
            _("The patch table has no field '{field}'. Run '{algorithm}' first.").format(
                field=SAMPLER_WEIGHT, algorithm=_("Combine sampler weights"))
        )
    names = (image_column, mask_column, ROW_OFF, COL_OFF, PATCH_SIZE, SAMPLER_WEIGHT)
    if len(set(names)) != len(names):
        raise BalancedSamplingError(_("The CSV column names must be distinct; got {names}.").format(
            names=", ".join(names)))
    rows = table.iloc[np.flatnonzero(included_mask(table, excluded_field))] if drop_excluded else table
    if len(rows) == 0:
        raise BalancedSamplingError(_("Every patch is excluded; there is nothing to write to the training CSV."))
    rows = validate_records(rows)  # paths present, windows integer

    weights = pd.to_numeric(rows[SAMPLER_WEIGHT], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(weights) & (weights >= 0))
    if bad.any():
        position = np.flatnonzero(bad)[0]
        raise BalancedSamplingError(
            _("Field '{field}' of the patch at row {row} is {value}; expected a number >= 0. Re-run '{algorithm}'.")
            .format(field=SAMPLER_WEIGHT, row=rows.index[position],
                    value=shown_value(rows[SAMPLER_WEIGHT].iloc[position]), algorithm=_("Combine sampler weights"))
        )
    if not (weights > 0).any():
        raise BalancedSamplingError(
            _("No patch left to write has a positive sampler weight, so the training sampler could draw nothing.")
        )

    paths = {image_column: rows[IMAGE_PATH], mask_column: rows[MASK_PATH]}
    if csv_folder is not None:
        paths = {name: values.map(lambda p: _relative(p, csv_folder)) for name, values in paths.items()}
    columns = {name: values.to_numpy() for name, values in paths.items()}
    columns.update({c: rows[c].to_numpy() for c in (ROW_OFF, COL_OFF, PATCH_SIZE)})
    columns[SAMPLER_WEIGHT] = weights
    # diagnostics the input has or can derive (validate_records may add a patch_id; only an input one is written)
    for name in diagnostic_columns:
        if name in names:
            continue
        derived = DERIVED_COLUMNS[name](rows, excluded_field) if name in DERIVED_COLUMNS else None
        if derived is not None:
            columns[name] = derived
        elif name in table.columns:
            columns[name] = rows[name].to_numpy()
    return pd.DataFrame(columns)


def missing_files_note(table: pd.DataFrame, shown: int = 3) -> Optional[str]:
    """A warning naming the image/mask files that rows of ``table`` point at and that do not exist here (a
    trainer reading the CSV would fail on them part-way through an epoch), or None when every file exists.

    Each distinct path is checked once. A warning, not an error: the CSV may be meant for another machine.
    """
    missing, rows = [], 0
    for column in (IMAGE_PATH, MASK_PATH):
        if column not in table.columns:
            continue
        paths = table[column].dropna().astype(str)
        absent = {path for path in paths.unique() if not os.path.exists(path)}
        if absent:
            missing += sorted(absent)
            rows += int(paths.isin(absent).sum())
    if not missing:
        return None
    return _("{rows} rows of the training CSV point at {n} image or mask files that do not exist here ({files}{more}); "
             "a trainer reading it would fail on them. Restore the files, or fix the paths and run again.").format(
        rows=rows, n=len(missing), files=", ".join(missing[:shown]),
        more=_(" and {n} more").format(n=len(missing) - shown) if len(missing) > shown else "")


def write_training_csv(
    table: pd.DataFrame,
    path,
    *,
    image_column: str = "image",
    mask_column: str = "mask",
    drop_excluded: bool = False,
    relative_paths: bool = False,
    diagnostic_columns: Sequence[str] = DEFAULT_DIAGNOSTIC_COLUMNS,
    excluded_field: str = EXCLUDED,
    relative_to: str | None = None,
) -> str:
    """Write the training CSV atomically and return its path.

    Parameters
    ----------
    table : patch table with image/mask paths, the window and ``sampler_weight``.
    path : the CSV file.
    image_column, mask_column : names of the path columns in the CSV (e.g. ``image_path``).
    drop_excluded : leave excluded patches out (otherwise they are written with weight 0,
        which ``WeightedRandomSampler`` never draws).
    relative_paths : write image and mask paths relative to the CSV's folder.
    diagnostic_columns : extra columns written when the table has them.
    excluded_field : the exclusion flag read by ``drop_excluded``.
    relative_to : the folder relative paths start from (default: the CSV's folder; give the final
        folder when ``path`` is a partial file that will be renamed there).
    """
    path = os.fspath(path)
    folder = relative_to or os.path.dirname(os.path.abspath(path))
    frame = training_frame(
        table,
        folder if relative_paths else None,
        image_column=image_column,
        mask_column=mask_column,
        drop_excluded=drop_excluded,
        diagnostic_columns=diagnostic_columns,
        excluded_field=excluded_field,
    )
    with atomic_write(path, newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")
    return path


def _relative(path: str, folder: str) -> str:
    try:
        return os.path.relpath(os.path.abspath(path), folder)
    except ValueError:  # another drive on Windows
        return path

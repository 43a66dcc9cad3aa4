"""The training CSV read by pytorch-smt-tools' ``CSVWindowedSegmentationDataset``.

One row per patch: image and mask paths, the window (pixels) and ``sampler_weight``,
plus diagnostic columns when the table has them. The file is written atomically
(:func:`~balanced_sampling_plugin.file_safety.atomic_write`): a failure or a cancel
leaves any earlier file untouched.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import BalancedSamplingError
from .i18n import _
from .file_safety import atomic_write
from .records import (
    CLASS_ENTROPY,
    COL_OFF,
    EXCLUDED,
    FREQ_CLUSTER_ID,
    IMAGE_PATH,
    MASK_PATH,
    NODATA_RATIO,
    PATCH_ID,
    PATCH_SIZE,
    ROW_OFF,
    SAMPLER_WEIGHT,
    UNIQUENESS_SCORE,
    shown_value,
    validate_records,
)
from .weights import included_mask

#: Written after the main columns, in this order, when the table has them.
DEFAULT_DIAGNOSTIC_COLUMNS = (PATCH_ID, FREQ_CLUSTER_ID, UNIQUENESS_SCORE, EXCLUDED, CLASS_ENTROPY, NODATA_RATIO)


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
    then those of ``diagnostic_columns`` the table has. With ``csv_folder`` set, image
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
    # diagnostics the input has (validate_records may add a patch_id; only an input one is written)
    columns.update({c: rows[c].to_numpy() for c in diagnostic_columns if c in table.columns and c not in names})
    return pd.DataFrame(columns)


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

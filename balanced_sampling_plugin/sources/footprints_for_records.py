"""Footprints (map polygons) of patch records that came from anywhere: a file, a database, a layer.

Each distinct image raster is opened once for its geotransform and CRS; every window of
it becomes a closed ring in the rasters' CRS. Unlike
:func:`~balanced_sampling_plugin.footprints.build_footprints`, the windows are given, so
rasters that are gone, windows that overrun their raster, mixed CRSs and masks off their
image's grid are reported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..contract import ON_MISSING
from ..errors import BalancedSamplingError
from ..i18n import _
from ..footprints import (
    check_mask_grid,
    crs_name,
    layer_grid,
    read_grid,
    rings_in_layer_crs,
    same_crs,
    say_reprojected,
    window_ring,
)
from ..progress import Progress, as_progress
from ..records import COL_OFF, IMAGE_PATH, MASK_PATH, PATCH_SIZE, ROW_OFF, describe_patch, validate_records

#: What to do with records whose image or mask raster does not exist (enum order is public).
#: Missing paths spelled out in a message; the rest are counted.
LISTED_PATHS = 5


@dataclass
class RecordFootprints:
    """Records kept, one ring per record, their CRS and the rasters that were missing.

    records : the validated table (``patch_id`` added), index reset so row ``i`` has ``rings[i]``
    rings : closed rings of 5 ``(x, y)`` map coordinates in the rasters' CRS
    crs_wkt, crs_authid : the rasters' CRS (``crs_authid`` like ``EPSG:32633``, "" without a code)
    missing : sorted paths of the image/mask rasters that do not exist (``skip`` dropped their records)
    """

    records: pd.DataFrame
    rings: list
    crs_wkt: str
    crs_authid: str
    missing: list = field(default_factory=list)


def record_footprints(
    records: pd.DataFrame, on_missing: str = "fail", progress: Progress | None = None
) -> RecordFootprints:
    """Footprint ring of every patch record, from its image raster's geotransform.

    Parameters
    ----------
    records : patch table with ``image_path``, ``row_off``, ``col_off``, ``patch_size`` (pixels);
        ``mask_path`` when present is checked for existence too, and to lie on its image's
        pixel grid (same CRS, size and geotransform).
    on_missing : "fail" raises listing the missing rasters (the first few and a count);
        "skip" drops their records, warns, and lists them in ``missing``.
    progress : updated once per distinct image; cancel raises ``OperationCanceled``.

    Raises
    ------
    BalancedSamplingError
        Missing rasters (with "fail", or when nothing is left), a window reaching past its
        raster's edge, rasters in different CRSs, or a mask off its image's pixel grid (naming them).
    """
    if on_missing not in ON_MISSING:
        raise BalancedSamplingError(_("on_missing must be one of {choices}; got {value}.").format(
            choices=", ".join(ON_MISSING), value=repr(on_missing)))
    progress = as_progress(progress)
    table = validate_records(records, required=(IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE))
    missing = missing_rasters(table)
    if missing:
        table = _drop_missing(table, missing, on_missing, progress)
    table = table.reset_index(drop=True)

    rings: list = [None] * len(table)
    first = None
    rows_of = table.groupby(IMAGE_PATH, sort=False).indices  # image -> row positions
    windows = table[[ROW_OFF, COL_OFF, PATCH_SIZE]].to_numpy(np.int64)
    mask_grids: dict = {}  # mask path -> RasterGrid, each mask opened once
    reprojected = []
    for done, (image, rows) in enumerate(rows_of.items(), start=1):
        grid = read_grid(image)
        first = layer_grid(grid, first)
        if not same_crs(grid, first):
            reprojected.append((image, crs_name(grid)))
        if MASK_PATH in table.columns:
            for mask in table[MASK_PATH].iloc[rows].dropna().unique():
                if mask not in mask_grids:
                    mask_grids[mask] = read_grid(mask)
                check_mask_grid(grid, mask_grids[mask])
        _check_inside(table, rows, windows[rows], grid.width, grid.height)
        placed = rings_in_layer_crs([window_ring(grid.transform, *(int(v) for v in windows[row])) for row in rows],
                                    grid, first)
        for row, ring in zip(rows, placed):
            rings[row] = ring
        progress.update(done, len(rows_of))
    say_reprojected(reprojected, len(rows_of), first, progress)
    return RecordFootprints(table, rings, first.crs_wkt if first else "", first.crs_authid if first else "", missing)


def missing_rasters(records: pd.DataFrame) -> list[str]:
    """Sorted distinct image and mask paths of ``records`` that are not existing files."""
    paths = set(records[IMAGE_PATH])
    if MASK_PATH in records.columns:
        paths |= set(records[MASK_PATH].dropna())
    return sorted(p for p in paths if not os.path.isfile(p))


def _drop_missing(table: pd.DataFrame, missing: list[str], on_missing: str, progress: Progress) -> pd.DataFrame:
    gone = table[IMAGE_PATH].isin(missing)
    if MASK_PATH in table.columns:
        gone |= table[MASK_PATH].isin(missing)
    listed = ", ".join(missing[:LISTED_PATHS])
    if len(missing) > LISTED_PATHS:
        listed = _("{listed} and {more} more").format(listed=listed, more=len(missing) - LISTED_PATHS)
    values = dict(n=len(missing), listed=listed, used=int(gone.sum()), total=len(table))
    if on_missing == "fail":
        raise BalancedSamplingError(
            _("{n} raster(s) do not exist ({listed}); {used} of {total} patches use them. Fix the paths, or skip the "
              "patches whose rasters are missing.").format(**values))
    if gone.all():
        raise BalancedSamplingError(
            _("{n} raster(s) do not exist ({listed}); {used} of {total} patches use them: no patch is left.").format(
                **values))
    progress.warning(
        _("{n} raster(s) do not exist ({listed}); {used} of {total} patches use them and were skipped.").format(
            **values))
    return table[~gone.to_numpy()]


def _check_inside(table: pd.DataFrame, rows: np.ndarray, windows: np.ndarray, width: int, height: int) -> None:
    """Raise naming the first of ``rows`` whose window ``(row_off, col_off, size)`` overruns the raster."""
    ends = windows[:, :2] + windows[:, 2:3]
    outside = (ends[:, 0] > height) | (ends[:, 1] > width)
    if outside.any():
        row = rows[np.flatnonzero(outside)[0]]
        raise BalancedSamplingError(
            _("The window of {patch} reaches past the edge of its {width}x{height} px raster; check row_off, col_off "
              "and patch_size.").format(patch=describe_patch(table, table.index[row]), width=width, height=height)
        )

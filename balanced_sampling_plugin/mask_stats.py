"""Windowed mask statistics: class proportions, entropy, nodata and border flags per patch.

The pure array functions work on one window already in memory; :func:`compute_mask_stats`
reads every patch window of a record table with rasterio (one pass, each raster opened
once per chunk of patches) and turns the per-window pixel counts into one row per patch.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from .contract import BLACK_BORDER, BORDER_NODATA
from .errors import BalancedSamplingError, error_chain
from .i18n import _
from .patch_images import READ_ERRORS
from .progress import Progress, as_progress
from .records import (
    CLASS_ENTROPY,
    COL_OFF,
    IMAGE_PATH,
    MASK_PATH,
    NODATA_RATIO,
    PATCH_ID,
    PATCH_SIZE,
    ROW_OFF,
    class_column,
    describe_patch,
    normalize_path,
    validate_records,
)

if TYPE_CHECKING:
    from .compute import Executor

#: Most windows one task reads with one open raster (bounds memory and cancel latency; on a Dask cluster one
#: task costs ~0.2-1 ms of scheduler time, so a task of 1 024 windows, ~0.3 s of reading, keeps that below 1 %).
DEFAULT_CHUNK_SIZE = 1024
#: Largest class value counted with ``np.bincount``; larger values use a sort instead.
_BINCOUNT_LIMIT = 1 << 16
#: GDAL block cache (MB) while reading windows.
GDAL_CACHE_MB = 64
#: Multi-band masks named in the warning; the rest are counted.
LISTED_MASKS = 3


# --------------------------------------------------------------------------- array functions


def value_counts(mask_window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of an integer window and how many pixels hold each.

    Parameters
    ----------
    mask_window : (h, w) integer array

    Returns
    -------
    values : (V,) int64, sorted ascending
    counts : (V,) int64, pixels per value (sums to ``h * w``)
    """
    flat = np.asarray(mask_window).ravel()
    if flat.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    low, high = int(flat.min()), int(flat.max())
    if low >= 0 and high < _BINCOUNT_LIMIT:
        binned = np.bincount(flat.astype(np.intp, copy=False))  # uint64 needs the explicit cast
        values = np.flatnonzero(binned)
        return values.astype(np.int64), binned[values].astype(np.int64)
    # Negative or huge values (e.g. nodata -9999): bincount would fail or allocate too much.
    values, counts = np.unique(flat, return_counts=True)
    return values.astype(np.int64), counts.astype(np.int64)


def class_counts(mask_window: np.ndarray, classes: Sequence[int], nodata_class: Optional[int] = None) -> np.ndarray:
    """Pixels of each class in a window, nodata pixels left out.

    Parameters
    ----------
    mask_window : (h, w) integer array
    classes : sequence of C class values
    nodata_class : int or None
        Pixels of this value are never counted, even if it is listed in ``classes``.

    Returns
    -------
    (C,) int64 pixel counts; values neither listed nor nodata are not counted.
    """
    values, counts = value_counts(mask_window)
    classes = np.asarray(classes, dtype=np.int64)
    pixels = _columns_of(values, counts[np.newaxis], classes)[0]
    if nodata_class is not None:
        pixels[classes == nodata_class] = 0
    return pixels


def _columns_of(seen: np.ndarray, matrix: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The (n, len(wanted)) columns of ``matrix`` for the ``wanted`` values; zeros for values never seen."""
    out = np.zeros((matrix.shape[0], len(wanted)), np.int64)
    present = np.isin(wanted, seen)
    out[:, present] = matrix[:, np.searchsorted(seen, wanted[present])]
    return out


def proportions_from_counts(counts: np.ndarray) -> np.ndarray:
    """Row-normalise pixel counts into proportions.

    Parameters
    ----------
    counts : (C,) or (n, C) non-negative counts

    Returns
    -------
    float64 array of the same shape; each row sums to 1, or is all zeros when its counts are.
    """
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def shannon_entropy(proportions: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of proportion rows (0 log 0 taken as 0).

    Parameters
    ----------
    proportions : (C,) or (n, C), rows summing to 1 (or all zero)

    Returns
    -------
    float, or (n,) float64; 0 for a single class or an all-zero row.
    """
    p = np.asarray(proportions, dtype=np.float64)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    entropy = -(p * logs).sum(axis=-1)
    return np.maximum(entropy, 0.0)  # avoid -0.0 for single-class rows


def border_ring(array: np.ndarray) -> list[np.ndarray]:
    """The outer 1-pixel ring of a window as four strips (top, bottom, left, right).

    Parameters
    ----------
    array : (..., h, w)

    Returns
    -------
    [(..., w), (..., w), (..., h), (..., h)] views; corners appear twice, which is harmless for any/all tests.
    """
    return [array[..., 0, :], array[..., -1, :], array[..., :, 0], array[..., :, -1]]


def ring_has_value(mask_window: np.ndarray, value: Optional[int]) -> bool:
    """True if any pixel of the outer 1-pixel ring of a (h, w) window equals ``value`` (never for None)."""
    if value is None or mask_window.size == 0:
        return False
    return any(bool((strip == value).any()) for strip in border_ring(mask_window))


def strips_have_black_pixel(strips: Sequence[np.ndarray], tolerance: float = 0) -> bool:
    """True if any pixel of the given (bands, length) strips has every band <= ``tolerance``."""
    return any(bool((np.asarray(strip) <= tolerance).all(axis=0).any()) for strip in strips if strip.size)


def has_black_border(image_window: np.ndarray, tolerance: float = 0) -> bool:
    """True if a pixel of the outer 1-pixel ring is black in every band.

    Parameters
    ----------
    image_window : (bands, h, w) array (a (h, w) array is taken as one band)
    tolerance : float
        A band value ``<= tolerance`` counts as black (same units as the pixel values).
    """
    image_window = np.asarray(image_window)
    if image_window.ndim == 2:
        image_window = image_window[np.newaxis]
    return strips_have_black_pixel(border_ring(image_window), tolerance)


def window_stats(
    mask_window: np.ndarray, classes: Sequence[int], nodata_class: Optional[int] = 0
) -> tuple[np.ndarray, float, float, bool]:
    """Class composition of one mask window.

    Parameters
    ----------
    mask_window : (h, w) integer array of class values
    classes : sequence of C class values, the order of the returned proportions
    nodata_class : int or None
        The class value meaning "no data"; None when the mask has none.

    Returns
    -------
    proportions : (C,) float64
        Share of each class among the non-nodata pixels (sums to 1; all zeros if the
        window is all nodata). Values neither listed nor nodata are not counted.
    class_entropy : float
        Shannon entropy of ``proportions`` in nats (0 for one class or no class pixel).
    nodata_ratio : float
        Fraction of all pixels equal to ``nodata_class`` (0..1).
    border_nodata : bool
        Whether a pixel of the outer 1-pixel ring equals ``nodata_class``.
    """
    mask_window = np.asarray(mask_window)
    proportions = proportions_from_counts(class_counts(mask_window, classes, nodata_class))
    nodata_pixels = 0 if nodata_class is None else int((mask_window == nodata_class).sum())
    return (
        proportions,
        float(shannon_entropy(proportions)),
        nodata_pixels / mask_window.size if mask_window.size else 0.0,
        ring_has_value(mask_window, nodata_class),
    )


# --------------------------------------------------------------------------- raster reading


@dataclass
class _Chunk:
    """One task: patches of one mask raster, everything needed to read them (picklable, so a Dask worker can
    run it). ``positions`` index the record table; ``patches`` holds those rows (the columns errors name)."""

    mask_path: str
    positions: np.ndarray  # (m,) int64
    windows: np.ndarray  # (m, 3) int64: row_off, col_off, patch_size (pixels)
    patches: pd.DataFrame  # the m record rows, for image paths and error messages
    nodata_class: Optional[int]
    check_black_border: bool
    black_tolerance: float

    def describe(self, i: int) -> str:
        return describe_patch(self.patches, self.patches.index[i])

    def describe_chunk(self) -> str:
        return _("the {n} patches of the mask raster '{path}' from {patch}").format(
            n=len(self.positions), path=self.mask_path, patch=self.describe(0))


@dataclass
class _ChunkResult:
    """What a task sends back, as frames: ``counts`` one row per (patch, distinct mask value) -- ``position``,
    ``value``, ``pixels`` (int64) --, ``flags`` one row per patch -- ``position``, ``border_nodata``,
    ``black_border``."""

    counts: pd.DataFrame
    flags: pd.DataFrame
    mask_path: str = ""
    mask_bands: int = 1  # bands of the mask raster (band 1 is read)


#: The record columns a task carries (those error messages and the black-border test use).
_TASK_COLUMNS = (PATCH_ID, IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE)


def _plan_chunks(records: pd.DataFrame, chunk_size: int, nodata_class: Optional[int] = None,
                 check_black_border: bool = True, black_tolerance: float = 0) -> list[_Chunk]:
    """Group patches by mask raster, in reading order (row, col), and cut each group into chunks."""
    keys = records[MASK_PATH].map(normalize_path).to_numpy()
    order = np.lexsort((records[COL_OFF].to_numpy(), records[ROW_OFF].to_numpy(), keys))
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    windows = records[[ROW_OFF, COL_OFF, PATCH_SIZE]].to_numpy(np.int64)
    carried = records[[c for c in _TASK_COLUMNS if c in records.columns]]
    chunks = []
    for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
        group = order[start:stop]
        for offset in range(0, len(group), chunk_size):
            positions = group[offset : offset + chunk_size].astype(np.int64)
            chunks.append(_Chunk(records[MASK_PATH].iat[positions[0]], positions, windows[positions],
                                 carried.iloc[positions], nodata_class, check_black_border, black_tolerance))
    return chunks


def _open_raster(path: str, role: str, chunk: _Chunk, i: int, stack: ExitStack):
    try:
        return stack.enter_context(rasterio.open(path))
    except (rasterio.errors.RasterioError, OSError) as exc:
        missing = not os.path.exists(path)
        if role == "mask":
            message = (_("Cannot open the mask raster '{path}' (the file does not exist: {error}), needed by {patch}. "
                         "Check the '{field}' field.") if missing else
                       _("Cannot open the mask raster '{path}' (it is not a readable raster: {error}), needed by "
                         "{patch}. Check the '{field}' field."))
        else:
            message = (_("Cannot open the image raster '{path}' (the file does not exist: {error}), needed by "
                         "{patch}. Check the '{field}' field.") if missing else
                       _("Cannot open the image raster '{path}' (it is not a readable raster: {error}), needed by "
                         "{patch}. Check the '{field}' field."))
        raise BalancedSamplingError(message.format(
            path=path, error=exc, patch=chunk.describe(i), field=MASK_PATH if role == "mask" else IMAGE_PATH
        )) from exc


def _check_mask_dtype(dataset, path: str, chunk: _Chunk, i: int) -> None:
    dtype = np.dtype(dataset.dtypes[0])
    if not np.issubdtype(dtype, np.integer):
        raise BalancedSamplingError(
            _("The mask raster '{path}' (used by {patch}) has data type {dtype}; a mask must be an integer class "
              "raster (one class value per pixel, e.g. uint8). Convert it (e.g. gdal_translate -ot Byte) or check "
              "that the mask field does not point at an image.").format(
                path=path, patch=chunk.describe(i), dtype=dtype.name)
        )


def _check_window(dataset, path: str, role: str, chunk: _Chunk, i: int) -> None:
    row, col, size = (int(v) for v in chunk.windows[i])
    if row + size > dataset.height or col + size > dataset.width:
        message = (
            _("The window of {patch} covers rows {first_row}..{last_row} and columns {first_col}..{last_col}, outside "
              "the mask raster '{path}' ({height} rows x {width} columns). Fix row_off/col_off/patch_size, or check "
              "that image and mask share one pixel grid.") if role == "mask" else
            _("The window of {patch} covers rows {first_row}..{last_row} and columns {first_col}..{last_col}, outside "
              "the image raster '{path}' ({height} rows x {width} columns). Fix row_off/col_off/patch_size, or check "
              "that image and mask share one pixel grid."))
        raise BalancedSamplingError(message.format(
            patch=chunk.describe(i), first_row=row, last_row=row + size - 1, first_col=col,
            last_col=col + size - 1, path=path, height=dataset.height, width=dataset.width))


def image_fill(pixels: np.ndarray) -> Optional[np.ndarray]:
    """Pixels of a (bands, h, w) window that hold no image value: masked (declared nodata, GDAL mask or
    alpha) or not finite (NaN, inf) in any band, as an (h, w) bool array; None when the window can hold none
    (an unmasked integer window)."""
    fill = np.ma.getmaskarray(pixels).any(axis=0) if np.ma.isMaskedArray(pixels) else None
    data = np.ma.getdata(pixels)
    if np.issubdtype(data.dtype, np.floating):
        not_finite = ~np.isfinite(data).all(axis=0)
        fill = not_finite if fill is None else fill | not_finite
    return fill


def _read_black_border(dataset, row: int, col: int, size: int, tolerance: float) -> bool:
    """Read the window from every band once and test its border ring for black pixels or image fill
    (nodata, masked, NaN): a fill strip is the same scene edge as a black one, whatever value it holds.

    One window read beats four 1-pixel strip reads: each strip decompresses the same
    tiles again (profiled: 84 % of a reader's time went to the strips). The mask is read only where the
    raster declares one, so plain imagery keeps the single read.
    """
    masked = any(MaskFlags.all_valid not in flags for flags in dataset.mask_flag_enums)
    pixels = dataset.read(window=Window(col, row, size, size), masked=masked)
    fill = image_fill(pixels)
    if fill is not None and any(bool(strip.any()) for strip in border_ring(fill)):
        return True
    return has_black_border(np.ma.getdata(pixels), tolerance)


def _read_chunk(chunk: _Chunk, stop: Callable[[], bool]) -> Optional[_ChunkResult]:
    """Read every window of a chunk with its mask (and images) opened once; None if ``stop()`` said so.

    Runs in a reader thread or on a Dask worker (the executor passes ``stop``)."""
    n = len(chunk.positions)
    values, counts = [], []
    border_nodata, black_border = np.zeros(n, bool), np.zeros(n, bool)
    # A small GDAL block cache: windows are read once, and the default cache (5 % of RAM) held
    # 5.5 GB at 155k patches for no speed gain (bench/bench_stages.py).
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), ExitStack() as stack:
        mask = _open_raster(chunk.mask_path, "mask", chunk, 0, stack)
        _check_mask_dtype(mask, chunk.mask_path, chunk, 0)
        mask_bands = int(mask.count)
        images = {}  # one open dataset per distinct image path of the chunk (usually one)
        for i in range(n):
            if stop():
                return None
            row, col, size = (int(v) for v in chunk.windows[i])
            _check_window(mask, chunk.mask_path, "mask", chunk, i)
            try:
                window = mask.read(1, window=Window(col, row, size, size))
                window_values, window_counts = value_counts(window)
                values.append(window_values)
                counts.append(window_counts)
                border_nodata[i] = ring_has_value(window, chunk.nodata_class)
                if chunk.check_black_border:
                    image_path = chunk.patches[IMAGE_PATH].iat[i]
                    if image_path not in images:
                        images[image_path] = _open_raster(image_path, "image", chunk, i, stack)
                    _check_window(images[image_path], image_path, "image", chunk, i)
                    black_border[i] = _read_black_border(
                        images[image_path], row, col, size, chunk.black_tolerance
                    )
            except READ_ERRORS as exc:
                raise BalancedSamplingError(
                    _("Reading {patch} failed ({error}); the mask '{path}' or its image may be corrupt or "
                      "truncated, or (a VRT) miss one of its source files.").format(
                        patch=chunk.describe(i), error=error_chain(exc), path=chunk.mask_path)
                ) from exc
    lengths = np.fromiter((len(v) for v in values), np.int64, n)
    count_frame = pd.DataFrame({
        "position": np.repeat(chunk.positions, lengths),
        "value": np.concatenate(values) if values else np.zeros(0, np.int64),
        "pixels": np.concatenate(counts) if counts else np.zeros(0, np.int64),
    })
    flags = pd.DataFrame({"position": chunk.positions, BORDER_NODATA: border_nodata, BLACK_BORDER: black_border})
    return _ChunkResult(count_frame, flags, chunk.mask_path, mask_bands)


# --------------------------------------------------------------------------- assembly


def _warn_multiband_masks(results: list[_ChunkResult], progress: Progress) -> None:
    """One warning naming (the first few of) the mask rasters with more than one band."""
    bands = {}
    for result in results:
        if result.mask_bands > 1:
            bands[result.mask_path] = result.mask_bands
    if not bands:
        return
    names = sorted(bands)
    listed = ", ".join(_("{path} ({bands} bands)").format(path=p, bands=bands[p]) for p in names[:LISTED_MASKS])
    if len(names) > LISTED_MASKS:
        listed = _("{listed} and {more} more").format(listed=listed, more=len(names) - LISTED_MASKS)
    progress.warning(
        _("{n} mask raster(s) have more than one band: {listed}. Band 1 is read as the class mask and the other "
          "bands are ignored; if the classes are in another band (or the file is an RGB rendering of the mask), "
          "write a single-band class raster and point the mask field at it.").format(n=len(names), listed=listed)
    )


def _gather(results: list[_ChunkResult], n_rows: int):
    """Chunk results back in record order: (seen (V,) sorted mask values, (n, V) int64 pixel counts) and the two
    border flags."""
    counts = pd.concat([r.counts for r in results], ignore_index=True)
    flags = pd.concat([r.flags for r in results], ignore_index=True)
    positions = counts["position"].to_numpy(np.int64)
    flat_values = counts["value"].to_numpy(np.int64)
    seen = np.unique(flat_values)
    matrix = np.zeros((n_rows, len(seen)), np.int64)
    matrix[positions, np.searchsorted(seen, flat_values)] = counts["pixels"].to_numpy(np.int64)
    border = np.zeros(n_rows, bool)
    black = np.zeros(n_rows, bool)
    where = flags["position"].to_numpy(np.int64)
    border[where] = flags[BORDER_NODATA].to_numpy(bool)
    black[where] = flags[BLACK_BORDER].to_numpy(bool)
    return seen, matrix, border, black


def _check_classes(classes, nodata_class) -> Optional[np.ndarray]:
    """Sorted unique class values without ``nodata_class``, or None to take those seen."""
    if classes is None:
        return None
    values = np.asarray(list(classes))
    if values.size == 0 or not np.issubdtype(values.dtype, np.integer) or (values < 0).any():
        raise BalancedSamplingError(
            _("The mask classes must be a non-empty list of non-negative integers; got {value}.").format(
                value=repr(list(classes)))
        )
    values = np.unique(values.astype(np.int64))
    return values[values != nodata_class] if nodata_class is not None else values


def _classes_seen(seen: np.ndarray, nodata_class: Optional[int]) -> np.ndarray:
    classes = seen[seen != nodata_class] if nodata_class is not None else seen
    if (classes < 0).any():
        raise BalancedSamplingError(
            _("The masks hold negative class values {values} other than the nodata class ({nodata}); class values "
              "must be non-negative integers. Set the nodata class to the value meaning 'no data', or list the "
              "classes to use.").format(values=classes[classes < 0].tolist(), nodata=nodata_class)
        )
    return classes


def compute_mask_stats(
    records: pd.DataFrame,
    nodata_class: Optional[int] = 0,
    check_black_border: bool = True,
    black_tolerance: float = 0,
    classes: Optional[Sequence[int]] = None,
    workers: Optional[int] = None,
    progress: Optional[Progress] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Optional["Executor"] = None,
) -> pd.DataFrame:
    """Class proportions, entropy, nodata ratio and border flags of every patch window.

    Reads band 1 of each mask window once (rasterio windowed reads; one warning lists the
    masks that have more bands). Patches are grouped by mask raster and cut into chunks of
    at most ``chunk_size``; a chunk opens its mask
    (and, for the black-border test, its image) once and runs on a thread pool of
    ``workers`` threads (default ``min(4, cpu count)``; rasterio releases the GIL), or wherever ``executor``
    runs them (:mod:`balanced_sampling_plugin.compute`: e.g. a Dask cluster; same results).
    For the black-border test only the four 1-pixel border strips of the image are read.

    Parameters
    ----------
    records : DataFrame
        Patch table (see :func:`records.validate_records`); windows in pixels.
    nodata_class : int or None
        Mask value meaning "no data"; None if the masks have none.
    check_black_border : bool
        Test the image border for black pixels (else ``black_border`` is all False and
        images are not opened).
    black_tolerance : float
        A band value ``<= black_tolerance`` counts as black (image pixel units).
    classes : sequence of int or None
        The classes to report; None: every value seen in any window, except ``nodata_class``.
        Pixels of values not listed are left out of the proportions (a warning says so).
    workers : int or None
        Reader threads.
    progress : Progress or None
        Updated once per finished chunk; cancelling stops the reads and raises
        :class:`~balanced_sampling_plugin.errors.OperationCanceled`.
    chunk_size : int
        Most windows read with one open raster (one task).
    executor : compute.Executor or None
        Where the chunks run; None: a thread pool of ``workers`` threads in this process. The caller closes it.

    Returns
    -------
    DataFrame indexed like ``records`` with float64 ``cls_<c>`` proportions (sum to 1 over
    non-nodata pixels, all 0 for an all-nodata window), ``class_entropy`` (nats),
    ``nodata_ratio`` (0..1), ``border_nodata`` and ``black_border`` (bool).
    """
    progress = as_progress(progress)
    workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1 or chunk_size < 1:
        raise BalancedSamplingError(_("workers and chunk_size must be at least 1; got {workers} and {chunk_size}.")
                                    .format(workers=workers, chunk_size=chunk_size))
    required = (MASK_PATH, ROW_OFF, COL_OFF, PATCH_SIZE) + ((IMAGE_PATH,) if check_black_border else ())
    records = validate_records(records, required=required)
    classes = _check_classes(classes, nodata_class)

    chunks = _plan_chunks(records, chunk_size, nodata_class, check_black_border, black_tolerance)
    if executor is None:
        from .compute import InProcessExecutor

        executor = InProcessExecutor(workers)
    results = executor.map_chunks(_read_chunk, chunks, progress, sizes=[len(c.positions) for c in chunks])
    _warn_multiband_masks(results, progress)
    seen, matrix, border, black = _gather(results, len(records))

    if classes is None:
        classes = _classes_seen(seen, nodata_class)
    n_pixels = matrix.sum(axis=1)
    nodata_pixels = np.zeros(len(records), np.int64)
    if nodata_class is not None:
        nodata_pixels = _columns_of(seen, matrix, np.array([nodata_class], np.int64))[:, 0]
    class_pixels = _columns_of(seen, matrix, classes)
    unlisted = n_pixels - nodata_pixels - class_pixels.sum(axis=1) > 0
    if unlisted.any():
        progress.warning(
            _("{n} patches hold mask values outside the chosen classes {classes}; those pixels are left out of the "
              "class proportions.").format(n=int(unlisted.sum()), classes=classes.tolist())
        )

    proportions = proportions_from_counts(class_pixels)
    table = pd.DataFrame(proportions, index=records.index, columns=[class_column(c) for c in classes])
    table[CLASS_ENTROPY] = shannon_entropy(proportions)
    table[NODATA_RATIO] = np.divide(nodata_pixels, n_pixels, out=np.zeros(len(records)), where=n_pixels > 0)
    table[BORDER_NODATA] = border
    table[BLACK_BORDER] = black
    return table

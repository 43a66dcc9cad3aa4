"""Reading patch windows of image rasters as 3-channel 0..255 arrays for an image model.

- Band handling: a 1-band raster is replicated to 3 channels; otherwise ``bands`` (1-based,
  default 1, 2, 3) picks the three channels.
- Radiometry: uint8 imagery is used as is; any other dtype goes through ONE dataset-wide
  percentile stretch per channel (:func:`estimate_stretch`), never a per-patch one, so a dark
  patch stays darker than a bright one.
- Nodata, masked pixels and the part of a window outside the raster become black (0).
- :class:`PatchReader` is safe to share between threads: each thread keeps its own small
  set of open datasets, so a raster is opened once per worker, not once per patch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from .errors import BalancedSamplingError, error_chain
from .i18n import _
from .progress import Progress, as_progress

try:  # GDAL's own errors, which rasterio raises as they are from some reads (not RasterioError subclasses)
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover - other rasterio versions
    CPLE_BaseError = RasterioError
#: What reading pixels of a damaged raster raises.
READ_ERRORS = (RasterioError, CPLE_BaseError, OSError)

#: Open datasets kept per worker thread; work is ordered by image, so a few suffice.
OPEN_PER_THREAD = 4
#: Pixels per sampled patch used to estimate the stretch (bounds memory for big patches).
STRETCH_PIXELS_PER_PATCH = 16_384


@dataclass(frozen=True)
class Stretch:
    """Per-channel linear stretch ``(value - low) / (high - low) * 255``, clipped to 0..255."""

    low: np.ndarray  # (3,) float64, raster units
    high: np.ndarray  # (3,) float64, raster units, > low

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(3, h, w) raster values -> float32 0..255."""
        low, high = self.low[:, None, None], self.high[:, None, None]
        return np.clip((pixels - low) / (high - low) * 255.0, 0.0, 255.0).astype(np.float32)


def stretch_from_text(text: str) -> Stretch | None:
    """A fixed stretch from ``"low,high"`` (every channel) or ``"l1,l2,l3;h1,h2,h3"`` (per channel), raster units;
    None for an empty text. Fixed values keep the embeddings of non-8-bit imagery comparable (and cached) when
    the patch list grows, where a stretch estimated from the patches moves."""
    text = (text or "").strip()
    if not text:
        return None
    message = _("Stretch values '{text}' are not 'low,high' (every channel) or 'l1,l2,l3;h1,h2,h3' (per channel) "
                "with each high above its low, in the image's units, e.g. '0,3000' for Sentinel-2 reflectance.")
    try:
        if ";" in text:
            low, high = (np.array([float(v) for v in part.split(",")]) for part in text.split(";"))
        else:
            low, high = (np.full(3, float(v)) for v in text.split(","))
    except ValueError:
        raise BalancedSamplingError(message.format(text=text)) from None
    if low.shape != (3,) or high.shape != (3,) or not (np.isfinite(low).all() and np.isfinite(high).all()) \
            or (high <= low).any():
        raise BalancedSamplingError(message.format(text=text))
    return Stretch(low=low, high=high)


def bands_from_text(text: str) -> tuple[int, int, int]:
    """The three 1-based raster bands fed to the model as red, green, blue, from ``"4,3,2"`` (commas or
    semicolons); an empty text is ``(1, 2, 3)``."""
    text = (text or "").strip() or "1,2,3"
    try:
        bands = tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        bands = ()
    if len(bands) != 3 or min(bands) < 1:
        raise BalancedSamplingError(
            _("Bands must be three band numbers such as 1,2,3; got '{text}'.").format(text=text))
    return bands


def check_bands(image_paths, bands, sample: int = 20) -> None:
    """Raise :func:`channel_bands`'s error for the first of (at most ``sample`` of) ``image_paths`` that the band
    selection does not fit, reading headers only: a check before hours of work, not a guarantee (every image
    is checked again when its patches are read). Unreadable images are left to that read, which names them."""
    import rasterio

    for path in list(dict.fromkeys(str(p) for p in image_paths))[:sample]:
        try:
            with rasterio.open(path) as dataset:
                count = dataset.count
        except Exception:  # noqa: BLE001 - named with GDAL's reason when the patches are read
            continue
        channel_bands(count, bands, path)


def channel_bands(count: int, bands, path: str) -> tuple[int, int, int]:
    """The 1-based raster bands read into the 3 channels of an image with ``count`` bands."""
    if count == 1:
        return (1, 1, 1)
    bands = tuple(int(b) for b in bands)
    if len(bands) != 3 or min(bands) < 1 or max(bands) > count:
        raise BalancedSamplingError(
            _("Image '{path}' has {count} bands; the band selection {bands} must name 3 bands between 1 and {count}. "
              "Set the bands to use (e.g. 1,2,3 for red, green, blue).").format(path=path, count=count, bands=bands)
        )
    return bands


class PatchReader:
    """Thread-safe reader of patch windows; call :meth:`close` when done (or use ``with``)."""

    def __init__(self, bands=(1, 2, 3), stretch: Stretch | None = None):
        self.bands = tuple(bands)
        self.stretch = stretch
        self._local = threading.local()
        self._all_open: list = []
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def dataset(self, path: str):
        """The calling thread's open dataset for ``path``."""
        cache = getattr(self._local, "datasets", None)
        if cache is None:
            cache = self._local.datasets = OrderedDict()
        if path in cache:
            cache.move_to_end(path)
            return cache[path]
        try:
            dataset = rasterio.open(path)
        except (RasterioIOError, OSError) as exc:
            raise BalancedSamplingError(
                _("Cannot open image '{path}': {error}. Check the image_path field.").format(path=path, error=exc)
            ) from exc
        cache[path] = dataset
        with self._lock:
            self._all_open.append(dataset)
        if len(cache) > OPEN_PER_THREAD:
            oldest = cache.popitem(last=False)[1]
            with self._lock:
                self._all_open.remove(oldest)
            oldest.close()
        return dataset

    def read_raw(self, path: str, row_off: int, col_off: int, size: int):
        """Raster values of a window: ((3, size, size) float64, (size, size) bool valid mask).

        Pixels outside the raster, nodata or masked in any channel are invalid (value 0).
        """
        dataset = self.dataset(path)
        channels = channel_bands(dataset.count, self.bands, path)
        top, left = max(row_off, 0), max(col_off, 0)
        bottom, right = min(row_off + size, dataset.height), min(col_off + size, dataset.width)
        if bottom <= top or right <= left:
            raise BalancedSamplingError(
                _("The patch window row_off={row_off}, col_off={col_off}, size={size} lies outside image '{path}' "
                  "({height} x {width} px).").format(row_off=row_off, col_off=col_off, size=size, path=path,
                                                     height=dataset.height, width=dataset.width)
            )
        unique = sorted(set(channels))
        data = read_window(dataset, path, unique, Window(left, top, right - left, bottom - top), masked=True)
        picked = data[[unique.index(b) for b in channels]]
        values = np.zeros((3, size, size), dtype=np.float64)
        valid = np.zeros((size, size), dtype=bool)
        inner = (slice(top - row_off, bottom - row_off), slice(left - col_off, right - col_off))
        inner_valid = ~np.ma.getmaskarray(picked).any(axis=0)
        filled = np.ma.filled(picked.astype(np.float64), 0.0)
        inner_valid &= np.isfinite(filled).all(axis=0)
        values[(slice(None), *inner)] = np.where(inner_valid, filled, 0.0)
        valid[inner] = inner_valid
        return values, valid

    def read(self, path: str, row_off: int, col_off: int, size: int) -> np.ndarray:
        """A window as a (3, size, size) float32 image in 0..255 (invalid pixels 0)."""
        fast = self._read_plain_uint8(path, row_off, col_off, size)
        if fast is not None:
            return fast
        values, valid = self.read_raw(path, row_off, col_off, size)
        if self.dataset(path).dtypes[0] == "uint8":
            image = values.astype(np.float32)
        elif self.stretch is None:
            raise BalancedSamplingError(
                _("Image '{path}' is {dtype}, not uint8: it needs a percentile stretch, which was not estimated.")
                .format(path=path, dtype=self.dataset(path).dtypes[0])
            )
        else:
            image = self.stretch.apply(values)
        image[:, ~valid] = 0.0
        return image

    def _read_plain_uint8(self, path: str, row_off: int, col_off: int, size: int):
        """The window of a uint8 raster without nodata, mask or alpha, lying wholly inside it, read straight
        as uint8 (what :meth:`read_raw` gives there, without its masked float64 detour: ~50x faster); None
        for any other window, which takes the general path."""
        dataset = self.dataset(path)
        if dataset.dtypes[0] != "uint8" or row_off < 0 or col_off < 0:
            return None
        if row_off + size > dataset.height or col_off + size > dataset.width:
            return None
        channels = channel_bands(dataset.count, self.bands, path)
        unique = sorted(set(channels))
        flags = dataset.mask_flag_enums
        if any(dataset.dtypes[b - 1] != "uint8" or flags[b - 1] != [MaskFlags.all_valid] for b in unique):
            return None
        data = read_window(dataset, path, unique, Window(col_off, row_off, size, size))
        return data[[unique.index(b) for b in channels]].astype(np.float32)

    def is_uint8(self, path: str) -> bool:
        return self.dataset(path).dtypes[0] == "uint8"

    def close(self) -> None:
        with self._lock:
            for dataset in self._all_open:
                dataset.close()
            self._all_open.clear()
        self._local = threading.local()


def read_window(dataset, path: str, bands, window: Window, **options) -> np.ndarray:
    """``dataset.read(bands, window=window, **options)``; a read that fails (a truncated file, a VRT whose source
    is missing) raises a :class:`BalancedSamplingError` naming the image, the window and GDAL's reason."""
    try:
        return dataset.read(bands, window=window, **options)
    except READ_ERRORS as exc:
        raise BalancedSamplingError(
            _("Reading the window row_off={row_off}, col_off={col_off} ({height} x {width} px) of image '{path}' "
              "failed: {reason}. The file may be damaged or truncated, or (a VRT) miss one of its source files: "
              "check that it opens in QGIS, or leave its patches out.").format(
                row_off=int(window.row_off), col_off=int(window.col_off), height=int(window.height),
                width=int(window.width), path=path, reason=error_chain(exc))) from exc


def check_windows(reader: PatchReader, windows, describe, progress: Progress | None = None) -> None:
    """Refuse, before any model runs, a window that leaves its image or a band selection the image lacks.

    ``windows`` is a sequence of ``(image_path, row_off, col_off, patch_size)`` (pixels);
    ``describe(i)`` names patch ``i`` in messages. Each image is opened once (sort ``windows``
    by path to keep it so). Mirrors Compute composition clusters, which refuses the same windows.
    ``progress`` moves from 0 to 1 over the windows and is checked for cancel at each new image
    (opening thousands of images, on network storage, takes minutes).
    """
    progress = as_progress(progress)
    last_path = None
    for i, (path, row, col, size) in enumerate(windows):
        if path != last_path:
            progress.update(i, len(windows))
            last_path = path
        dataset = reader.dataset(path)
        channel_bands(dataset.count, reader.bands, path)
        if row < 0 or col < 0 or row + size > dataset.height or col + size > dataset.width:
            raise BalancedSamplingError(
                _("The window of {patch} covers rows {first_row}..{last_row} and columns {first_col}..{last_col}, "
                  "outside the image raster '{path}' ({height} rows x {width} columns). Fix its "
                  "row_off/col_off/patch_size fields, or rebuild the footprints with '{algorithm}'.").format(
                    patch=describe(i), first_row=row, last_row=row + size - 1, first_col=col, last_col=col + size - 1,
                    path=path, height=dataset.height, width=dataset.width, algorithm=_("Create patch footprints"))
            )


def estimate_stretch(reader: PatchReader, windows, percentiles=(2.0, 98.0), max_patches: int = 32,
                     progress: Progress | None = None) -> Stretch | None:
    """One dataset-wide per-channel percentile stretch from a sample of non-uint8 patches.

    ``windows`` is a sequence of ``(image_path, row_off, col_off, patch_size)``; up to
    ``max_patches`` of the non-uint8 ones, evenly spaced, are read. Invalid pixels and
    black-border pixels (0 in every channel) are left out. Returns None when every image
    is uint8 (no stretch needed). ``percentiles`` may instead be a :class:`Stretch` of fixed values
    (:func:`stretch_from_text`): returned as is where an image needs a stretch, nothing sampled.
    """
    fixed = isinstance(percentiles, Stretch)
    if not fixed:
        low_pct, high_pct = float(percentiles[0]), float(percentiles[1])
        if not 0.0 <= low_pct < high_pct <= 100.0:
            raise BalancedSamplingError(
                _("Stretch percentiles must satisfy 0 <= low < high <= 100; got {value}.").format(value=percentiles))
    progress = as_progress(progress)
    uint8 = {}
    for path in dict.fromkeys(w[0] for w in windows):
        progress.check_canceled()  # one open per image: minutes for many images on network storage
        uint8[path] = reader.is_uint8(path)
    candidates = [w for w in windows if not uint8[w[0]]]
    if not candidates:
        return None
    if fixed:
        return percentiles
    count = min(max_patches, len(candidates))
    picks = np.unique(np.linspace(0, len(candidates) - 1, num=count).round().astype(int))
    samples = []
    for i in picks:
        progress.check_canceled()
        values, valid = reader.read_raw(*candidates[i])
        valid &= values.any(axis=0)
        pixels = values[:, valid]
        samples.append(pixels[:, :: max(1, pixels.shape[1] // STRETCH_PIXELS_PER_PATCH)])
    pixels = np.concatenate(samples, axis=1)
    if pixels.shape[1] == 0:
        # Every sampled patch is all nodata: nothing to estimate from, keep a unit stretch.
        return Stretch(low=np.zeros(3), high=np.ones(3))
    low = np.percentile(pixels, low_pct, axis=1)
    high = np.percentile(pixels, high_pct, axis=1)
    return Stretch(low=low, high=np.maximum(high, low + 1e-6))

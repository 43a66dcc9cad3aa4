"""Patch windows over image/mask raster pairs, and their footprints in map coordinates."""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .contract import EDGE_MODES
from .errors import BalancedSamplingError
from .i18n import _
from .progress import Progress, as_progress
from .records import COL_OFF, IMAGE_PATH, MASK_PATH, PATCH_ID, PATCH_SIZE, ROW_OFF, normalize_path, patch_id

#: How windows that would cross the raster's right/bottom edge are handled (enum order is public).

# Name parts that tell an image from its mask ("tile_001_mask.tif" pairs with "tile_001.tif").
_ROLE_TOKENS = re.compile(r"([_\-. ](mask|masks|label|labels|gt|seg|image|images|img|rgb))+$", re.IGNORECASE)


def window_offsets(length: int, patch_size: int, stride: int, edge: str = "drop") -> np.ndarray:
    """Offsets (pixels) of the windows along one axis of ``length`` pixels.

    ``drop`` keeps only windows that fit entirely; ``shift`` adds one last window
    aligned to the edge, so every pixel is covered and every window stays full-size.
    A raster shorter than ``patch_size`` yields no window.
    """
    if patch_size <= 0 or stride <= 0:
        raise BalancedSamplingError(_("patch size ({patch_size}) and stride ({stride}) must be positive.").format(
            patch_size=patch_size, stride=stride))
    if edge not in EDGE_MODES:
        raise BalancedSamplingError(_("Unknown edge mode {value}; expected one of {choices}.").format(
            value=repr(edge), choices=", ".join(EDGE_MODES)))
    if length < patch_size:
        return np.empty(0, dtype=np.int64)
    offsets = np.arange(0, length - patch_size + 1, stride, dtype=np.int64)
    last = length - patch_size
    if edge == "shift" and offsets[-1] != last:
        offsets = np.append(offsets, last)
    return offsets


def raster_windows(height: int, width: int, patch_size: int, stride: int, edge: str = "drop") -> np.ndarray:
    """``(n, 2)`` array of ``(row_off, col_off)`` for the windows of a ``height x width`` raster, row-major."""
    rows = window_offsets(height, patch_size, stride, edge)
    cols = window_offsets(width, patch_size, stride, edge)
    grid = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1)
    return grid.reshape(-1, 2)


def pairing_key(path: str) -> str:
    """The name an image and its mask share: the file stem without role words like ``_mask``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return _ROLE_TOKENS.sub("", stem).lower() or stem.lower()


def pair_images_and_masks(images: list[str], masks: list[str]) -> list[tuple[str, str]]:
    """Match each image to the mask with the same :func:`pairing_key`.

    Raises :class:`BalancedSamplingError` listing the images without a mask, and
    any name that matches more than one mask.
    """
    if not images:
        raise BalancedSamplingError(_("No image raster was given."))
    by_key: dict[str, list[str]] = {}
    for mask in masks:
        by_key.setdefault(pairing_key(mask), []).append(mask)
    pairs, unmatched = [], []
    for image in images:
        candidates = [m for m in by_key.get(pairing_key(image), []) if normalize_path(m) != normalize_path(image)]
        if len(candidates) > 1:
            raise BalancedSamplingError(
                _("Image {image} matches several masks ({masks}); give one mask per image name.").format(
                    image=image, masks=", ".join(candidates))
            )
        if not candidates:
            unmatched.append(image)
        else:
            pairs.append((image, candidates[0]))
    if unmatched:
        raise BalancedSamplingError(
            _("No mask found for image(s): {images}. An image pairs with the mask whose file name is the same apart "
              "from words like '_mask'/'_label' (e.g. tile_01.tif and tile_01_mask.tif).").format(
                images=", ".join(unmatched))
        )
    return pairs


def find_pairs(image_folder: str, image_pattern: str, mask_folder: str, mask_pattern: str) -> list[tuple[str, str]]:
    """Image/mask pairs from two folders (they may be the same) and shell patterns like ``*.tif``."""
    def listing(folder: str, pattern: str) -> list[str]:
        if not os.path.isdir(folder):
            raise BalancedSamplingError(_("Folder {folder} does not exist.").format(folder=folder))
        # Case-insensitive, as on Windows and in QGIS's file filters: *.tif also finds T1.TIF.
        names = sorted(n for n in os.listdir(folder) if fnmatch.fnmatchcase(n.lower(), pattern.lower()))
        return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]

    images = listing(image_folder, image_pattern)
    masks = listing(mask_folder, mask_pattern)
    if not images:
        raise BalancedSamplingError(_("No file in {folder} matches {pattern}.").format(
            folder=image_folder, pattern=repr(image_pattern)))
    if not masks:
        raise BalancedSamplingError(_("No file in {folder} matches {pattern}.").format(
            folder=mask_folder, pattern=repr(mask_pattern)))
    if normalize_path(image_folder) == normalize_path(mask_folder):
        # One folder for both: files whose name carries a mask word are masks.
        mask_set = {normalize_path(m) for m in masks
                    if pairing_key(m) != os.path.splitext(os.path.basename(m))[0].lower()}
        images = [i for i in images if normalize_path(i) not in mask_set]
        masks = [m for m in masks if normalize_path(m) in mask_set]
    try:
        return pair_images_and_masks(images, masks)
    except BalancedSamplingError as exc:
        # A mask the pattern left out would have paired: say so, the user changed only the image pattern.
        keys = {pairing_key(i) for i in images}
        left_out = [m for m in listing(mask_folder, "*")
                    if m not in masks and m not in images and pairing_key(m) in keys]
        if not left_out:
            raise
        raise BalancedSamplingError("{} {}".format(exc, _(
            "The mask folder holds {files}, which the mask pattern {pattern} leaves out: widen the mask pattern.")
            .format(files=", ".join(os.path.basename(m) for m in left_out[:3]), pattern=repr(mask_pattern)))) from exc


@dataclass
class RasterGrid:
    """Pixel grid of a raster: size, affine geotransform (GDAL order) and CRS."""

    path: str
    width: int
    height: int
    transform: tuple  # (a, b, c, d, e, f) of affine.Affine: x = a*col + b*row + c, y = d*col + e*row + f
    crs_wkt: str
    crs_authid: str  # e.g. "EPSG:32633", "" when the CRS has no authority code


def read_grid(path: str) -> RasterGrid:
    """Open ``path`` with rasterio and return its grid; errors name the file."""
    import rasterio

    if not os.path.exists(path):
        raise BalancedSamplingError(_("Raster {path} does not exist.").format(path=path))
    try:
        # A raster without georeferencing is reported once by build_footprints, not as rasterio's warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                crs = ds.crs
                authid = ""
                if crs is not None:
                    epsg = crs.to_epsg()
                    authid = f"EPSG:{epsg}" if epsg else ""
                t = ds.transform
                return RasterGrid(path, ds.width, ds.height, (t.a, t.b, t.c, t.d, t.e, t.f),
                                  crs.to_wkt() if crs else "", authid)
    except rasterio.errors.RasterioIOError as exc:
        raise BalancedSamplingError(_("Raster {path} cannot be read: {error}").format(path=path, error=exc)) from exc


def crs_name(grid: RasterGrid) -> str:
    """How messages name a raster's CRS."""
    if grid.crs_authid:
        return grid.crs_authid
    if grid.crs_wkt:
        return _("a CRS without EPSG code ({wkt}...)").format(wkt=grid.crs_wkt[:60])
    return _("no CRS")


def layer_grid(grid: RasterGrid, first: RasterGrid | None) -> RasterGrid:
    """The grid whose CRS the footprint layer takes: the first raster's (``first``, or ``grid`` when it is the
    first). Rasters in another CRS are reprojected to it (:func:`rings_in_layer_crs`); one georeferenced and one
    not cannot share a layer, and raise."""
    if first is not None and bool(_crs_key(grid)) != bool(_crs_key(first)):
        raise BalancedSamplingError(
            _("Raster {path} is in {crs} but {first_path} is in {first_crs}; a footprint layer cannot place rasters "
              "with and without a CRS together. Give every raster a CRS, or run the others apart.").format(
                path=grid.path, crs=crs_name(grid), first_path=first.path, first_crs=crs_name(first))
        )
    return first or grid


#: Points per window edge when a footprint is reprojected (a straight edge in one CRS is curved in another).
REPROJECTED_POINTS_PER_EDGE = 8


def rings_in_layer_crs(rings: list, grid: RasterGrid, layer: RasterGrid) -> list:
    """The closed window rings of ``grid``'s raster (map coordinates in its CRS) in the ``layer`` grid's CRS,
    each edge densified to :data:`REPROJECTED_POINTS_PER_EDGE` points; ``rings`` themselves when the CRS is the
    same. Raises, naming the raster, when a corner has no place in the layer's CRS."""
    if not rings or same_crs(grid, layer):
        return rings
    from rasterio.crs import CRS
    from rasterio.warp import transform

    closed = np.asarray(rings, dtype=np.float64)  # (m, 5, 2)
    steps = np.arange(REPROJECTED_POINTS_PER_EDGE) / REPROJECTED_POINTS_PER_EDGE
    start, end = closed[:, :4, None, :], closed[:, 1:5, None, :]
    points = (start + (end - start) * steps[None, None, :, None]).reshape(len(closed), -1, 2)
    points = np.concatenate([points, points[:, :1]], axis=1)  # closed again
    outside = BalancedSamplingError(
        _("The footprints of {path} ({crs}) cannot be placed in the layer's CRS {layer_crs} (taken from {first}): "
          "some of its corners lie outside that CRS's area. Check the raster's georeferencing, or run it "
          "apart.").format(path=grid.path, crs=crs_name(grid), layer_crs=crs_name(layer), first=layer.path))
    try:
        xs, ys = transform(CRS.from_wkt(grid.crs_wkt), CRS.from_wkt(layer.crs_wkt), points[..., 0].ravel(),
                           points[..., 1].ravel())
    except Exception:  # noqa: BLE001 - PROJ refuses coordinates outside the CRS's domain (e.g. latitude > 90)
        raise outside from None
    moved = np.stack([np.asarray(xs), np.asarray(ys)], axis=-1).reshape(points.shape)
    if not np.isfinite(moved).all():
        raise outside
    return [[(float(x), float(y)) for x, y in ring] for ring in moved]


def say_reprojected(reprojected: list, total: int, layer: RasterGrid | None, progress: Progress) -> None:
    """Log that the rasters of ``reprojected`` ((path, CRS name) each) had their footprints reprojected."""
    if reprojected and layer is not None:
        progress.info(_("{n} of {total} rasters are in another CRS than the footprint layer's {crs} (the CRS of "
                        "{first}), e.g. {path} in {other}: their footprints are reprojected to it. Their patches are "
                        "still read on each raster's own pixel grid, so the weights are not affected.").format(
            n=len(reprojected), total=total, crs=crs_name(layer), first=layer.path, path=reprojected[0][0],
            other=reprojected[0][1]))


def same_crs(grid: RasterGrid, other: RasterGrid) -> bool:
    """Whether two rasters are in one CRS (same EPSG code, or the same WKT where there is none)."""
    return _crs_key(grid) == _crs_key(other)


def _crs_key(grid: RasterGrid) -> str:
    return grid.crs_authid or grid.crs_wkt


def check_mask_grid(image: RasterGrid, mask: RasterGrid) -> None:
    """Raise unless ``mask`` lies on ``image``'s pixel grid: same CRS, size and geotransform.

    A mask without a CRS is taken at its word when its size and geotransform match
    (windows are read by pixel offsets); a mask *in another* CRS is refused.
    """
    if _crs_key(image) and _crs_key(mask) and _crs_key(image) != _crs_key(mask):
        raise BalancedSamplingError(
            _("Mask {mask} is in {mask_crs} but its image {image} is in {image_crs}; a mask must share its image's "
              "CRS and pixel grid — reproject the mask onto the image's grid (same CRS, extent and pixel size, "
              "nearest-neighbour resampling) or pair it with the right image.").format(
                mask=mask.path, mask_crs=crs_name(mask), image=image.path, image_crs=crs_name(image))
        )
    if (image.width, image.height) != (mask.width, mask.height):
        raise BalancedSamplingError(
            _("Image {image} is {image_height} rows x {image_width} columns but its mask {mask} is {mask_height} "
              "rows x {mask_width} columns; they must share one pixel grid.").format(
                image=image.path, image_width=image.width, image_height=image.height, mask=mask.path,
                mask_width=mask.width, mask_height=mask.height)
        )
    if not np.allclose(image.transform, mask.transform, rtol=0, atol=1e-6 * max(1.0, abs(image.transform[0]))):
        raise BalancedSamplingError(
            _("Image {image} and mask {mask} have different geotransforms (origin or pixel size: {image_grid} vs "
              "{mask_grid}); they must share one pixel grid — resample the mask onto the image's grid (nearest "
              "neighbour).").format(image=image.path, mask=mask.path, image_grid=_origin_and_size(image),
                                    mask_grid=_origin_and_size(mask))
        )


def _origin_and_size(grid: RasterGrid) -> str:
    a, _, c, _, e, f = grid.transform
    return f"origin ({c:.12g}, {f:.12g}), pixel {a:.12g} x {abs(e):.12g}"


def window_ring(transform: tuple, row_off: int, col_off: int, size: int) -> list[tuple[float, float]]:
    """Closed ring (5 map-coordinate points) of a window's outline; exact for rotated grids too."""
    a, b, c, d, e, f = transform
    corners = [(col_off, row_off), (col_off + size, row_off), (col_off + size, row_off + size),
               (col_off, row_off + size), (col_off, row_off)]
    return [(a * col + b * row + c, d * col + e * row + f) for col, row in corners]


@dataclass
class FootprintResult:
    records: pd.DataFrame  # image_path, mask_path, row_off, col_off, patch_size, patch_id
    rings: list  # one closed ring per record, map coordinates in the layer's CRS (the first raster's)
    crs_wkt: str
    crs_authid: str
    skipped: list = field(default_factory=list)  # rasters smaller than one patch


def build_footprints(
    pairs: list[tuple[str, str]],
    patch_size: int,
    stride: int | None = None,
    edge: str = "drop",
    progress: Progress | None = None,
) -> FootprintResult:
    """Windows of every image/mask pair, with their footprints.

    Image and mask of a pair must share CRS, size and geotransform (:func:`check_mask_grid`). The output layer
    has one CRS, the first image's: footprints of images in another CRS are reprojected to it (and said).
    ``stride`` defaults to ``patch_size``.
    """
    progress = as_progress(progress)
    stride = patch_size if stride in (None, 0) else stride
    frames, rings, skipped = [], [], []
    first = None
    largest = None  # (rows, columns, path) of the largest raster, for the message when none holds a patch
    uncovered = 0  # rasters with an edge strip no window reaches (edge "drop")
    unplaced = []  # images without a CRS nor a geotransform: footprints in pixel coordinates
    reprojected = []  # (image, its CRS) of the rasters in another CRS than the layer's
    for done, (image, mask) in enumerate(pairs):
        img, msk = read_grid(image), read_grid(mask)
        if not img.crs_wkt and img.transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0):
            unplaced.append(image)
        check_mask_grid(img, msk)
        first = layer_grid(img, first)
        if not same_crs(img, first):
            reprojected.append((image, crs_name(img)))
        windows = raster_windows(img.height, img.width, patch_size, stride, edge)
        if largest is None or img.height * img.width > largest[0] * largest[1]:
            largest = (img.height, img.width, image)
        if edge == "drop" and len(windows) and any(
                (extent - patch_size) % stride for extent in (img.height, img.width)):
            uncovered += 1
        if len(windows) == 0:
            skipped.append(image)
            progress.warning(_("Raster {path} ({width}x{height} px) is smaller than one {size} px patch; no patch "
                               "made.").format(path=image, width=img.width, height=img.height, size=patch_size))
        else:
            frame = pd.DataFrame({
                IMAGE_PATH: image, MASK_PATH: mask,
                ROW_OFF: windows[:, 0], COL_OFF: windows[:, 1], PATCH_SIZE: int(patch_size),
            })
            frame[PATCH_ID] = [patch_id(image, r, c, patch_size) for r, c in windows]
            frames.append(frame)
            rings.extend(rings_in_layer_crs([window_ring(img.transform, int(r), int(c), patch_size)
                                             for r, c in windows], img, first))
        progress.update(done + 1, len(pairs))
    if not frames:
        raise BalancedSamplingError(
            _("No raster is large enough for a {size} px patch (the largest, {path}, is {rows} rows x {columns} "
              "columns); choose a smaller patch size.").format(
                size=patch_size, path=largest[2] if largest else "", rows=largest[0] if largest else 0,
                columns=largest[1] if largest else 0))
    if uncovered:
        progress.info(_("{n} of {total} rasters have a strip at the right or bottom edge that no {size} px patch "
                        "covers (edge mode drop); edge mode shift adds a last patch flush with the edge.").format(
            n=uncovered, total=len(pairs), size=patch_size))
    say_reprojected(reprojected, len(pairs), first, progress)
    if unplaced:
        progress.warning(_("{n} of {total} images are not georeferenced (no CRS, no geotransform), e.g. {path}: their "
                           "footprints are in pixel coordinates and lie on top of each other on the map. The weights "
                           "are not affected; the map view and the coreset's spatial steps are.").format(
            n=len(unplaced), total=len(pairs), path=unplaced[0]))
    records = pd.concat(frames, ignore_index=True)
    return FootprintResult(records, rings, first.crs_wkt, first.crs_authid, skipped)

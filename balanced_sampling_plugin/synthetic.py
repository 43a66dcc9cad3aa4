"""A small synthetic, badly imbalanced segmentation dataset (GeoTIFF image/mask pairs).

Used by ``make demo``, the tests and the benchmarks. Masks hold 6 classes on top of
nodata 0: background (1) covers ~90% of the valid pixels, the rare class (6) ~1.6% (the rarest),
concentrated in a few tiles the way a rare urban class is. Some tiles have a nodata
strip on their border (mask 0, image black in all bands), as tiles on the edge of
an acquisition do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

NODATA_CLASS = 0
BACKGROUND_CLASS = 1
ROAD_CLASS = 4
RARE_CLASS = 6
#: Target share of the valid pixels per foreground class; background takes the rest.
CLASS_SHARES = {2: 0.026, 3: 0.023, ROAD_CLASS: 0.021, 5: 0.021, RARE_CLASS: 0.016}
# One colour per class (RGB) so that the imagery is visually tied to the mask.
CLASS_COLOURS = {
    BACKGROUND_CLASS: (120, 140, 90),  # fields
    2: (40, 70, 140),  # water
    3: (30, 100, 40),  # forest
    4: (150, 150, 150),  # roads
    5: (170, 130, 80),  # bare soil
    RARE_CLASS: (200, 60, 50),  # buildings
}


@dataclass
class SyntheticDataset:
    folder: str
    images: list[str]
    masks: list[str]
    crs: str
    pixel_size: float


def _paint_class(mask: np.ndarray, cls: int, target_pixels: int, rng: np.random.Generator, max_radius: int,
                 n_sites: int) -> None:
    """Paint ellipses of ``cls`` over background, grouped around ``n_sites`` random sites, until
    ``target_pixels`` are reached. Grouping mimics real land cover: buildings form settlements,
    forest forms stands, so a class is concentrated in some patches rather than sprinkled over all."""
    height, width = mask.shape
    rows, cols = np.ogrid[:height, :width]
    sites = rng.uniform(0, [height, width], size=(max(1, n_sites), 2))
    spread = max(height, width) / 10
    painted = int((mask == cls).sum())
    for _ in range(10_000):
        if painted >= target_pixels:
            return
        cy, cx = sites[rng.integers(len(sites))] + rng.normal(0, spread, size=2)
        ry, rx = rng.integers(3, max_radius + 1, size=2)
        blob = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0
        blob &= mask == BACKGROUND_CLASS
        mask[blob] = cls
        painted += int(blob.sum())


def _paint_road(mask: np.ndarray, cls: int, rng: np.random.Generator, width_px: int) -> None:
    """A straight road across the tile: roads reach many patches, each with a thin share."""
    size = mask.shape[0]
    rows, cols = np.mgrid[:size, :size]
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(0.25, 0.75) * size
    distance = np.abs((cols - size / 2) * np.sin(angle) - (rows - size / 2) * np.cos(angle) + offset - size / 2)
    mask[(distance <= width_px / 2) & (mask == BACKGROUND_CLASS)] = cls


def synthetic_tile(tile_size: int, rng: np.random.Generator, rare_weight: float, nodata_edge: str | None):
    """One ``(mask (h,w) uint8, image (3,h,w) uint8)`` pair."""
    mask = np.full((tile_size, tile_size), BACKGROUND_CLASS, dtype=np.uint8)
    area = tile_size * tile_size
    for cls, share in CLASS_SHARES.items():
        if cls == ROAD_CLASS:
            _paint_road(mask, cls, rng, width_px=max(2, round(share * tile_size)))
            continue
        weight = rare_weight if cls == RARE_CLASS else 1.0
        radius = max(4, tile_size // (24 if cls == RARE_CLASS else 12))
        _paint_class(mask, cls, int(share * weight * area), rng, radius, n_sites=1 if cls == RARE_CLASS else 2)
    if nodata_edge:
        strip = max(8, tile_size // 12)
        edge_slice = {"left": np.s_[:, :strip], "bottom": np.s_[-strip:, :],
                      "top": np.s_[:strip, :], "right": np.s_[:, -strip:]}[nodata_edge]
        mask[edge_slice] = NODATA_CLASS

    colours = np.zeros((7, 3), dtype=np.float32)
    for cls, rgb in CLASS_COLOURS.items():
        colours[cls] = rgb
    image = colours[mask].transpose(2, 0, 1)  # (3, h, w)
    # Texture: pixel noise plus a smooth illumination gradient, so patches differ visually.
    image = image + rng.normal(0, 12, size=image.shape)
    yy, xx = np.mgrid[:tile_size, :tile_size] / tile_size
    image = image + 20 * np.sin(2 * np.pi * (yy * rng.uniform(0.5, 2) + xx * rng.uniform(0.5, 2)))
    image = np.clip(image, 1, 255).astype(np.uint8)  # 1, not 0: only nodata is black
    image[:, mask == NODATA_CLASS] = 0
    return mask, image


def _write_unless_same(path: str, array: np.ndarray, profile: dict) -> None:
    """Write ``array`` (bands, rows, cols) as a GeoTIFF at ``path``, leaving an existing file with the same bytes
    untouched: a re-generated dataset keeps its files' modification times, so embedding caches stay valid."""
    import filecmp

    import rasterio

    partial = f"{path}.partial-{os.getpid()}.tif"
    with rasterio.open(partial, "w", **profile) as dst:
        dst.write(array)
    if os.path.isfile(path) and filecmp.cmp(partial, path, shallow=False):
        os.remove(partial)
    else:
        os.replace(partial, path)


def make_synthetic_dataset(
    folder: str,
    n_tiles: int = 6,
    tile_size: int = 512,
    seed: int = 0,
    crs: str = "EPSG:32633",
    pixel_size: float = 0.5,
) -> SyntheticDataset:
    """Write ``n_tiles`` image/mask GeoTIFF pairs side by side into ``folder/images`` and ``folder/masks``.

    The rare class goes mostly to every third tile; tiles 1 and 4 get a nodata strip
    (left and bottom). Georeferenced in ``crs`` with square ``pixel_size`` metres.
    """
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    image_dir, mask_dir = os.path.join(folder, "images"), os.path.join(folder, "masks")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    n_rare_tiles = len(range(0, n_tiles, 3))
    images, masks = [], []
    for i in range(n_tiles):
        # Rare pixels concentrated on a few tiles, total share kept at ~CLASS_SHARES[RARE_CLASS].
        rare_weight = (n_tiles / n_rare_tiles) * 0.9 if i % 3 == 0 else 0.1
        nodata_edge = {1: "left", 4: "bottom"}.get(i)
        mask, image = synthetic_tile(tile_size, rng, rare_weight, nodata_edge)
        transform = from_origin(500_000 + i * tile_size * pixel_size, 5_000_000, pixel_size, pixel_size)
        profile = dict(driver="GTiff", width=tile_size, height=tile_size, crs=crs, transform=transform,
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate")
        name = f"tile_{i:02d}.tif"
        image_path, mask_path = os.path.join(image_dir, name), os.path.join(mask_dir, name)
        _write_unless_same(image_path, image, dict(profile, count=3, dtype="uint8"))
        _write_unless_same(mask_path, mask[None], dict(profile, count=1, dtype="uint8", nodata=NODATA_CLASS))
        images.append(image_path)
        masks.append(mask_path)
    return SyntheticDataset(folder, images, masks, crs, pixel_size)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write a synthetic imbalanced segmentation dataset.")
    parser.add_argument("folder")
    parser.add_argument("--tiles", type=int, default=6)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = make_synthetic_dataset(args.folder, args.tiles, args.tile_size, args.seed)
    print(f"Wrote {len(data.images)} image/mask pairs to {data.folder} ({data.crs}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Patch windows, image/mask pairing and footprint rings."""

import os

import numpy as np
import pytest

from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.footprints import (
    build_footprints,
    find_pairs,
    pair_images_and_masks,
    raster_windows,
    window_offsets,
    window_ring,
)
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import patch_id
from tests.rasters import write_geotiff


@pytest.mark.parametrize("length, size, stride, edge, expected", [
    (256, 64, 64, "drop", [0, 64, 128, 192]),
    (250, 64, 64, "drop", [0, 64, 128]),
    (250, 64, 64, "shift", [0, 64, 128, 186]),
    (256, 64, 64, "shift", [0, 64, 128, 192]),  # already aligned: no duplicate window
    (100, 64, 32, "drop", [0, 32]),
    (100, 64, 32, "shift", [0, 32, 36]),
    (50, 64, 64, "shift", []),
])
def test_window_offsets(length, size, stride, edge, expected):
    assert window_offsets(length, size, stride, edge).tolist() == expected


def test_raster_windows_row_major_and_in_bounds():
    windows = raster_windows(100, 130, 64, 64, "shift")
    assert windows.tolist() == [[0, 0], [0, 64], [0, 66], [36, 0], [36, 64], [36, 66]]
    assert (windows + 64 <= np.array([100, 130])).all()


def test_bad_window_parameters_raise():
    with pytest.raises(BalancedSamplingError, match="stride"):
        window_offsets(100, 64, 0)
    with pytest.raises(BalancedSamplingError, match="edge mode"):
        window_offsets(100, 64, 64, "pad")


def test_pairing_by_name():
    pairs = pair_images_and_masks(["/d/img/a.tif", "/d/img/b_rgb.tif"], ["/d/m/b_mask.tif", "/d/m/a_label.tif"])
    assert pairs == [("/d/img/a.tif", "/d/m/a_label.tif"), ("/d/img/b_rgb.tif", "/d/m/b_mask.tif")]
    with pytest.raises(BalancedSamplingError, match="c.tif"):
        pair_images_and_masks(["/d/a.tif", "/d/c.tif"], ["/d/m/a.tif"])


def test_find_pairs_in_one_folder(tmp_path):
    for name in ("t1.tif", "t1_mask.tif", "t2.tif", "t2_mask.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    pairs = find_pairs(str(tmp_path), "*.tif", str(tmp_path), "*.tif")
    assert [(p[0].split("/")[-1], p[1].split("/")[-1]) for p in pairs] == [("t1.tif", "t1_mask.tif"),
                                                                           ("t2.tif", "t2_mask.tif")]


def test_find_pairs_patterns_ignore_case_and_a_mask_left_out_by_its_pattern_is_named(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for folder, name in ((images, "T1.TIF"), (images, "t2.tif"), (masks, "T1.TIF"), (masks, "t2.tif")):
        (folder / name).write_bytes(b"")
    pairs = find_pairs(str(images), "*.tif", str(masks), "*.tif")
    assert [os.path.basename(image) for image, _ in pairs] == ["T1.TIF", "t2.tif"]
    (masks / "t3.jp2").write_bytes(b"")
    (images / "t3.jp2").write_bytes(b"")
    with pytest.raises(BalancedSamplingError, match=r"No mask found for image\(s\): .*t3\.jp2.*The mask folder holds "
                                                    r"t3\.jp2, which the mask pattern '\*\.tif' leaves out"):
        find_pairs(str(images), "*", str(masks), "*.tif")


def test_window_ring_follows_the_geotransform():
    # 0.5 m pixels, origin (1000, 2000), north-up
    ring = window_ring((0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0), row_off=10, col_off=20, size=4)
    assert ring == [(1010.0, 1995.0), (1012.0, 1995.0), (1012.0, 1993.0), (1010.0, 1993.0), (1010.0, 1995.0)]


def test_build_footprints_on_synthetic_data(synthetic_dataset):
    pairs = list(zip(synthetic_dataset.images, synthetic_dataset.masks))
    result = build_footprints(pairs, patch_size=100, stride=100, edge="shift")
    assert len(result.records) == 6 * 36 == len(result.rings)  # 512 px: offsets 0, 100, ..., 400, 412
    assert result.crs_authid == "EPSG:32633"
    first = result.records.iloc[0]
    assert first["patch_id"] == patch_id(first["image_path"], 0, 0, 100)
    assert result.records["patch_id"].is_unique


def test_drop_says_how_many_rasters_keep_an_uncovered_edge_and_too_small_names_the_largest(synthetic_dataset):
    from balanced_sampling_plugin.progress import Progress

    pairs = list(zip(synthetic_dataset.images, synthetic_dataset.masks))
    infos = []
    build_footprints(pairs, patch_size=100, stride=100, edge="drop", progress=Progress(info=infos.append))
    assert "6 of 6 rasters have a strip at the right or bottom edge that no 100 px patch covers" in " ".join(infos)
    infos.clear()
    build_footprints(pairs, patch_size=64, stride=64, edge="drop", progress=Progress(info=infos.append))  # 512 px
    assert not any("strip" in line for line in infos)
    with pytest.raises(BalancedSamplingError, match=r"No raster is large enough for a 600 px patch \(the largest, "
                                                    r".*tile_0\d\.tif, is 512 rows x 512 columns\); choose a smaller"):
        build_footprints(pairs, patch_size=600, edge="drop", progress=Progress(warning=lambda text: None))


def test_mismatched_sizes_and_crs_are_named(tmp_path, synthetic_dataset):
    import rasterio

    small = str(tmp_path / "small_mask.tif")
    other_crs = str(tmp_path / "other_crs.tif")
    with rasterio.open(synthetic_dataset.masks[0]) as src:
        profile, data = src.profile, src.read()
    with rasterio.open(small, "w", **(profile | {"width": 128, "height": 128})) as dst:
        dst.write(data[:, :128, :128])
    with rasterio.open(other_crs, "w", **(profile | {"crs": "EPSG:4326"})) as dst:
        dst.write(data)
    with pytest.raises(BalancedSamplingError, match="small_mask.tif"):
        build_footprints([(synthetic_dataset.images[0], small)], 64)
    # UTM coordinates read as degrees: no place in the layer's CRS
    with pytest.raises(BalancedSamplingError, match=r"The footprints of .*other_crs.tif \(EPSG:4326\) cannot be placed "
                                                    r"in the layer's CRS EPSG:32633"):
        build_footprints([(synthetic_dataset.images[0], synthetic_dataset.masks[0]), (other_crs, other_crs)], 64)
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        build_footprints([(str(tmp_path / "nope.tif"), small)], 64)


def test_rasters_in_two_utm_zones_share_the_first_rasters_crs(tmp_path):
    """Sentinel-2 tiles of neighbouring UTM zones: one layer, in the first raster's CRS, the other's footprints
    reprojected (densified edges), and said."""
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from rasterio.warp import transform

    east = from_origin(166_000, 5_600_000, 10, 10)  # EPSG:32634, near its western edge, next to zone 33
    first = write_geotiff(tmp_path / "a_33.tif", np.ones((64, 64), np.uint8))
    second = write_geotiff(tmp_path / "b_34.tif", np.ones((64, 64), np.uint8), crs="EPSG:32634", transform=east)
    infos = []
    result = build_footprints([(first, first), (second, second)], 32, progress=Progress(info=infos.append))
    assert result.crs_authid == "EPSG:32633" and len(result.rings) == 8
    ring = np.asarray(result.rings[4])  # b_34.tif, window (0, 0)
    assert len(ring) == 4 * 8 + 1 and (ring[0] == ring[-1]).all()
    xs, ys = transform(CRS.from_epsg(32634), CRS.from_epsg(32633), [166_000, 166_320], [5_600_000, 5_599_680])
    np.testing.assert_allclose(ring[0], (xs[0], ys[0]), atol=1e-6)
    np.testing.assert_allclose(ring[16], (xs[1], ys[1]), atol=1e-6)  # the opposite corner
    assert np.allclose(result.rings[0][0], (500_000, 4_000_000))  # the first raster's own CRS, untouched
    assert any(line.startswith("1 of 2 rasters are in another CRS than the footprint layer's EPSG:32633") and
               "b_34.tif in EPSG:32634" in line for line in infos), infos


def test_rasters_with_and_without_a_crs_are_refused(tmp_path):
    first = write_geotiff(tmp_path / "a.tif", np.ones((64, 64), np.uint8))
    bare = write_geotiff(tmp_path / "b.tif", np.ones((64, 64), np.uint8), crs=None)
    with pytest.raises(BalancedSamplingError, match=r"b.tif is in no CRS but .*a.tif is in EPSG:32633; a footprint "
                                                    r"layer cannot place rasters with and without a CRS together"):
        build_footprints([(first, first), (bare, bare)], 32)


def test_mask_in_another_crs_than_its_image_is_refused(tmp_path):
    from rasterio.transform import from_origin

    image = write_geotiff(tmp_path / "t1.tif", np.ones((3, 64, 64), np.uint8))
    mask = write_geotiff(tmp_path / "t1_mask.tif", np.ones((64, 64), np.uint8), crs="EPSG:4326",
                         transform=from_origin(10, 50, 0.001, 0.001))
    with pytest.raises(BalancedSamplingError) as error:
        build_footprints([(image, mask)], 32)
    assert str(error.value).startswith(
        f"Mask {mask} is in EPSG:4326 but its image {image} is in EPSG:32633; "
        "a mask must share its image's CRS and pixel grid — reproject the mask onto the image's grid"
    )


def test_mask_on_another_pixel_grid_is_refused(tmp_path):
    from rasterio.transform import from_origin

    image = write_geotiff(tmp_path / "t1.tif", np.ones((3, 64, 64), np.uint8))
    shifted = write_geotiff(tmp_path / "t1_mask.tif", np.ones((64, 64), np.uint8),
                            transform=from_origin(500010, 4000000, 1, 1))
    with pytest.raises(BalancedSamplingError) as error:
        build_footprints([(image, shifted)], 32)
    assert str(error.value) == (
        f"Image {image} and mask {shifted} have different geotransforms (origin or pixel size: "
        "origin (500000, 4000000), pixel 1 x 1 vs origin (500010, 4000000), pixel 1 x 1); they must share one "
        "pixel grid — resample the mask onto the image's grid (nearest neighbour)."
    )
    coarse = write_geotiff(tmp_path / "t2_mask.tif", np.ones((32, 32), np.uint8),
                           transform=from_origin(500000, 4000000, 2, 2))
    with pytest.raises(BalancedSamplingError,
                       match=r"is 64 rows x 64 columns but its mask .*t2_mask.tif is 32 rows x 32 columns"):
        build_footprints([(image, coarse)], 32)


def test_mask_without_crs_on_the_same_grid_is_accepted(tmp_path):
    image = write_geotiff(tmp_path / "t1.tif", np.ones((3, 64, 64), np.uint8))
    mask = write_geotiff(tmp_path / "t1_mask.tif", np.ones((64, 64), np.uint8), crs=None)
    result = build_footprints([(image, mask)], 32)
    assert len(result.records) == 4 and result.crs_authid == "EPSG:32633"


def test_regenerating_the_synthetic_dataset_keeps_identical_files_untouched(tmp_path):
    """make demo regenerates its data every run: unchanged rasters keep their modification time, so the embedding
    cache (keyed by the image file's size and time) is reused."""
    from balanced_sampling_plugin.synthetic import make_synthetic_dataset

    first = make_synthetic_dataset(str(tmp_path), n_tiles=2, tile_size=64)
    times = [os.stat(path).st_mtime_ns for path in first.images + first.masks]
    again = make_synthetic_dataset(str(tmp_path), n_tiles=2, tile_size=64)
    assert [os.stat(path).st_mtime_ns for path in again.images + again.masks] == times
    assert sorted(os.listdir(tmp_path / "images")) == ["tile_00.tif", "tile_01.tif"]  # no partial left
    make_synthetic_dataset(str(tmp_path), n_tiles=2, tile_size=64, seed=1)  # other pixels: rewritten
    assert [os.stat(path).st_mtime_ns for path in first.images] != times[:2]


def test_images_without_georeferencing_are_said_once_in_plain_words(tmp_path):
    import warnings

    import rasterio

    from balanced_sampling_plugin.progress import Progress

    pairs = []
    for name in ("chip_a", "chip_b"):
        paths = []
        for suffix in ("", "_mask"):
            path = str(tmp_path / f"{name}{suffix}.tif")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # writing it unplaced is the point
                with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8") as dst:
                    dst.write(np.ones((1, 64, 64), np.uint8))
            paths.append(path)
        pairs.append(tuple(paths))
    messages = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw rasterio warning reaches the user
        result = build_footprints(pairs, 32, progress=Progress(warning=messages.append))
    assert len(result.records) == 8
    assert [m for m in messages if "not georeferenced" in m] == [
        m for m in messages if m.startswith("2 of 2 images are not georeferenced (no CRS, no geotransform), e.g. ")]
    assert len(messages) == 1, messages

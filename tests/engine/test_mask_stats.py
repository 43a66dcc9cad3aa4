"""Windowed mask statistics: pure array functions and GeoTIFF reads (no QGIS)."""

import collections
import math
import os

import numpy as np
import pandas as pd
import pytest
import rasterio

from balanced_sampling_plugin import mask_stats
from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.mask_stats import (
    class_counts,
    compute_mask_stats,
    has_black_border,
    value_counts,
    window_stats,
)
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import validate_records
from tests.rasters import write_geotiff


def entropy(*p):
    return -sum(x * math.log(x) for x in p if x > 0)


# --------------------------------------------------------------------------- array functions


def test_value_counts_bincount_and_negative_values():
    values, counts = value_counts(np.array([[3, 3], [0, 7]], np.uint8))
    assert values.tolist() == [0, 3, 7] and counts.tolist() == [1, 2, 1]
    values, counts = value_counts(np.array([[-9999, 2], [2, 2]], np.int16))
    assert values.tolist() == [-9999, 2] and counts.tolist() == [1, 3]


def test_class_counts_skips_nodata_and_unlisted_values():
    window = np.array([[0, 1, 1], [2, 5, 1]], np.uint8)
    assert class_counts(window, [1, 2, 3], nodata_class=0).tolist() == [3, 1, 0]
    assert class_counts(window, [0, 1], nodata_class=0).tolist() == [0, 3]
    assert class_counts(window, [0, 1], nodata_class=None).tolist() == [1, 3]


def test_window_stats_two_classes_half_half():
    window = np.array([[1, 1, 2, 2]] * 4, np.uint8)
    proportions, ent, nodata_ratio, border = window_stats(window, [1, 2], nodata_class=0)
    np.testing.assert_allclose(proportions, [0.5, 0.5])
    assert ent == pytest.approx(math.log(2))
    assert nodata_ratio == 0.0
    assert border is False


def test_window_stats_with_interior_nodata():
    # 4x4: 12 ring pixels of class 1, 2 interior of class 2 and 2 interior nodata.
    window = np.ones((4, 4), np.uint8)
    window[1, 1], window[1, 2], window[2, 1], window[2, 2] = 2, 2, 0, 0
    proportions, ent, nodata_ratio, border = window_stats(window, [1, 2, 3], nodata_class=0)
    np.testing.assert_allclose(proportions, [12 / 14, 2 / 14, 0.0])
    assert ent == pytest.approx(entropy(12 / 14, 2 / 14))
    assert nodata_ratio == pytest.approx(2 / 16)
    assert border is False


@pytest.mark.parametrize("where", [(0, 2), (3, 1), (2, 0), (1, 3), (3, 3)])
def test_window_stats_border_nodata_on_each_side(where):
    window = np.ones((4, 4), np.uint8)
    window[where] = 0
    assert window_stats(window, [1], nodata_class=0)[3] is True


def test_window_stats_all_nodata_and_single_class():
    proportions, ent, nodata_ratio, border = window_stats(np.zeros((3, 3), np.uint8), [1, 2], nodata_class=0)
    assert proportions.tolist() == [0.0, 0.0] and ent == 0.0 and nodata_ratio == 1.0 and border is True
    proportions, ent, nodata_ratio, border = window_stats(np.full((3, 3), 2, np.uint8), [1, 2], nodata_class=0)
    assert proportions.tolist() == [0.0, 1.0] and ent == 0.0 and nodata_ratio == 0.0 and border is False


def test_window_stats_without_nodata_class_counts_zero_as_a_class():
    window = np.array([[0, 0], [1, 1]], np.uint8)
    proportions, ent, nodata_ratio, border = window_stats(window, [0, 1], nodata_class=None)
    np.testing.assert_allclose(proportions, [0.5, 0.5])
    assert ent == pytest.approx(math.log(2)) and nodata_ratio == 0.0 and border is False


def test_has_black_border_needs_all_bands_black_on_the_ring():
    image = np.full((3, 5, 5), 100, np.uint8)
    assert not has_black_border(image)
    image[:, 2, 2] = 0  # interior: ignored
    assert not has_black_border(image)
    image[:2, 0, 3] = 0  # ring pixel, but band 3 is not black
    assert not has_black_border(image)
    image[2, 0, 3] = 4
    assert not has_black_border(image, tolerance=3)
    assert has_black_border(image, tolerance=4)
    image[2, 0, 3] = 0
    assert has_black_border(image)


def test_has_black_border_single_band_2d():
    band = np.full((4, 4), 9.0)
    band[3, 0] = 0.0
    assert has_black_border(band)


# --------------------------------------------------------------------------- GeoTIFF reads


def make_mask():
    """64x64: left half class 1, right half class 2, a class-3 pixel, nodata (0) in places."""
    mask = np.ones((64, 64), np.uint8)
    mask[:, 32:] = 2
    mask[10, 10] = 3
    mask[48:, 48:] = 0
    mask[20, 52] = 0
    return mask


def make_image():
    """3-band 64x64, grey 100, black pixels at row 0 cols 0..7 and interior (24, 24), almost black at (32, 40)."""
    image = np.full((3, 64, 64), 100, np.uint8)
    image[:, 0, :8] = 0
    image[:, 24, 24] = 0
    image[:, 32, 40] = (0, 0, 5)
    return image


WINDOWS = [(0, 0, 32), (0, 16, 32), (32, 32, 32), (8, 40, 24), (40, 40, 16)]


@pytest.fixture
def pair(tmp_path):
    return write_geotiff(tmp_path / "image.tif", make_image()), write_geotiff(tmp_path / "mask.tif", make_mask())


def make_records(image, mask, windows=WINDOWS, index=None):
    return pd.DataFrame(
        [dict(image_path=image, mask_path=mask, row_off=r, col_off=c, patch_size=s) for r, c, s in windows],
        index=index,
    )


def test_compute_mask_stats_hand_computed(pair):
    records = make_records(*pair, index=[f"p{i}" for i in range(len(WINDOWS))])
    table = compute_mask_stats(records, nodata_class=0)

    assert list(table.index) == list(records.index)
    assert list(table.columns) == [
        *("cls_1", "cls_2", "cls_3"),
        *("class_entropy", "nodata_ratio", "border_nodata", "black_border"),
    ]
    expected = pd.DataFrame(
        {
            "cls_1": [1023 / 1024, 0.5, 0.0, 0.0, 0.0],
            "cls_2": [0.0, 0.5, 1.0, 1.0, 1.0],
            "cls_3": [1 / 1024, 0.0, 0.0, 0.0, 0.0],
            "class_entropy": [entropy(1023 / 1024, 1 / 1024), math.log(2), 0.0, 0.0, 0.0],
            "nodata_ratio": [0.0, 0.0, 256 / 1024, 1 / 576, 64 / 256],
            "border_nodata": [False, False, True, False, True],
            "black_border": [True, False, False, False, False],
        },
        index=records.index,
    )
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12)


def test_black_tolerance_and_disabled_check(pair):
    records = make_records(*pair)
    assert compute_mask_stats(records, black_tolerance=5)["black_border"].tolist() == [True, False, True, False, False]
    assert not compute_mask_stats(records, check_black_border=False)["black_border"].any()


def test_image_fill_on_the_border_counts_as_black_border(tmp_path, pair):
    """NaN, a declared nodata value and an alpha-masked strip are scene edges like a black strip: a float
    scene with NaN fill, or a uint8 scene whose fill is a declared 255, flags the windows whose ring meets it."""
    _, mask = pair
    fill_windows = [(0, 0, 32), (0, 30, 32), (32, 32, 32)]  # the fill is columns 0-1 only: the first touches it
    scene = np.full((3, 64, 64), 1200.0, np.float32)
    scene[:, :, :2] = np.nan
    scene[0, 40, 40] = np.nan  # inside the third window, not on its ring
    nan_image = write_geotiff(tmp_path / "nan.tif", scene)
    assert compute_mask_stats(make_records(nan_image, mask, fill_windows))["black_border"].tolist() == [
        True, False, False]

    white = np.full((3, 64, 64), 100, np.uint8)
    white[:, :, :2] = 255
    nodata_image = write_geotiff(tmp_path / "nodata.tif", white, nodata=255)
    flags = compute_mask_stats(make_records(nodata_image, mask, fill_windows))["black_border"].tolist()
    assert flags == [True, False, False]
    # The same pixels without the declared nodata are white, not fill.
    plain = write_geotiff(tmp_path / "plain.tif", white)
    assert not compute_mask_stats(make_records(plain, mask, fill_windows))["black_border"].any()

    with_alpha = np.concatenate([np.full((3, 64, 64), 100, np.uint8), np.full((1, 64, 64), 255, np.uint8)])
    with_alpha[3, :, :2] = 0
    alpha_image = str(tmp_path / "alpha.tif")
    with rasterio.open(alpha_image, "w", driver="GTiff", width=64, height=64, count=4, dtype="uint8",
                       photometric="RGB", alpha="YES", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(500000, 4000000, 1, 1)) as dst:
        dst.write(with_alpha)
    assert compute_mask_stats(make_records(alpha_image, mask, fill_windows))["black_border"].tolist() == [
        True, False, False]


def test_image_fill_helper_shapes():
    data = np.ones((3, 4, 5), np.float32)
    assert mask_stats.image_fill(data.astype(np.uint8)) is None
    data[1, 2, 3] = np.inf
    assert mask_stats.image_fill(data).tolist() == (np.arange(20).reshape(4, 5) == 13).tolist()
    masked = np.ma.masked_equal(np.arange(60, dtype=np.int16).reshape(3, 4, 5), 7)
    assert mask_stats.image_fill(masked).sum() == 1 and mask_stats.image_fill(masked)[1, 2]


def test_black_border_check_off_does_not_need_images(pair):
    records = make_records("/nowhere/image.tif", pair[1])
    table = compute_mask_stats(records, check_black_border=False)
    assert table["nodata_ratio"].iloc[2] == pytest.approx(0.25)


def test_explicit_classes_and_no_nodata_class(pair):
    records = make_records(*pair)
    progress = Progress()
    table = compute_mask_stats(records, classes=[2, 1], progress=progress)
    assert [c for c in table.columns if c.startswith("cls_")] == ["cls_1", "cls_2"]
    assert table["cls_1"].iloc[0] == 1.0  # the class-3 pixel is left out...
    assert any("outside the chosen classes" in w for w in progress.warnings)  # ...and said so

    table = compute_mask_stats(records, nodata_class=None, check_black_border=False)
    assert table["cls_0"].iloc[2] == pytest.approx(0.25)
    assert not table["border_nodata"].any() and (table["nodata_ratio"] == 0).all()


def test_results_do_not_depend_on_workers_or_chunks(tmp_path, pair):
    other_mask = write_geotiff(tmp_path / "mask2.tif", make_mask()[::-1].copy())
    records = pd.concat([make_records(*pair), make_records(pair[0], other_mask)], ignore_index=True)
    reference = compute_mask_stats(records, workers=1)
    pd.testing.assert_frame_equal(compute_mask_stats(records, workers=3, chunk_size=2), reference)


def test_each_raster_opened_once_per_chunk(monkeypatch, pair):
    opened = collections.Counter()
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        opened[str(path)] += 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(mask_stats.rasterio, "open", counting_open)
    records = make_records(*pair)
    compute_mask_stats(records)
    assert opened == {pair[0]: 1, pair[1]: 1}

    opened.clear()
    compute_mask_stats(records, chunk_size=2)  # 5 patches -> 3 chunks
    assert opened == {pair[0]: 3, pair[1]: 3}


def test_progress_reaches_the_end(pair):
    seen = []
    compute_mask_stats(make_records(*pair), progress=Progress(set_percent=seen.append), chunk_size=2)
    assert seen and seen[-1] == 100.0


def test_cancel_raises(pair):
    with pytest.raises(OperationCanceled):
        compute_mask_stats(make_records(*pair), progress=Progress(is_canceled=lambda: True))


# --------------------------------------------------------------------------- clear errors


def test_float_mask_is_refused_naming_the_file(tmp_path, pair):
    float_mask = write_geotiff(tmp_path / "float_mask.tif", make_mask(), dtype=np.float32)
    with pytest.raises(BalancedSamplingError, match="float_mask.tif.*integer class raster"):
        compute_mask_stats(make_records(pair[0], float_mask))


def test_out_of_bounds_window_names_the_patch(pair):
    records = make_records(*pair, windows=[(0, 0, 32), (40, 50, 32)])
    patch = validate_records(records)["patch_id"].iloc[1]
    with pytest.raises(BalancedSamplingError, match=f"{patch}.*outside the mask raster") as info:
        compute_mask_stats(records)
    assert "64 rows x 64 columns" in str(info.value)


def test_image_smaller_than_mask_is_reported(tmp_path, pair):
    small_image = write_geotiff(tmp_path / "small.tif", make_image()[:, :40, :40])
    with pytest.raises(BalancedSamplingError, match="outside the image raster .*small.tif"):
        compute_mask_stats(make_records(small_image, pair[1]))


def test_missing_mask_names_the_path(tmp_path, pair):
    missing = str(tmp_path / "no_such_mask.tif")
    with pytest.raises(BalancedSamplingError, match="no_such_mask.tif.*does not exist"):
        compute_mask_stats(make_records(pair[0], missing))


def test_unreadable_image_names_the_path(tmp_path, pair):
    not_a_raster = tmp_path / "notes.tif"
    not_a_raster.write_text("not a raster")
    with pytest.raises(BalancedSamplingError, match="image raster .*notes.tif.*not a readable raster"):
        compute_mask_stats(make_records(str(not_a_raster), pair[1]))


# --------------------------------------------------------------------------- warnings


def test_multiband_masks_are_named_once_per_run(tmp_path, pair):
    rgb_mask = np.stack([make_mask(), np.full((64, 64), 9, np.uint8), np.full((64, 64), 7, np.uint8)])
    masks = [write_geotiff(tmp_path / f"rgb_mask_{k}.tif", rgb_mask) for k in range(5)]
    records = pd.concat(
        [make_records(pair[0], m) for m in masks] + [make_records(*pair)], ignore_index=True
    )
    sink = []
    progress = Progress(warning=sink.append)
    table = compute_mask_stats(records, check_black_border=False, chunk_size=2, workers=2, progress=progress)

    assert sink == progress.warnings
    multiband = [w for w in sink if "more than one band" in w]
    assert multiband == [
        f"5 mask raster(s) have more than one band: {masks[0]} (3 bands), {masks[1]} (3 bands), "
        f"{masks[2]} (3 bands) and 2 more. Band 1 is read as the class mask and the other bands are "
        "ignored; if the classes are in another band (or the file is an RGB rendering of the mask), write a "
        "single-band class raster and point the mask field at it."
    ]
    assert pair[1] not in multiband[0]
    # Band 1 is what was read: no class of bands 2/3, and the single-band mask's numbers.
    assert [c for c in table.columns if c.startswith("cls_")] == ["cls_1", "cls_2", "cls_3"]
    single = compute_mask_stats(make_records(*pair), check_black_border=False)
    np.testing.assert_allclose(table.iloc[:5][single.columns].to_numpy(float), single.to_numpy(float))


def test_single_band_masks_give_no_band_warning(pair):
    progress = Progress()
    compute_mask_stats(make_records(*pair), progress=progress)
    assert not any("band" in w for w in progress.warnings)


def test_a_vrt_whose_source_is_gone_is_reported_with_gdals_reason(tmp_path, pair):
    image, _ = pair
    source = write_geotiff(tmp_path / "source_mask.tif", make_mask())
    vrt = tmp_path / "mask.vrt"
    vrt.write_text(f"""<VRTDataset rasterXSize="64" rasterYSize="64">
  <SRS>EPSG:32633</SRS><GeoTransform>500000, 1, 0, 4000000, 0, -1</GeoTransform>
  <VRTRasterBand dataType="Byte" band="1"><SimpleSource>
    <SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>
  </SimpleSource></VRTRasterBand>
</VRTDataset>""")
    os.remove(source)
    with pytest.raises(BalancedSamplingError) as caught:
        compute_mask_stats(make_records(image, str(vrt), [(0, 0, 32)]), check_black_border=False)
    message = str(caught.value)
    assert "mask.vrt" in message and "source_mask.tif" in message, message
    assert "See previous exception" not in message

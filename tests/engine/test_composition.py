"""CLR, elbow, KMeans clustering and the composition stage (no QGIS)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import adjusted_rand_score

from balanced_sampling_plugin.composition import (
    clr,
    cluster_compositions,
    cluster_weights,
    compute_composition,
    elbow_k,
    exclusion_flags,
    relabel_by_size,
    stats_from_proportions,
)
from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.progress import Progress
from tests.rasters import write_geotiff

# --------------------------------------------------------------------------- proportions from a table


@pytest.mark.parametrize("missing", [None, np.nan])
def test_null_class_proportion_reads_null_not_nan(missing):
    table = pd.DataFrame({"cls_1": [0.5, 0.2], "cls_2": [0.5, missing]}, dtype=object)
    with pytest.raises(BalancedSamplingError) as error:
        stats_from_proportions(table)
    assert str(error.value) == (
        "Field 'cls_2' of patch at row 1 (? window row_off=?, col_off=?, size=?) is NULL (empty); "
        "class proportions must be numbers >= 0."
    )


def test_null_class_entropy_and_nodata_ratio_are_filled_not_refused():
    table = pd.DataFrame({"cls_1": [1.0, 1.0], "cls_2": [1.0, 0.0],
                          "class_entropy": [None, 0.5], "nodata_ratio": [np.nan, 0.1]})
    warnings = []
    stats = stats_from_proportions(table, progress=Progress(warning=warnings.append))
    np.testing.assert_allclose(stats["class_entropy"], [math.log(2), 0.5])
    np.testing.assert_allclose(stats["nodata_ratio"], [0.0, 0.1])
    assert warnings == [
        "1 patches have no 'nodata_ratio' value; it is taken as 0, so the maximum-nodata-ratio exclusion "
        "cannot apply to them."
    ]
    assert not any("nan" in w.lower() for w in warnings)


def test_border_flags_found_from_pixels_earlier_are_kept():
    """A table that carries border_nodata / black_border (an earlier run read the pixels) keeps them; without
    them they are False (they need the pixels)."""
    table = pd.DataFrame({"cls_1": [1.0, 1.0, 0.5], "cls_2": [0.0, 1.0, 0.5], "nodata_ratio": [0.0, 0.2, 0.0],
                          "border_nodata": [False, True, None], "black_border": ["false", "0", "true"]})
    stats = stats_from_proportions(table)
    assert stats["border_nodata"].tolist() == [False, True, False]
    assert stats["black_border"].tolist() == [False, False, True]
    bare = stats_from_proportions(table.drop(columns=["border_nodata", "black_border"]))
    assert not bare["border_nodata"].any() and not bare["black_border"].any()


# --------------------------------------------------------------------------- CLR


def test_clr_hand_computed():
    logs = np.log([0.5, 0.25, 0.25])
    np.testing.assert_allclose(clr([[0.5, 0.25, 0.25]]), [logs - logs.mean()])


def test_clr_replaces_zeros_by_eps():
    # [1, 0] -> [1, eps] / (1 + eps); the renormalisation cancels in the log-ratio.
    half_gap = math.log(1e6) / 2
    np.testing.assert_allclose(clr([[1.0, 0.0]], eps=1e-6), [[half_gap, -half_gap]])
    np.testing.assert_allclose(clr([[0.0, 0.0, 0.0]]), [[0.0, 0.0, 0.0]])
    assert np.isfinite(clr([[5e-324, 1.0, 1.0]])).all()  # a subnormal share is floored like a zero


def test_clr_ignores_the_scale_of_a_row():
    np.testing.assert_allclose(clr([[2.0, 6.0, 2.0]]), clr([[0.2, 0.6, 0.2]]))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 8)), elements=st.floats(0, 1)))
def test_clr_rows_sum_to_zero(proportions):
    out = clr(proportions)
    assert out.shape == proportions.shape
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 0.0, atol=1e-9)


def test_clr_refuses_negative_or_nan():
    with pytest.raises(BalancedSamplingError):
        clr([[0.5, -0.1]])
    with pytest.raises(BalancedSamplingError):
        clr([[np.nan, 1.0]])


# --------------------------------------------------------------------------- elbow


def test_elbow_k_hand_computed():
    # Scaled: x = 0, .25, .5, .75, 1 and y = (inertia - 10) / 90; the chord is y = 1 - x,
    # so the distance is proportional to |x + y - 1|.
    # y = 1, .111, .056, .022, 0 -> distances 0, .639, .444, .228, 0 -> k = 2.
    assert elbow_k([1, 2, 3, 4, 5], [100, 20, 15, 12, 10]) == 2
    # y = 1, .556, .111, .056, 0 -> distances 0, .194, .389, .194, 0 -> k = 3.
    assert elbow_k([1, 2, 3, 4, 5], [100, 60, 20, 15, 10]) == 3
    assert elbow_k([5, 3, 1, 4, 2], [10, 20, 100, 15, 60]) == 3  # the order of the input does not matter


def test_elbow_k_degenerate_curves_give_the_smallest_k():
    assert elbow_k([7], [3.0]) == 7
    assert elbow_k([4, 5], [10.0, 2.0]) == 4
    assert elbow_k([4, 5, 6, 7], [1.0, 1.0, 1.0, 1.0]) == 4
    assert elbow_k([2, 3, 4], [9.0, 6.0, 3.0]) == 2  # a straight line: every distance is 0


# --------------------------------------------------------------------------- clustering


def blobs(sizes, n_classes=6, seed=0):
    """Compositions around len(sizes) well-separated centres; returns (proportions, true labels)."""
    rng = np.random.default_rng(seed)
    centres = np.full((len(sizes), n_classes), 0.02)
    for i in range(len(sizes)):
        centres[i, i % n_classes] = 0.9
    centres /= centres.sum(axis=1, keepdims=True)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    proportions = np.vstack([rng.dirichlet(centres[t] * 400) for t in truth])
    return proportions, truth


def test_elbow_finds_the_number_of_blobs():
    proportions, truth = blobs([40, 40, 40, 40, 40])
    result = cluster_compositions(clr(proportions), "elbow", k_min=2, k_max=10)
    assert result.k == 5
    assert result.ks == list(range(2, 11)) and len(result.inertias) == 9
    assert adjusted_rand_score(truth, result.labels) == 1.0


def test_fixed_k_is_respected_and_ids_follow_size():
    proportions, truth = blobs([10, 50, 25])
    result = cluster_compositions(clr(proportions), "fixed", k=3)
    assert result.k == 3 and result.ks == [3] and len(result.inertias) == 1
    # Largest cluster first: blob 1 (50) -> id 0, blob 2 (25) -> id 1, blob 0 (10) -> id 2.
    np.testing.assert_array_equal(result.labels, np.array([2, 0, 1])[truth])


def test_clustering_is_deterministic():
    features = clr(blobs([30, 20, 20, 10])[0])
    first = cluster_compositions(features, k_min=2, k_max=6, random_state=7)
    second = cluster_compositions(features, k_min=2, k_max=6, random_state=7)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.inertias == second.inertias


def test_relabel_by_size_breaks_ties_by_centroid():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    centers = np.array([[5.0, 0.0], [1.0, 9.0], [3.0, 3.0]])
    np.testing.assert_array_equal(relabel_by_size(labels, centers), [2, 2, 1, 1, 0, 0, 0])


def test_cluster_weights_are_inverse_sizes():
    labels = np.array([0, 0, 1, 2, 2, 2])
    sizes, weights = cluster_weights(labels)
    assert sizes.tolist() == [2, 2, 1, 3, 3, 3]
    np.testing.assert_allclose(weights, [0.5, 0.5, 1.0, 1 / 3, 1 / 3, 1 / 3])
    per_cluster = pd.Series(weights).groupby(labels).sum()
    np.testing.assert_allclose(per_cluster, 1.0)


def test_too_few_rows_for_k_min_says_what_to_change():
    with pytest.raises(BalancedSamplingError, match="Only 3 valid patches.*K_MIN=4"):
        cluster_compositions(clr(blobs([1, 1, 1])[0]), k_min=4)
    with pytest.raises(BalancedSamplingError, match="Only 3 valid patches.*K=5"):
        cluster_compositions(clr(blobs([1, 1, 1])[0]), "fixed", k=5)


def test_k_max_is_clipped_to_distinct_rows_with_a_warning():
    features = np.repeat(clr(blobs([1, 1, 1, 1, 1])[0]), 4, axis=0)  # 20 rows, 5 distinct
    progress = Progress()
    result = cluster_compositions(features, k_min=2, k_max=16, progress=progress)
    assert result.ks == [2, 3, 4, 5]
    assert any("K_MAX lowered from 16 to 5" in w for w in progress.warnings)
    with pytest.raises(BalancedSamplingError, match="only 5 distinct compositions"):
        cluster_compositions(features, k_min=6)


def test_bad_k_parameters():
    features = clr(blobs([5, 5])[0])
    with pytest.raises(BalancedSamplingError, match="K must be a positive integer"):
        cluster_compositions(features, "fixed")
    with pytest.raises(BalancedSamplingError, match="k_selection"):
        cluster_compositions(features, "silhouette")
    with pytest.raises(BalancedSamplingError, match="K_MIN <= K_MAX"):
        cluster_compositions(features, k_min=5, k_max=3)


def test_clustering_progress_and_cancel():
    features = clr(blobs([10, 10, 10])[0])
    seen = []
    cluster_compositions(features, k_min=2, k_max=4, progress=Progress(set_percent=seen.append))
    assert seen == pytest.approx([100 / 3, 200 / 3, 100.0])
    with pytest.raises(OperationCanceled):
        cluster_compositions(features, k_min=2, k_max=4, progress=Progress(is_canceled=lambda: True))


# --------------------------------------------------------------------------- exclusions


def test_exclusion_flags_follow_the_switches_and_always_drop_empty_windows():
    stats = pd.DataFrame(
        {
            "cls_1": [1.0, 0.5, 0.0, 1.0],
            "cls_2": [0.0, 0.5, 0.0, 0.0],
            "nodata_ratio": [0.1, 0.6, 1.0, 0.0],
            "border_nodata": [True, False, True, False],
            "black_border": [False, True, False, False],
        }
    )
    stats["class_entropy"] = [0.0, math.log(2), 0.0, 0.0]
    flags = exclusion_flags(stats, True, True, max_nodata_ratio=0.5)
    assert flags.to_dict("list") == {
        "border_nodata": [True, False, True, False],
        "black_border": [False, True, False, False],
        "nodata_ratio": [False, True, True, False],
        "has_low_entropy": [False, False, False, False],  # threshold 0 = off
    }
    flags = exclusion_flags(stats, False, False, max_nodata_ratio=1.0)
    assert flags.any(axis=1).tolist() == [False, False, True, False]  # the all-nodata window stays out
    flags = exclusion_flags(stats, False, False, max_nodata_ratio=1.0, min_entropy_threshold=0.5)
    assert flags["has_low_entropy"].tolist() == [True, False, True, True]
    # a threshold exactly at a patch's entropy keeps it: only entropies below it are low
    flags = exclusion_flags(stats, False, False, max_nodata_ratio=1.0, min_entropy_threshold=math.log(2))
    assert flags["has_low_entropy"].tolist() == [True, False, True, True]


# --------------------------------------------------------------------------- the stage on GeoTIFFs


# A 4x4 grid of 16 px patches. A: all class 1, B: classes 1/2 half and half, C: class 3,
# X: class 1 with nodata on its border, Y: class 1 with a black image corner,
# Z: class 1 with a nodata block inside (ratio 0.25), W: nodata border and black corner.
GRID = ["AAAA", "AABB", "BCXY", "ZWAA"]


@pytest.fixture
def grid_records(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    image = np.full((3, 64, 64), 120, np.uint8)
    windows = []
    for i, line in enumerate(GRID):
        for j, kind in enumerate(line):
            r, c = 16 * i, 16 * j
            windows.append((r, c))
            patch = mask[r : r + 16, c : c + 16]
            patch[:] = {"B": 2, "C": 3}.get(kind, 1)
            if kind == "B":
                patch[:, 8:] = 1
            if kind in "XW":
                patch[0, 5] = 0
            if kind in "YW":
                image[:, r + 15, c + 15] = 0
            if kind == "Z":
                patch[4:12, 4:12] = 0
    image_path = write_geotiff(tmp_path / "image.tif", image)
    mask_path = write_geotiff(tmp_path / "mask.tif", mask[np.newaxis])
    return pd.DataFrame(
        [dict(image_path=image_path, mask_path=mask_path, row_off=r, col_off=c, patch_size=16) for r, c in windows],
        index=[f"{kind}{n}" for n, kind in enumerate("".join(GRID))],
    )


def test_compute_composition_excludes_and_weights(grid_records):
    messages = []
    result = compute_composition(
        grid_records, max_nodata_ratio=0.2, k_selection="fixed", k=3, progress=Progress(info=messages.append)
    )
    table = result.table
    assert list(table.index) == list(grid_records.index)
    assert result.k == 3 and result.classes == [1, 2, 3]

    reasons = dict(zip(table.index, table["exclusion_reason"]))
    assert reasons["X10"] == "border_nodata"
    assert reasons["Y11"] == "black_border"
    assert reasons["Z12"] == "nodata_ratio"
    assert reasons["W13"] == "border_nodata,black_border"
    assert result.excluded_counts == {"border_nodata": 2, "black_border": 2, "nodata_ratio": 1, "has_low_entropy": 0}
    assert result.n_excluded == 4

    excluded = table[table["excluded"]]
    assert excluded.index.tolist() == ["X10", "Y11", "Z12", "W13"]
    assert (excluded["freq_cluster_id"] == -1).all()
    assert (excluded["freq_cluster_size"] == 0).all()
    assert (excluded["freq_cluster_weight"] == 0.0).all()

    kept = table[~table["excluded"]]
    assert (kept["exclusion_reason"] == "").all()
    kinds = kept.index.str[0]
    # A: 8 patches -> id 0, B: 3 -> id 1, C: 1 -> id 2.
    assert kept["freq_cluster_id"].tolist() == [{"A": 0, "B": 1, "C": 2}[k] for k in kinds]
    assert kept["freq_cluster_size"].tolist() == [{"A": 8, "B": 3, "C": 1}[k] for k in kinds]
    np.testing.assert_allclose(kept["freq_cluster_weight"], 1.0 / kept["freq_cluster_size"])
    assert table["freq_cluster_id"].dtype == np.int64 and table["freq_cluster_size"].dtype == np.int64
    assert any("k=3" in m for m in messages)
    # the entropy exclusion is off by default and not listed
    assert ("12 of 16 patches kept for clustering; 4 excluded, by reason (a patch can have several): 2 border_nodata, "
            "2 black_border, 1 nodata_ratio.") in messages


def test_low_entropy_patches_are_excluded_with_their_reason(grid_records):
    # Every patch but the B ones (classes 1 and 2 half and half, entropy ln 2) holds a single class: entropy 0.
    messages = []
    result = compute_composition(grid_records, max_nodata_ratio=0.2, min_entropy_threshold=0.5,
                                 k_selection="fixed", k=1, progress=Progress(info=messages.append))
    table = result.table
    kinds = table.index.str[0]
    np.testing.assert_allclose(table.loc[kinds == "B", "class_entropy"], math.log(2))
    assert table.index[~table["excluded"]].tolist() == ["B6", "B7", "B8"]
    reasons = dict(zip(table.index, table["exclusion_reason"]))
    assert reasons["A0"] == "has_low_entropy" and reasons["C9"] == "has_low_entropy"
    assert reasons["X10"] == "border_nodata,has_low_entropy"
    assert reasons["Z12"] == "nodata_ratio,has_low_entropy"
    assert reasons["W13"] == "border_nodata,black_border,has_low_entropy"
    assert all(reasons[b] == "" for b in ("B6", "B7", "B8"))
    assert result.excluded_counts == {"border_nodata": 2, "black_border": 2, "nodata_ratio": 1,
                                      "has_low_entropy": 13}
    low = table[table["exclusion_reason"].str.contains("has_low_entropy")]
    assert (low["class_entropy"] < 0.5).all() and (low["freq_cluster_id"] == -1).all()
    assert (low["freq_cluster_weight"] == 0.0).all()
    assert ("3 of 16 patches kept for clustering; 13 excluded, by reason (a patch can have several): 2 border_nodata, "
            "2 black_border, 1 nodata_ratio, 13 has_low_entropy.") in messages


def test_low_entropy_exclusion_from_the_layer_proportions():
    records = pd.DataFrame({"image_path": ["i.tif"] * 4, "mask_path": ["m.tif"] * 4, "row_off": 0,
                            "col_off": [0, 16, 32, 48], "patch_size": 16})
    proportions = pd.DataFrame({"cls_1": [1.0, 0.5, 0.9, 0.2], "cls_2": [0.0, 0.5, 0.1, 0.8]})
    result = compute_composition(records, proportions=proportions, min_entropy_threshold=0.4,
                                 k_selection="fixed", k=2)
    # entropies: 0, ln 2 = 0.693, 0.325, 0.500
    assert result.table["exclusion_reason"].tolist() == ["has_low_entropy", "", "has_low_entropy", ""]
    assert result.table["excluded"].tolist() == [True, False, True, False]


def test_too_many_low_entropy_patches_says_to_lower_the_threshold(grid_records):
    with pytest.raises(BalancedSamplingError, match="13 has_low_entropy.*lower the minimum entropy threshold"):
        compute_composition(grid_records, max_nodata_ratio=0.2, min_entropy_threshold=0.5, k_selection="fixed", k=4)


@pytest.mark.parametrize("threshold", [-0.1, float("nan"), float("inf")])
def test_bad_entropy_threshold(grid_records, threshold):
    with pytest.raises(BalancedSamplingError, match="min_entropy_threshold must be a number >= 0"):
        compute_composition(grid_records, min_entropy_threshold=threshold, k_selection="fixed", k=3)


def test_exclusions_can_be_turned_off(grid_records):
    result = compute_composition(
        grid_records, exclude_border_nodata=False, exclude_black_border=False, k_selection="fixed", k=3
    )
    table = result.table
    assert not table["excluded"].any()
    assert not table["black_border"].any()  # the image was not even checked
    assert table.loc["X10", "freq_cluster_id"] == table.loc["A0", "freq_cluster_id"]


def test_fewer_valid_patches_than_k_min_raises_with_the_counts(grid_records):
    with pytest.raises(BalancedSamplingError, match="Only 12 of 16 patches are valid.*K_MIN"):
        compute_composition(grid_records, max_nodata_ratio=0.2, k_min=13, k_max=16)


def test_too_few_distinct_compositions_for_the_default_elbow(grid_records):
    with pytest.raises(BalancedSamplingError, match="only 3 distinct compositions.*K_MIN"):
        compute_composition(grid_records)


def test_compute_composition_cancel(grid_records):
    with pytest.raises(OperationCanceled):
        compute_composition(grid_records, k_selection="fixed", k=3, progress=Progress(is_canceled=lambda: True))


def test_masks_declaring_another_nodata_value_are_pointed_out(tmp_path):
    """Masks written with nodata 255 read with the default nodata class 0: 255 would silently be a class."""
    from tests.rasters import write_geotiff

    rng = np.random.default_rng(0)
    labels = rng.integers(1, 4, size=(1, 64, 64)).astype(np.uint8)
    labels[:, :, :8] = 255
    image = write_geotiff(tmp_path / "img.tif", rng.integers(0, 255, size=(3, 64, 64)).astype(np.uint8))
    mask = write_geotiff(tmp_path / "mask.tif", labels, nodata=255)
    records = pd.DataFrame({"image_path": [image] * 4, "mask_path": [mask] * 4, "row_off": [0, 0, 32, 32],
                            "col_off": [0, 32, 0, 32], "patch_size": [32] * 4})
    warnings = []
    compute_composition(records, k_selection="fixed", k=2, progress=Progress(warning=warnings.append),
                        exclude_border_nodata=False)
    assert any("declares nodata value 255, but the nodata class is 0: 255 is counted as a class" in w
               for w in warnings)
    warnings.clear()
    compute_composition(records, nodata_class=255, k_selection="fixed", k=2, progress=Progress(warning=warnings.append),
                        exclude_border_nodata=False)
    assert not any("declares nodata" in w for w in warnings)


def test_a_real_background_class_taken_for_nodata_and_a_class_only_in_excluded_patches_are_warned(tmp_path):
    """Masks whose 0 is background: with the default nodata class 0 most patches are excluded (warned, naming the
    way out); a class present only in excluded patches is warned as never drawn."""
    from tests.rasters import write_geotiff

    mask = np.zeros((64, 256), np.uint8)  # 0 = background everywhere but a few objects
    mask[8:24, 8:24] = 1
    mask[40:56, 72:88] = 2
    mask[:, 192:] = 1
    # class 2 (a single object inside background) lies only in windows whose border is background (0)
    path = write_geotiff(tmp_path / "mask.tif", mask)
    records = pd.DataFrame([{"image_path": path, "mask_path": path, "row_off": r, "col_off": c, "patch_size": 32}
                            for r in (0, 32) for c in range(0, 256, 32)])
    warnings = []
    compute_composition(records, nodata_class=0, exclude_black_border=False, k_selection="fixed", k=1,
                        progress=Progress(warning=warnings.append))
    assert any("are excluded because their mask holds the nodata class 0" in w and "such as -1" in w
               for w in warnings), warnings
    assert not any("It covers only" in w for w in warnings), "0 fills most of these patches: no ignore-label advice"
    assert any(w.startswith("Class 2 occurs only in excluded patches (1: 1 border_nodata), so it will never be drawn")
               for w in warnings), warnings
    assert not any(w.startswith("Class 1 ") for w in warnings)  # class 1 fills the included right-hand windows

    warnings.clear()
    result = compute_composition(records, nodata_class=-1, exclude_black_border=False, k_selection="fixed", k=2,
                                 progress=Progress(warning=warnings.append))
    assert not result.table["excluded"].any() and "cls_0" in result.table.columns
    assert not warnings, warnings


def test_an_ignore_label_scattered_inside_the_tiles_is_told_apart_from_background(tmp_path):
    """A 1-pixel ignore band (250) on the class boundaries touches almost every window border though it covers
    under 1 % of the pixels: the warning says so and names the border exclusion as the way out. With that
    exclusion off, a nodata class covering most pixels (0 taken for nodata) is warned on its own."""
    from tests.rasters import write_geotiff

    labels = np.zeros((128, 256), np.uint8)
    labels[:, 200:] = 3
    labels[40:90, 20:70] = 7
    ignore = labels.copy()
    ignore[:, 127] = 250  # the boundary band, crossing every window row
    ignore[39, 20:70] = 250
    ignore[:, 63] = 250
    ignore[:, 191] = 250
    ignore[63, :] = 250
    ignore[127, :] = 250
    path = write_geotiff(tmp_path / "mask.tif", ignore)
    records = pd.DataFrame([{"image_path": path, "mask_path": path, "row_off": r, "col_off": c, "patch_size": 64}
                            for r in (0, 64) for c in range(0, 256, 64)])
    warnings = []
    compute_composition(records, nodata_class=250, exclude_black_border=False, exclude_border_nodata=False,
                        k_selection="fixed", k=2, progress=Progress(warning=warnings.append))
    assert not any("nodata" in w for w in warnings), warnings
    with pytest.raises(BalancedSamplingError, match="fewer than the 2 clusters"):
        compute_composition(records, nodata_class=250, exclude_black_border=False, k_selection="fixed", k=2,
                            progress=Progress(warning=warnings.append))
    scattered = [w for w in warnings if "8 of 8 patches (100%) are excluded because their mask holds the nodata "
                 "class 250" in w]
    assert len(scattered) == 1, warnings
    share = float(np.mean(ignore == 250))  # every patch is excluded: their pixels are all the pixels
    assert f"It covers only {share:.1%} of their pixels" in scattered[0]
    assert "turn off the exclusion of patches with nodata on the mask border" in scattered[0]

    background = write_geotiff(tmp_path / "background.tif", labels)
    records["mask_path"] = background
    warnings.clear()
    result = compute_composition(records, nodata_class=0, exclude_black_border=False, exclude_border_nodata=False,
                                 k_selection="fixed", k=2, progress=Progress(warning=warnings.append))
    assert result.table["excluded"].sum() == 2, "the two windows with no class pixel at all"
    covered = float(np.mean(labels == 0))
    assert [w for w in warnings if "covers" in w] == [
        f"The nodata class 0 covers {covered:.0%} of the mask pixels, which are left out of the class proportions. "
        "If 0 is a real class (e.g. background), set the nodata class to a value your masks do not use, such as -1."]

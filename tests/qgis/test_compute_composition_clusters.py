"""Compute composition clusters through processing.run: fields, values, errors, input untouched."""


import numpy as np
import pytest
import rasterio
from qgis.core import QgsFeature, QgsField, QgsFields, QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer
from qgis.PyQt.QtCore import QVariant
from rasterio.windows import Window

from .conftest import RecordingFeedback, copy_layer_with, layer_rows, sha1

NEW_FIELDS = ("freq_cluster_id", "freq_cluster_size", "freq_cluster_weight", "class_entropy", "nodata_ratio",
              "excluded", "exclusion_reason")


@pytest.fixture(scope="module")
def clusters(run_algorithm, footprints_path, tmp_path_factory):
    before = sha1(footprints_path)
    out = str(tmp_path_factory.mktemp("clusters") / "clusters.gpkg")
    run_algorithm("computecompositionclusters", {"INPUT": footprints_path, "OUTPUT": out})
    assert sha1(footprints_path) == before, "the input layer must stay untouched"
    return layer_rows(out)


def test_output_keeps_input_fields_and_adds_the_contract_fields(clusters, footprints_path):
    input_fields = set(QgsVectorLayer(footprints_path, "fp", "ogr").fields().names())
    assert input_fields <= set(clusters[0])
    for name in NEW_FIELDS + tuple(f"cls_{c}" for c in range(1, 7)):
        assert name in clusters[0], name
    assert "cls_0" not in clusters[0], "the nodata class gets no proportion field"
    assert len(clusters) == 384


def test_class_proportions_match_the_mask(clusters):
    for row in clusters[::7]:
        with rasterio.open(row["mask_path"]) as ds:
            window = ds.read(1, window=Window(row["col_off"], row["row_off"], 64, 64))
        valid = window[window != 0]
        for c in range(1, 7):
            expected = (valid == c).mean() if valid.size else 0.0
            assert row[f"cls_{c}"] == pytest.approx(expected, abs=1e-9), (row["patch_id"], c)
        assert row["nodata_ratio"] == pytest.approx((window == 0).mean())
        shares = np.array([row[f"cls_{c}"] for c in range(1, 7)])
        shares = shares[shares > 0]
        assert row["class_entropy"] == pytest.approx(-(shares * np.log(shares)).sum(), abs=1e-9)


def test_nodata_strips_are_excluded_and_do_not_shape_clusters(clusters):
    excluded = [r for r in clusters if r["excluded"]]
    # Tile 1 has a nodata strip on its left edge (8 patches), tile 4 on its bottom edge (8 patches).
    assert {(r["image_path"].split("/")[-1], r["col_off"] if "01" in r["image_path"] else r["row_off"])
            for r in excluded} == {("tile_01.tif", 0), ("tile_04.tif", 448)}
    assert len(excluded) == 16
    for row in excluded:
        assert "border_nodata" in row["exclusion_reason"]
        assert row["freq_cluster_id"] == -1
        assert row["freq_cluster_size"] == 0
        assert row["freq_cluster_weight"] == 0


def test_a_rerun_on_its_own_output_keeps_the_border_exclusions(run_algorithm, footprints_path, tmp_path):
    """With the layer's proportions (the default), no mask is read: the border flags found from the pixels before
    are kept, not reset to False (which brought 16 nodata-strip patches back into the weights)."""
    first = tmp_path / "first.gpkg"
    run_algorithm("computecompositionclusters", {"INPUT": footprints_path, "OUTPUT": str(first)})
    again = tmp_path / "again.gpkg"
    feedback = RecordingFeedback()
    run_algorithm("computecompositionclusters", {"INPUT": str(first), "OUTPUT": str(again)}, feedback=feedback)
    rows = layer_rows(str(again))
    assert sum(bool(r["excluded"]) for r in rows) == 16
    assert all("border_nodata" in r["exclusion_reason"] for r in rows if r["excluded"])
    assert any("Border exclusions kept from the layer fields border_nodata" in line for line in feedback.lines)
    # Another nodata class than the proportions were computed with: the masks are read again with it, as a run on
    # the footprints would (class 3 is nodata now: no cls_3, its pixels counted in nodata_ratio).
    feedback = RecordingFeedback()
    other = str(tmp_path / "other.gpkg")
    run_algorithm("computecompositionclusters", {"INPUT": str(first), "NODATA_CLASS": 3, "OUTPUT": other},
                  feedback=feedback)
    assert any("have a field cls_3 although Nodata class is 3" in line and "masks are read again" in line
               for line in feedback.lines), feedback.lines
    fresh = str(tmp_path / "fresh.gpkg")
    run_algorithm("computecompositionclusters", {"INPUT": footprints_path, "NODATA_CLASS": 3, "OUTPUT": fresh})
    rows, expected = layer_rows(other), layer_rows(fresh)
    assert "cls_3" not in rows[0] and "cls_0" in rows[0]  # 0 is a class now, 3 is nodata
    assert any("Fields cls_3 of an earlier run are left out" in line for line in feedback.lines), feedback.lines
    for column in ("cls_1", "cls_2", "cls_4", "nodata_ratio", "border_nodata", "excluded", "freq_cluster_id"):
        assert [r[column] for r in rows] == [r[column] for r in expected], column


def test_cluster_weight_is_one_over_cluster_size(clusters):
    included = [r for r in clusters if not r["excluded"]]
    ids = [r["freq_cluster_id"] for r in included]
    k = len(set(ids))
    assert 4 <= k <= 16
    for row in included:
        size = ids.count(row["freq_cluster_id"])
        assert row["freq_cluster_size"] == size
        assert row["freq_cluster_weight"] == pytest.approx(1.0 / size)


def test_fixed_k_and_renamed_fields(run_algorithm, footprints_path, tmp_path):
    renamed = QgsVectorLayer("Polygon?crs=EPSG:32633", "renamed", "memory")
    fields = QgsFields()
    for name, kind in (("img", QVariant.String), ("lbl", QVariant.String), ("r", QVariant.Int),
                       ("c", QVariant.Int), ("s", QVariant.Int)):
        fields.append(QgsField(name, kind))
    renamed.dataProvider().addAttributes(fields)
    renamed.updateFields()
    features = []
    for row in layer_rows(footprints_path)[:40]:
        feature = QgsFeature(renamed.fields())
        feature.setAttributes([row["image_path"], row["mask_path"], row["row_off"], row["col_off"], row["patch_size"]])
        features.append(feature)
    renamed.dataProvider().addFeatures(features)
    result = run_algorithm("computecompositionclusters", {
        "INPUT": renamed, "K_SELECTION": 1, "K": 3, "IMAGE_PATH_FIELD": "img", "MASK_PATH_FIELD": "lbl",
        "ROW_OFF_FIELD": "r", "COL_OFF_FIELD": "c", "PATCH_SIZE_FIELD": "s", "OUTPUT": "memory:",
    })
    rows = layer_rows(result["OUTPUT"])
    assert len(rows) == 40
    assert {r["freq_cluster_id"] for r in rows if not r["excluded"]} == {0, 1, 2}
    assert {"img", "lbl", "r", "c", "s"} <= set(rows[0])


def test_missing_field_is_named(run_algorithm, footprints_path, tmp_path):
    with pytest.raises(QgsProcessingException, match="no field 'labels'"):
        run_algorithm("computecompositionclusters", {
            "INPUT": footprints_path, "MASK_PATH_FIELD": "labels", "OUTPUT": str(tmp_path / "x.gpkg")})


def test_unreadable_raster_is_named(run_algorithm, footprints_path, tmp_path):
    def point_to_missing_file(layer, feature):
        layer.changeAttributeValue(feature.id(), layer.fields().indexOf("mask_path"), "/nowhere/missing_mask.tif")

    edited = copy_layer_with(footprints_path, tmp_path, point_to_missing_file)
    with pytest.raises(QgsProcessingException, match="missing_mask.tif"):
        run_algorithm("computecompositionclusters", {"INPUT": edited, "OUTPUT": str(tmp_path / "x.gpkg")})


def test_window_out_of_bounds_is_named(run_algorithm, footprints_path, tmp_path):
    def move_off_raster(layer, feature):
        layer.changeAttributeValue(feature.id(), layer.fields().indexOf("row_off"), 5000)

    edited = copy_layer_with(footprints_path, tmp_path, move_off_raster)
    with pytest.raises(QgsProcessingException, match="(?i)out of .*bounds|outside"):
        run_algorithm("computecompositionclusters", {"INPUT": edited, "OUTPUT": str(tmp_path / "x.gpkg")})


def test_float_mask_is_refused(run_algorithm, footprints_path, synthetic_dataset, tmp_path):
    float_mask = str(tmp_path / "float_mask.tif")
    with rasterio.open(synthetic_dataset.masks[0]) as src:
        profile = src.profile | {"dtype": "float32", "nodata": None}
        data = src.read(1).astype("float32") + 0.5
    with rasterio.open(float_mask, "w", **profile) as dst:
        dst.write(data, 1)

    def use_float_mask(layer, feature):
        layer.changeAttributeValue(feature.id(), layer.fields().indexOf("mask_path"), float_mask)

    edited = copy_layer_with(footprints_path, tmp_path, use_float_mask)
    with pytest.raises(QgsProcessingException, match="float_mask.tif"):
        run_algorithm("computecompositionclusters", {"INPUT": edited, "OUTPUT": str(tmp_path / "x.gpkg")})


def test_too_few_valid_patches_for_k_min(run_algorithm, footprints_path, tmp_path):
    # A layer URI, not a Python-owned layer: a QgsVectorLayer kept alive by the exception's traceback
    # would be destroyed after QgsApplication.exitQgis() and crash the interpreter at exit.
    subset = f"{footprints_path}|subset=fid <= 3"
    with pytest.raises(QgsProcessingException, match="Only 3 of 3 patches are valid.*K_MIN"):
        run_algorithm("computecompositionclusters", {"INPUT": subset, "OUTPUT": str(tmp_path / "x.gpkg")})


def test_cancel_stops_without_output(run_algorithm, footprints_path, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    out = tmp_path / "never.gpkg"
    with pytest.raises(QgsProcessingException, match="(?i)cancel"):
        run_algorithm("computecompositionclusters", {"INPUT": footprints_path, "OUTPUT": str(out)}, feedback)
    assert not out.exists()


def test_default_entropy_threshold_is_off(clusters):
    assert not any("has_low_entropy" in (r["exclusion_reason"] or "") for r in clusters)


def test_low_entropy_patches_are_excluded_with_their_reason(run_algorithm, footprints_path, tmp_path):
    from qgis.core import QgsApplication

    definition = QgsApplication.processingRegistry().algorithmById(
        "balanced_sampling:computecompositionclusters").parameterDefinition("MIN_ENTROPY_THRESHOLD")
    assert definition.defaultValue() == 0
    assert definition.flags() & definition.FlagAdvanced
    assert definition.metadata()["widget_wrapper"]["decimals"] == 3

    threshold = 0.8
    result = run_algorithm("computecompositionclusters", {
        "INPUT": footprints_path, "MIN_ENTROPY_THRESHOLD": threshold, "K_SELECTION": 1, "K": 3,
        "OUTPUT": str(tmp_path / "low.gpkg")})
    rows = layer_rows(result["OUTPUT"])
    low = [r for r in rows if r["class_entropy"] < threshold]
    assert 0 < len(low) < len(rows)
    for row in rows:
        reasons = (row["exclusion_reason"] or "").split(",")
        assert ("has_low_entropy" in reasons) == (row["class_entropy"] < threshold), row["patch_id"]
    for row in low:
        assert row["excluded"] and row["freq_cluster_id"] == -1 and row["freq_cluster_weight"] == 0
    # the border exclusions still apply, joined with the new reason where both hold
    assert sum("border_nodata" in (r["exclusion_reason"] or "") for r in rows) == 16

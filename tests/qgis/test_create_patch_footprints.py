"""Create patch footprints through processing.run on the synthetic dataset."""

import pytest
import rasterio
from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException, QgsVectorLayer

from balanced_sampling_plugin.records import patch_id

from .conftest import layer_rows


def test_footprints_from_layers(footprints_path, synthetic_dataset):
    layer = QgsVectorLayer(footprints_path, "fp", "ogr")
    assert layer.crs() == QgsCoordinateReferenceSystem("EPSG:32633")
    for name in ("patch_id", "image_path", "mask_path", "row_off", "col_off", "patch_size"):
        assert layer.fields().indexOf(name) >= 0, name
    rows = layer_rows(footprints_path)
    assert len(rows) == 6 * (512 // 64) ** 2
    images = {r["image_path"] for r in rows}
    assert images == set(synthetic_dataset.images)
    for row in rows:
        # image and mask of the same tile are paired, and the id is the engine's stable id
        assert row["mask_path"].split("/")[-1] == row["image_path"].split("/")[-1]
        assert row["patch_id"] == patch_id(row["image_path"], row["row_off"], row["col_off"], 64)


def test_footprint_geometry_matches_the_raster_window(footprints_path, synthetic_dataset):
    rows = layer_rows(footprints_path)
    row = next(r for r in rows if r["image_path"] == synthetic_dataset.images[2] and r["row_off"] == 64
               and r["col_off"] == 128)
    with rasterio.open(synthetic_dataset.images[2]) as ds:
        left, top = ds.transform @ (128, 64)
        right, bottom = ds.transform @ (192, 128)
    layer = QgsVectorLayer(footprints_path, "fp", "ogr")
    feature = next(f for f in layer.getFeatures() if f["patch_id"] == row["patch_id"])
    box = feature.geometry().boundingBox()
    assert box.xMinimum() == pytest.approx(left)
    assert box.xMaximum() == pytest.approx(right)
    assert box.yMaximum() == pytest.approx(top)
    assert box.yMinimum() == pytest.approx(bottom)
    assert feature.geometry().area() == pytest.approx((64 * synthetic_dataset.pixel_size) ** 2)


@pytest.mark.parametrize("edge, expected_per_axis", [(0, [0, 100, 200, 300, 400]), (1, [0, 100, 200, 300, 400, 412])])
def test_folder_pattern_stride_and_edge_mode(run_algorithm, synthetic_dataset, tmp_path, edge, expected_per_axis):
    import os

    out = str(tmp_path / "fp.gpkg")
    run_algorithm("createpatchfootprints", {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]), "IMAGE_PATTERN": "tile_0[01].tif",
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]),
        "PATCH_SIZE": 100, "STRIDE": 100, "EDGE_MODE": edge, "OUTPUT": out,
    })
    rows = layer_rows(out)
    assert len(rows) == 2 * len(expected_per_axis) ** 2
    assert sorted({r["row_off"] for r in rows}) == expected_per_axis
    assert all(r["row_off"] + 100 <= 512 and r["col_off"] + 100 <= 512 for r in rows)


def test_unmatched_image_is_named(run_algorithm, synthetic_dataset, tmp_path):
    with pytest.raises(QgsProcessingException, match="tile_02.tif"):
        run_algorithm("createpatchfootprints", {
            "IMAGES": synthetic_dataset.images[:3], "MASKS": synthetic_dataset.masks[:2],
            "PATCH_SIZE": 64, "OUTPUT": str(tmp_path / "x.gpkg"),
        })


def test_no_input_is_a_clear_error(run_algorithm, tmp_path):
    with pytest.raises(QgsProcessingException, match="image"):
        run_algorithm("createpatchfootprints", {"PATCH_SIZE": 64, "OUTPUT": str(tmp_path / "x.gpkg")})

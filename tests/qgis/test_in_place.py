"""In-place update: fields written into the input layer, all or nothing."""

import shutil

import pytest
from qgis.core import QgsFeatureRequest, QgsProcessingException, QgsVectorLayer

from .conftest import copy_layer_with, layer_rows, sha1


def test_composition_in_place_on_a_geopackage(run_algorithm, footprints_path, tmp_path):
    copy = str(tmp_path / "patches.gpkg")
    shutil.copy(footprints_path, copy)
    result = run_algorithm("computecompositionclusters", {"INPUT": copy, "K_SELECTION": 1, "K": 5,
                                                          "IN_PLACE": True})
    rows = layer_rows(copy)
    assert len(rows) == 384
    assert {"freq_cluster_id", "freq_cluster_weight", "cls_6", "excluded"} <= set(rows[0])
    assert {r["freq_cluster_id"] for r in rows if not r["excluded"]} == set(range(5))
    output = result["OUTPUT"]  # the input layer (processing.run hands back the layer, not its id)
    assert copy in (output if isinstance(output, str) else output.source())
    # A second in-place step (combine) updates the same file again.
    run_algorithm("combinesamplerweights", {"INPUT": copy, "SAMPLING_METHOD": 6, "IN_PLACE": True})
    assert all((r["sampler_weight"] > 0) != bool(r["excluded"]) for r in layer_rows(copy))


def test_in_place_on_a_memory_layer(run_algorithm, footprints_path):
    source = QgsVectorLayer(footprints_path, "fp", "ogr")
    memory = source.materialize(QgsFeatureRequest())
    run_algorithm("computecompositionclusters", {"INPUT": memory, "K_SELECTION": 1, "K": 4, "IN_PLACE": True})
    assert memory.fields().indexOf("freq_cluster_weight") >= 0
    assert not memory.isEditable()
    values = [f["freq_cluster_weight"] for f in memory.getFeatures()]
    assert all(v is not None for v in values)


def test_failed_run_leaves_the_file_unchanged(run_algorithm, footprints_path, tmp_path):
    def point_to_missing_file(layer, feature):
        layer.changeAttributeValue(feature.id(), layer.fields().indexOf("mask_path"), "/nowhere/missing.tif")

    copy = copy_layer_with(footprints_path, tmp_path, point_to_missing_file)
    before = sha1(copy)
    with pytest.raises(QgsProcessingException, match="missing.tif"):
        run_algorithm("computecompositionclusters", {"INPUT": copy, "IN_PLACE": True})
    assert sha1(copy) == before
    assert "freq_cluster_id" not in QgsVectorLayer(copy, "after", "ogr").fields().names()

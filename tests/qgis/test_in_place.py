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


def test_a_memory_layer_put_in_edit_mode_during_the_run_keeps_the_users_edits(footprints_path):
    """The update runs when the run ends; a layer the user began editing meanwhile is left to the user."""
    import pandas as pd

    from balanced_sampling.processing_provider.layers import update_layer_in_place

    memory = QgsVectorLayer(footprints_path, "fp", "ogr").materialize(QgsFeatureRequest())
    first = next(memory.getFeatures())
    memory.startEditing()
    memory.changeAttributeValue(first.id(), memory.fields().indexOf("patch_size"), 999)  # the user's own edit
    table = pd.DataFrame({"freq_cluster_weight": [0.5]}, index=[first.id()])
    with pytest.raises(QgsProcessingException, match="was put in edit mode during the run"):
        update_layer_in_place(memory, table)
    assert memory.isEditable() and memory.fields().indexOf("freq_cluster_weight") < 0
    assert memory.getFeature(first.id())["patch_size"] == 999  # still in the user's buffer, not rolled back
    memory.rollBack()


def test_a_refused_memory_layer_update_puts_back_the_files_the_run_replaced(run_algorithm, clusters_path, tmp_path):
    """Combine in place on a memory layer with a training CSV and a report: the layer is updated after the run, in
    the main thread; when that is refused (the user began editing it meanwhile), the CSV and report it had
    already put in place give way to the earlier files again."""
    from qgis.core import QgsProcessingFeedback

    memory = QgsVectorLayer(clusters_path, "clusters", "ogr").materialize(QgsFeatureRequest())
    csv, report = tmp_path / "train.csv", tmp_path / "report.html"
    run_algorithm("combinesamplerweights", {"INPUT": clusters_path, "SAMPLING_METHOD": 6,
                                            "OUTPUT": str(tmp_path / "first.gpkg"),
                                            "OUTPUT_CSV": str(csv), "OUTPUT_REPORT": str(report)})
    before = {path: (sha1(path), path.stat().st_ino) for path in (csv, report)}

    feedback = QgsProcessingFeedback()
    push_info = feedback.pushInfo

    def begin_editing_late(message):  # the user starts editing as the run reports its written CSV
        if message.startswith("Training CSV") and not memory.isEditable():
            memory.startEditing()
        push_info(message)

    feedback.pushInfo = begin_editing_late
    errors = []
    feedback.reportError = lambda message, fatal=False: errors.append(message)
    # QGIS reports an error of the step after the run (postProcessAlgorithm) in the log rather than raising it.
    run_algorithm("combinesamplerweights", {"INPUT": memory, "SAMPLING_METHOD": 6, "IN_PLACE": True,
                                            "OUTPUT_CSV": str(csv), "OUTPUT_REPORT": str(report)}, feedback)
    assert any("was put in edit mode during the run" in message for message in errors), errors
    assert memory.isEditable() and memory.fields().indexOf("sampler_weight") < 0
    assert {path: (sha1(path), path.stat().st_ino) for path in (csv, report)} == before  # the very same files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.gpkg", "report.html", "train.csv"]
    memory.rollBack()

    # Without the interruption the same run puts both files and the fields in place.
    run_algorithm("combinesamplerweights", {"INPUT": memory, "SAMPLING_METHOD": 6, "IN_PLACE": True,
                                            "OUTPUT_CSV": str(csv), "OUTPUT_REPORT": str(report)})
    assert memory.fields().indexOf("sampler_weight") >= 0 and csv.stat().st_ino != before[csv][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.gpkg", "report.html", "train.csv"]


def test_failed_run_leaves_the_file_unchanged(run_algorithm, footprints_path, tmp_path):
    def point_to_missing_file(layer, feature):
        layer.changeAttributeValue(feature.id(), layer.fields().indexOf("mask_path"), "/nowhere/missing.tif")

    copy = copy_layer_with(footprints_path, tmp_path, point_to_missing_file)
    before = sha1(copy)
    with pytest.raises(QgsProcessingException, match="missing.tif"):
        run_algorithm("computecompositionclusters", {"INPUT": copy, "IN_PLACE": True})
    assert sha1(copy) == before
    assert "freq_cluster_id" not in QgsVectorLayer(copy, "after", "ogr").fields().names()


def test_in_place_on_a_layer_open_in_the_project_shows_the_new_fields(run_algorithm, clusters_path, tmp_path):
    from qgis.core import QgsProject

    copy = str(tmp_path / "live.gpkg")
    shutil.copy(clusters_path, copy)
    layer = QgsVectorLayer(copy, "live", "ogr")
    QgsProject.instance().addMapLayer(layer)
    try:
        run_algorithm("combinesamplerweights", {"INPUT": layer, "SAMPLING_METHOD": 6, "IN_PLACE": True})
        assert layer.fields().indexOf("sampler_weight") >= 0, "the open layer re-read its file"
        weights = [f["sampler_weight"] for f in layer.getFeatures()]
        assert len(weights) == 384 and all(w is not None for w in weights)
        assert weights == [r["sampler_weight"] for r in layer_rows(copy)]
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_in_place_refuses_a_layer_in_edit_mode(run_algorithm, clusters_path, tmp_path):
    from qgis.core import QgsProject

    copy = str(tmp_path / "editing.gpkg")
    shutil.copy(clusters_path, copy)
    # A project layer, as in the desktop (a failing run given a bare Python layer crashes QGIS 3.22 at exit).
    layer = QgsVectorLayer(copy, "editing", "ogr")
    QgsProject.instance().addMapLayer(layer)
    layer.startEditing()
    before = sha1(copy)  # after startEditing: QGIS itself may switch the file's journal mode
    try:
        with pytest.raises(QgsProcessingException, match="is in edit mode; save or discard its edits"):
            run_algorithm("combinesamplerweights", {"INPUT": layer.id(), "SAMPLING_METHOD": 6, "IN_PLACE": True})
        assert sha1(copy) == before
    finally:
        layer.rollBack()
        QgsProject.instance().removeMapLayer(layer.id())
    assert "sampler_weight" not in layer_rows(copy)[0]


def test_in_place_on_one_layer_of_a_geopackage_with_two(run_algorithm, clusters_path, footprints_path, tmp_path):
    from osgeo import gdal

    gdal.UseExceptions()
    copy = str(tmp_path / "two.gpkg")
    shutil.copy(clusters_path, copy)
    gdal.VectorTranslate(copy, footprints_path, accessMode="update", layerName="other")
    layer = QgsVectorLayer(f"{copy}|layername=clusters", "clusters", "ogr")
    assert layer.isValid()
    run_algorithm("combinesamplerweights", {"INPUT": layer, "SAMPLING_METHOD": 6, "IN_PLACE": True})
    assert "sampler_weight" in layer_rows(f"{copy}|layername=clusters")[0]
    assert "sampler_weight" not in layer_rows(f"{copy}|layername=other")[0]


@pytest.mark.parametrize("destination", ["TEMPORARY_OUTPUT", "file"])
def test_the_output_is_listed_once_to_load_when_the_run_ends(plugin, clusters_path, tmp_path, destination):
    """As in the Toolbox ("Open output file after running"): one entry, for the layer that exists."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
    )

    sink = str(tmp_path / "weights.gpkg") if destination == "file" else "TEMPORARY_OUTPUT"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("balanced_sampling:combinesamplerweights")
    results, ok = algorithm.run({"INPUT": clusters_path, "SAMPLING_METHOD": 6,
                                 "OUTPUT": QgsProcessingOutputLayerDefinition(sink, QgsProject.instance())},
                                context, QgsProcessingFeedback())
    assert ok
    to_load = list(context.layersToLoadOnCompletion())
    assert to_load == [results["OUTPUT"]]
    if destination == "file":
        assert results["OUTPUT"].startswith(sink)
    else:
        assert context.getMapLayer(results["OUTPUT"]) is not None or \
            context.temporaryLayerStore().mapLayer(results["OUTPUT"]) is not None


def test_in_place_with_another_nodata_class_than_the_layers_proportions_is_refused(run_algorithm, clusters_path,
                                                                                   tmp_path):
    """The layer's cls_3 would stay beside proportions that make 3 nodata: refused before any work, file as it was."""
    copy = str(tmp_path / "clusters.gpkg")
    shutil.copy(clusters_path, copy)
    before = sha1(copy)
    with pytest.raises(QgsProcessingException, match="has a field cls_3 although Nodata class is 3.*Write a new layer"):
        run_algorithm("computecompositionclusters", {"INPUT": copy, "NODATA_CLASS": 3, "IN_PLACE": True})
    assert sha1(copy) == before


def test_an_output_given_beside_in_place_is_said_not_written(run_algorithm, clusters_path, tmp_path):
    from .conftest import RecordingFeedback

    copy = str(tmp_path / "clusters.gpkg")
    shutil.copy(clusters_path, copy)
    feedback = RecordingFeedback()
    result = run_algorithm("combinesamplerweights", {"INPUT": copy, "SAMPLING_METHOD": 6, "IN_PLACE": True,
                                                     "OUTPUT": str(tmp_path / "also.gpkg")}, feedback)
    assert not (tmp_path / "also.gpkg").exists()
    assert any(line.startswith("The input layer is updated in place, so OUTPUT '") and "also.gpkg" in line
               for line in feedback.lines), feedback.lines
    output = result["OUTPUT"]
    assert copy in (output if isinstance(output, str) else output.source())

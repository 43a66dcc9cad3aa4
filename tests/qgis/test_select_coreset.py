"""Select coreset through processing.run: the methods on the chain's layer, the vector step with a layer in
another CRS, spatial diversity, the embedding cache, the training CSV, the style."""

import math

import numpy as np
import pandas as pd
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)

from balanced_sampling_plugin.contract import BUDGET_MODES, CORESET_METHODS
from balanced_sampling_plugin.embedding_cache import EmbeddingCache
from balanced_sampling_plugin.records import patch_ids, validate_records

from .conftest import RecordingFeedback, layer_rows


@pytest.fixture(scope="module")
def weights_path(run_algorithm, clusters_path, tmp_path_factory):
    """The clusters layer with class_balanced sampler weights."""
    out = str(tmp_path_factory.mktemp("coreset_weights") / "weights.gpkg")
    run_algorithm("combinesamplerweights", {"INPUT": clusters_path, "SAMPLING_METHOD": 6, "OUTPUT": out})
    return out


def select(run_algorithm, tmp_path, feedback=None, **parameters):
    arguments = {"OUTPUT": str(tmp_path / "coreset.gpkg"), "OUTPUT_CSV": str(tmp_path / "coreset.csv")}
    arguments.update(parameters)
    result = run_algorithm("selectcoreset", arguments, feedback)
    return result, pd.DataFrame(layer_rows(result["OUTPUT"]))


def included(table):
    return ~table["excluded"].astype(bool)


def test_lc_selects_the_highest_entropies_and_writes_the_csv(run_algorithm, weights_path, tmp_path):
    result, table = select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("lc"),
                           BUDGET=0.3)
    pool = table[included(table)]
    expected = math.floor(0.3 * len(pool) + 0.5)
    assert result["SELECTED_PATCHES"] == expected == int(table["coreset_selected"].sum())
    assert result["POOL_PATCHES"] == len(pool)
    assert not table.loc[~included(table), "coreset_selected"].astype(bool).any()
    assert table.loc[~included(table), "coreset_score"].isna().all()
    chosen = pool[pool["coreset_selected"].astype(bool)]
    assert chosen["class_entropy"].min() >= pool.loc[~pool["coreset_selected"].astype(bool), "class_entropy"].max()
    np.testing.assert_allclose(pool["coreset_score"], pool["class_entropy"] / pool["class_entropy"].max())
    assert set(chosen["selection_step"]) == {"lc"}
    csv = pd.read_csv(tmp_path / "coreset.csv")
    assert len(csv) == expected
    assert csv["sampler_weight"].mean() == pytest.approx(1.0)
    expected_weights = chosen["sampler_weight"] / chosen["sampler_weight"].mean()
    assert sorted(csv["sampler_weight"]) == pytest.approx(sorted(expected_weights))
    assert list(csv.columns[:6]) == ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]


def test_budget_as_a_count(run_algorithm, weights_path, tmp_path):
    result, table = select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("cb"),
                           BUDGET=7, BUDGET_MODE=BUDGET_MODES.index("count"))
    assert result["SELECTED_PATCHES"] == 7
    steps = table.loc[table["coreset_selected"].astype(bool), "selection_step"]
    assert set(steps) == {"cb"}


def test_fraction_above_one_is_refused(run_algorithm, weights_path, tmp_path):
    with pytest.raises(QgsProcessingException, match="budget mode 'count'"):
        select(run_algorithm, tmp_path, INPUT=weights_path, BUDGET=5)


def footprint_rectangles(path):
    """fid -> (bounding box, excluded) of the patch layer's features."""
    layer = QgsVectorLayer(path, "patches", "ogr")
    return layer, {f.id(): (f.geometry().boundingBox(), bool(f["excluded"])) for f in layer.getFeatures()}


def test_vector_step_reprojects_a_layer_in_another_crs(run_algorithm, weights_path, tmp_path):
    patches, boxes = footprint_rectangles(weights_path)
    fids = [fid for fid, (box, excluded) in sorted(boxes.items()) if not excluded]
    first = boxes[fids[0]][0]
    # inside the first patch, 4 map units from its edges, and one strip reaching 4 units into its right
    # neighbour (if any): the neighbour overlaps by a thin strip only
    strip = first.width() / 16
    rectangle = QgsRectangle(first.xMinimum() + strip, first.yMinimum() + strip, first.xMaximum() + strip,
                             first.yMaximum() - strip)
    to_wgs84 = QgsCoordinateTransform(patches.crs(), QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    polygon = QgsGeometry.fromRect(rectangle)
    polygon.densifyByCount(20)
    assert polygon.transform(to_wgs84) == 0
    vector = QgsVectorLayer("Polygon?crs=EPSG:4326", "rare class polygons", "memory")
    feature = QgsFeature()
    feature.setGeometry(polygon)
    vector.dataProvider().addFeatures([feature])
    expected_any = {fid for fid, (box, excluded) in boxes.items()
                    if not excluded and box.intersect(rectangle).area() > 0.5}
    assert fids[0] in expected_any and len(expected_any) == 2, expected_any  # the patch and its right neighbour
    result, table = select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("lc"),
                           BUDGET=10, BUDGET_MODE=1, VECTOR_LAYER=vector, MIN_INTERSECT_AREA=0.0)
    table.index = [f.id() for f in QgsVectorLayer(result["OUTPUT"], "o", "ogr").getFeatures()]
    assert set(table.index[table["selection_step"] == "vector"]) == expected_any
    # a minimum overlap of half a patch keeps only the patch the polygon covers
    half = first.area() / 2
    result, table = select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("lc"),
                           BUDGET=10, BUDGET_MODE=1, VECTOR_LAYER=vector, MIN_INTERSECT_AREA=half,
                           OUTPUT=str(tmp_path / "second.gpkg"), OUTPUT_CSV=str(tmp_path / "second.csv"))
    table.index = [f.id() for f in QgsVectorLayer(result["OUTPUT"], "o", "ogr").getFeatures()]
    assert set(table.index[table["selection_step"] == "vector"]) == {fids[0]}
    assert (table["selection_step"] == "lc").sum() == 9


def test_a_layer_of_lines_is_refused_as_the_priority_polygons(run_algorithm, weights_path, tmp_path):
    lines = QgsVectorLayer("LineString?crs=EPSG:4326", "coastline", "memory")
    with pytest.raises(QgsProcessingException, match="'coastline' holds line geometries; .* give a polygon layer"):
        select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("lc"), BUDGET=10,
               BUDGET_MODE=1, VECTOR_LAYER=lines)


def test_at_most_one_patch_per_grid_cell(run_algorithm, weights_path, tmp_path):
    patches, boxes = footprint_rectangles(weights_path)
    size = next(iter(boxes.values()))[0].width() * 4
    feedback = RecordingFeedback()
    result, table = select(run_algorithm, tmp_path, feedback, INPUT=weights_path, METHOD=0, BUDGET=0.5,
                           MAX_PER_CELL=1, GRID_CELL_SIZE=size)
    layer = QgsVectorLayer(result["OUTPUT"], "o", "ogr")
    cells = [(math.floor(f.geometry().centroid().asPoint().x() / size),
              math.floor(f.geometry().centroid().asPoint().y() / size))
             for f in layer.getFeatures() if f["coreset_selected"]]
    assert len(cells) == len(set(cells)) == result["SELECTED_PATCHES"]
    assert result["SELECTED_PATCHES"] < math.floor(0.5 * result["POOL_PATCHES"] + 0.5)
    assert any("fewer than the budget" in line for line in feedback.lines)


def test_distances_follow_the_layer_units_and_degrees_are_said(run_algorithm, weights_path, tmp_path):
    from qgis.core import (
        QgsApplication,
        QgsCoordinateReferenceSystem,
        QgsFeatureRequest,
        QgsProcessingParameterDistance,
    )

    algorithm = QgsApplication.processingRegistry().algorithmById("balanced_sampling:selectcoreset")
    for name in ("GRID_CELL_SIZE", "MIN_DISTANCE"):
        definition = algorithm.parameterDefinition(name)
        assert isinstance(definition, QgsProcessingParameterDistance) and definition.parentParameterName() == "INPUT"
    # The same patches claimed to be in EPSG:4326: a distance of 100 is 100 degrees, and the log says so.
    degrees = QgsVectorLayer(weights_path, "w", "ogr").materialize(QgsFeatureRequest())
    degrees.setCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    feedback = RecordingFeedback()
    select(run_algorithm, tmp_path, feedback, INPUT=degrees, METHOD=0, BUDGET=0.5, MIN_DISTANCE=100)
    assert any("CRS EPSG:4326 is geographic: the grid cell size and the minimum distance are in degrees" in line
               for line in feedback.lines), feedback.lines
    feedback = RecordingFeedback()
    select(run_algorithm, tmp_path, feedback, INPUT=weights_path, METHOD=0, BUDGET=0.5, MIN_DISTANCE=100)
    assert not any("is geographic" in line for line in feedback.lines)


def write_cache(weights_path, path, skip=0):
    table = pd.DataFrame(layer_rows(weights_path))
    keys = patch_ids(validate_records(table)).to_numpy()
    pool = np.flatnonzero(~table["excluded"].astype(bool).to_numpy())
    keep = np.setdiff1d(np.arange(len(keys)), pool[:skip])
    vectors = np.random.default_rng(0).normal(size=(len(keep), 16)).astype(np.float32)
    EmbeddingCache(str(path)).save(keys[keep], "dinov2-test|weights=x", vectors)
    return table.iloc[pool[:skip]]


def test_fd_reads_the_embedding_cache(run_algorithm, weights_path, tmp_path):
    write_cache(weights_path, tmp_path / "emb.parquet")
    feedback = RecordingFeedback()
    result, table = select(run_algorithm, tmp_path, feedback, INPUT=weights_path, METHOD=CORESET_METHODS.index("fd"),
                           BUDGET=0.25, PARQUET_PATH=str(tmp_path / "emb.parquet"), FD_K_MIN=2, FD_K_MAX=5)
    chosen = table[table["coreset_selected"].astype(bool)]
    assert len(chosen) == result["SELECTED_PATCHES"] > 0
    assert set(chosen["selection_step"]) == {"fd"}
    assert any("Random selection" in line and "coverage radius" in line for line in feedback.lines)


def test_missing_embeddings_name_the_patch(run_algorithm, weights_path, tmp_path):
    missing = write_cache(weights_path, tmp_path / "emb.parquet", skip=1)
    with pytest.raises(QgsProcessingException, match="1 of .* patches have no embedding") as error:
        select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("fa"),
               PARQUET_PATH=str(tmp_path / "emb.parquet"))
    assert f"col_off={int(missing['col_off'].iloc[0])}" in str(error.value)
    with pytest.raises(QgsProcessingException, match="embedding cache"):
        select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("fa"))


def test_style_marks_selected_and_unselected(run_algorithm, weights_path, tmp_path):
    from balanced_sampling.processing_provider.styles import SelectionStyle

    result, _ = select(run_algorithm, tmp_path, INPUT=weights_path, BUDGET=0.2)
    renderer = SelectionStyle().renderer(QgsVectorLayer(result["OUTPUT"], "o", "ogr"))
    labels = [rule.label() for rule in renderer.rootRule().children()]
    assert labels == ["selected (lc)", "not selected", "excluded"]


def test_algorithm_is_listed_with_its_public_parameters(plugin):
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("balanced_sampling:selectcoreset")
    assert algorithm is not None
    names = [p.name() for p in algorithm.parameterDefinitions()]
    for name in ("INPUT", "METHOD", "BUDGET", "BUDGET_MODE", "PARQUET_PATH", "VECTOR_LAYER", "MIN_INTERSECT_AREA",
                 "OUTPUT", "OUTPUT_CSV"):
        assert name in names
    options = algorithm.parameterDefinition("METHOD").options()
    assert [option.split(" ")[0] for option in options] == list(CORESET_METHODS)


def test_from_config_runs_the_yaml_block(run_algorithm, clusters_path, tmp_path):
    run_algorithm("combinesamplerweights", {"INPUT": clusters_path, "SAMPLING_METHOD": 6,
                                            "OUTPUT": str(tmp_path / "w.gpkg"),
                                            "OUTPUT_CSV": str(tmp_path / "balanced_train.csv")})
    config = tmp_path / "coreset.yaml"
    config.write_text("coreset:\n  method: cb\n  budget: 0.2\n  input_csv_path: balanced_train.csv\n"
                      "  output_csv_path: subset.csv\n")
    feedback = RecordingFeedback()
    result = run_algorithm("selectcoresetfromconfig", {"CONFIG": str(config)}, feedback)
    frame = pd.read_csv(tmp_path / "subset.csv")
    assert result["OUTPUT_CSV"] == str(tmp_path / "subset.csv")
    assert len(frame) == result["SELECTED_PATCHES"] == math.floor(0.2 * result["POOL_PATCHES"] + 0.5)
    assert set(frame["selection_step"]) == {"cb"}
    assert frame["coreset_score"].is_monotonic_decreasing  # rows in pick order
    assert any("Random selection" in line for line in feedback.lines)
    config.write_text("coreset:\n  method: cb\n  budget: 0\n  input_csv_path: balanced_train.csv\n"
                      "  output_csv_path: subset.csv\n")
    with pytest.raises(QgsProcessingException, match="coreset.budget"):
        run_algorithm("selectcoresetfromconfig", {"CONFIG": str(config)})


def test_method_on_a_sub_pool_with_its_own_budget_then_fill(run_algorithm, weights_path, tmp_path):
    result, table = select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("cb"),
                           BUDGET=20, BUDGET_MODE=1, SUBPOOL_EXPRESSION='"cls_6" > 0.05', METHOD_BUDGET=5)
    pool = table[included(table)]
    sub_pool = pool[pool["cls_6"] > 0.05]
    assert len(sub_pool) > 5
    by_cb = table[table["selection_step"] == "cb"]
    assert len(by_cb) == 5 and (by_cb["cls_6"] > 0.05).all()
    assert (table["selection_step"] == "fill").sum() == 15 == result["SELECTED_PATCHES"] - 5
    assert table.loc[table["cls_6"] <= 0.05, "coreset_score"].isna().all()
    filled = table[table["selection_step"] == "fill"]
    rest = pool[~pool["coreset_selected"].astype(bool)]
    assert filled["class_entropy"].min() >= rest["class_entropy"].max()


def test_report_is_written_with_the_layer(run_algorithm, weights_path, tmp_path):
    result, table = select(run_algorithm, tmp_path, INPUT=weights_path, BUDGET=0.3,
                           OUTPUT_REPORT=str(tmp_path / "coreset.html"))
    page = (tmp_path / "coreset.html").read_text(encoding="utf-8")
    assert result["OUTPUT_REPORT"] == str(tmp_path / "coreset.html")
    assert "Coreset report: lc" in page
    assert f"{result['SELECTED_PATCHES']} of {result['POOL_PATCHES']} patches" in page
    assert "<h2>Options</h2>" in page and "<td>0.3</td>" in page  # the budget given, with its label
    assert "lc — " in page  # the method as the dialog shows it
    assert "The coverage radius needs the DINOv2 embeddings" in page  # lc without the cache: said, not a bare dash
    with pytest.raises(QgsProcessingException, match="OUTPUT_REPORT"):
        select(run_algorithm, tmp_path, INPUT=weights_path, OUTPUT_REPORT=str(tmp_path / "coreset.csv"))


def test_in_place_on_a_geopackage_copy(run_algorithm, weights_path, tmp_path):
    import shutil

    copy = str(tmp_path / "in_place.gpkg")
    shutil.copy(weights_path, copy)
    result = run_algorithm("selectcoreset", {"INPUT": copy, "BUDGET": 4, "BUDGET_MODE": 1, "IN_PLACE": True})
    rows = pd.DataFrame(layer_rows(copy))
    assert int(rows["coreset_selected"].sum()) == 4 == result["SELECTED_PATCHES"]
    assert set(rows.loc[rows["coreset_selected"].astype(bool), "selection_step"]) == {"lc"}
    assert len(rows) == len(layer_rows(weights_path))


def test_build_from_config_runs_a_coreset_block_on_its_csv(run_algorithm, synthetic_dataset, tmp_path):
    import yaml

    from .test_sources import write_records_csv

    write_records_csv(synthetic_dataset, tmp_path / "records.csv")
    config = {
        "balanced_dataset": {
            "mode": "masks_only", "sampling_method": "class_balanced", "input": {"patch_records": "records.csv"},
            "clustering": {"k_min": 2, "k_max": 4, "k_selection": "elbow", "random_state": 42},
            "output": {"csv_path": "balanced.csv"}},
        "coreset": {"method": "lc", "budget": 0.5, "output_csv_path": "coreset.csv"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_algorithm("buildfromconfig", {"CONFIG": str(tmp_path / "config.yaml"), "OUTPUT": "TEMPORARY_OUTPUT"})
    balanced = pd.read_csv(result["CSV_PATH"])
    coreset = pd.read_csv(result["CORESET_CSV_PATH"])
    pool = balanced[~balanced["excluded"].astype(bool)]
    assert len(coreset) == math.floor(0.5 * len(pool) + 0.5)
    assert sorted(coreset["class_entropy"], reverse=True) == pytest.approx(
        sorted(pool["class_entropy"], reverse=True)[:len(coreset)])
    assert coreset["sampler_weight"].mean() == pytest.approx(1.0)
    # a bad coreset: block is refused before anything is written
    config["coreset"]["budgett"] = 3
    config["balanced_dataset"]["output"]["csv_path"] = "second.csv"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(QgsProcessingException, match="coreset.budgett"):
        run_algorithm("buildfromconfig", {"CONFIG": str(tmp_path / "config.yaml")})
    assert not (tmp_path / "second.csv").exists()


def test_sub_pool_naming_a_missing_field_is_refused_and_the_log_counts_each_step(run_algorithm, weights_path,
                                                                                 tmp_path):
    with pytest.raises(QgsProcessingException, match='names cls_9, which the input layer does not have'):
        select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("cb"), BUDGET=20,
               BUDGET_MODE=1, SUBPOOL_EXPRESSION='"cls_9" > 0.5')
    # QGIS 3.22 reads an expression it cannot parse as no expression at all: it must not select from the whole pool
    for broken in ('"cls_6" >', "foo("):
        with pytest.raises(QgsProcessingException, match=r"The sub-pool expression '.*' cannot be read"):
            select(run_algorithm, tmp_path, INPUT=weights_path, METHOD=CORESET_METHODS.index("cb"), BUDGET=20,
                   BUDGET_MODE=1, SUBPOOL_EXPRESSION=broken)
    assert not (tmp_path / "coreset.gpkg").exists()
    feedback = RecordingFeedback()
    select(run_algorithm, tmp_path, feedback=feedback, INPUT=weights_path, METHOD=CORESET_METHODS.index("cb"),
           BUDGET=20, BUDGET_MODE=1, SUBPOOL_EXPRESSION='"cls_6" > 0.05', METHOD_BUDGET=5)
    assert any(line.startswith("20 of ") and line.endswith("by step: cb 5, fill 15.") for line in feedback.lines), \
        [line for line in feedback.lines if "by step" in line]


def test_a_minimum_overlap_larger_than_any_patch_is_said(run_algorithm, weights_path, tmp_path):
    patches, boxes = footprint_rectangles(weights_path)
    feedback = RecordingFeedback()
    select(run_algorithm, tmp_path, feedback=feedback, INPUT=weights_path, METHOD=CORESET_METHODS.index("lc"),
           BUDGET=5, BUDGET_MODE=1, VECTOR_LAYER=weights_path, MIN_INTERSECT_AREA=1e9)
    assert any("is larger than the largest patch" in line and "Lower it." in line for line in feedback.lines)

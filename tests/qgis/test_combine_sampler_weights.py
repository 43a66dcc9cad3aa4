"""Combine sampler weights through processing.run: weights, CSV, report, style, errors."""

import os
import re

import numpy as np
import pandas as pd
import pytest
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer

from balanced_sampling_plugin.weights import SAMPLING_METHODS, effective_sample_size, expected_class_shares

from .conftest import RecordingFeedback, layer_rows

CLASSES = [f"cls_{c}" for c in range(1, 7)]


def combine(run_algorithm, clusters_path, tmp_path, feedback=None, **parameters):
    out = {"INPUT": clusters_path, "OUTPUT": str(tmp_path / "weights.gpkg"),
           "OUTPUT_CSV": str(tmp_path / "train.csv"), "OUTPUT_REPORT": str(tmp_path / "report.html")}
    out.update(parameters)
    result = run_algorithm("combinesamplerweights", out, feedback)
    return result, pd.DataFrame(layer_rows(result["OUTPUT"]))


def test_class_balanced_lifts_the_rare_class_with_a_large_effective_sample(run_algorithm, clusters_path, tmp_path):
    result, table = combine(run_algorithm, clusters_path, tmp_path,
                            SAMPLING_METHOD=SAMPLING_METHODS.index("class_balanced"))
    included = table[~table["excluded"].astype(bool)]
    weights = included["sampler_weight"].to_numpy()
    assert (table.loc[table["excluded"].astype(bool), "sampler_weight"] == 0).all()
    assert (weights > 0).all()
    assert weights.mean() == pytest.approx(1.0)
    proportions = included[CLASSES].to_numpy()
    uniform = expected_class_shares(proportions, np.ones(len(included)))
    weighted = expected_class_shares(proportions, weights)
    rarest = int(np.argmin(uniform))
    assert weighted[rarest] >= 2 * uniform[rarest]
    ess = effective_sample_size(weights)
    assert ess >= 0.4 * len(included)
    assert result["EFFECTIVE_SAMPLE_SIZE"] == pytest.approx(ess)
    assert result["INCLUDED_PATCHES"] == len(included) and result["EXCLUDED_PATCHES"] == 16


def test_composition_only_follows_the_cluster_weight_and_stays_weak(run_algorithm, clusters_path, tmp_path):
    _, table = combine(run_algorithm, clusters_path, tmp_path,
                       SAMPLING_METHOD=SAMPLING_METHODS.index("composition_only"))
    included = table[~table["excluded"].astype(bool)].sort_values("freq_cluster_weight")
    # patches of smaller clusters never weigh less; one cluster shares one weight (ties averaged)
    assert np.all(np.diff(included["sampler_weight"].to_numpy()) >= -1e-12)
    assert (included.groupby("freq_cluster_id")["sampler_weight"].nunique() == 1).all()
    # rank weights are weak by construction: nobody is drawn more than 2x uniform
    assert included["sampler_weight"].max() <= 2.0


def test_method_that_needs_uniqueness_names_the_algorithm_to_run(run_algorithm, clusters_path, tmp_path):
    with pytest.raises(QgsProcessingException, match="Compute DINOv2 uniqueness"):
        combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=0)


def test_training_csv_feeds_a_weighted_sampler_and_windowed_reads(run_algorithm, clusters_path, tmp_path):
    import rasterio
    import torch
    from rasterio.windows import Window

    result, table = combine(run_algorithm, clusters_path, tmp_path,
                            SAMPLING_METHOD=SAMPLING_METHODS.index("class_balanced"))
    csv = pd.read_csv(result["OUTPUT_CSV"])
    assert list(csv.columns[:6]) == ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
    assert {"freq_cluster_id", "excluded", "patch_id"} <= set(csv.columns)
    assert len(csv) == len(table)
    by_id = table.set_index("patch_id")["sampler_weight"]
    assert np.allclose(csv.set_index("patch_id")["sampler_weight"], by_id.loc[csv["patch_id"]])

    sampler = torch.utils.data.WeightedRandomSampler(
        torch.as_tensor(csv["sampler_weight"].to_numpy(), dtype=torch.double), num_samples=2000, replacement=True,
        generator=torch.Generator().manual_seed(0))
    drawn = csv.iloc[list(sampler)]
    assert not drawn["excluded"].any(), "excluded patches have weight 0 and are never drawn"
    for row in csv.itertuples():
        with rasterio.open(row.image) as image, rasterio.open(row.mask) as mask:
            window = Window(row.col_off, row.row_off, row.patch_size, row.patch_size)
            assert image.read(window=window).shape == (3, 64, 64)
            assert mask.read(1, window=window).shape == (64, 64)


def test_csv_options_relative_paths_names_and_drop(run_algorithm, clusters_path, tmp_path):
    result, table = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=4, DROP_EXCLUDED=True,
                            RELATIVE_PATHS=True, CSV_IMAGE_COLUMN="image_path", CSV_MASK_COLUMN="mask_path")
    csv = pd.read_csv(result["OUTPUT_CSV"])
    assert list(csv.columns[:2]) == ["image_path", "mask_path"]
    assert len(csv) == (~table["excluded"].astype(bool)).sum()
    for path in csv["image_path"]:
        assert not os.path.isabs(path)
        assert os.path.exists(os.path.join(tmp_path, path))


def test_report_compares_every_method(run_algorithm, clusters_path, tmp_path):
    result, _ = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6)
    html = open(result["OUTPUT_REPORT"], encoding="utf-8").read()
    for method in ("class_balanced", "composition_only"):
        assert method in html
    assert "cls_6" in html
    assert html.count("<svg") == 4  # histogram, class shares, the two frontier charts


def weight_legend(layer):
    """The legend labels of a layer styled by sampler_weight (tests/qgis/test_styles.py checks the rest)."""
    renderer = layer.renderer()
    assert renderer.type() == "RuleRenderer"
    assert all('"sampler_weight"' in rule.filterExpression() for rule in renderer.rootRule().children())
    return [item.label() for item in renderer.legendSymbolItems()]


def test_graduated_style_on_load(run_algorithm, clusters_path, tmp_path):
    from balanced_sampling.processing_provider.styles import GraduatedStyle

    result, _ = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6)
    layer = QgsVectorLayer(result["OUTPUT"], "weights", "ogr")
    GraduatedStyle("sampler_weight").postProcessLayer(layer, QgsProcessingContext(), QgsProcessingFeedback())
    labels = weight_legend(layer)
    assert len(labels) >= 4 and labels[-1] == "excluded" and len(set(labels)) == len(labels)


def test_geopackage_output_opens_styled(run_algorithm, clusters_path, tmp_path):
    result, _ = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6)
    layer = QgsVectorLayer(result["OUTPUT"], "weights", "ogr")  # loads the default style stored in the file
    assert weight_legend(layer)[-1] == "excluded"


def test_input_layer_is_untouched(run_algorithm, clusters_path, tmp_path):
    before = [r for r in layer_rows(clusters_path)]
    combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6)
    assert layer_rows(clusters_path) == before
    assert "sampler_weight" not in QgsVectorLayer(clusters_path, "c", "ogr").fields().names()


def test_a_geopackage_holding_other_layers_is_not_replaced(run_algorithm, clusters_path, tmp_path):
    """A file destination replaces the whole file: the user's other layers in it would be lost."""
    import contextlib
    import hashlib
    import shutil
    import sqlite3

    from balanced_sampling_plugin.contract import SAMPLER_WEIGHT

    def _geopackage_layers(path):
        with contextlib.closing(sqlite3.connect(path)) as db:
            return [row[0] for row in db.execute("SELECT table_name FROM gpkg_contents")]

    project = tmp_path / "project.gpkg"
    shutil.copy(clusters_path, project)  # one layer, named after the clusters file, and a table of the user's:
    with contextlib.closing(sqlite3.connect(project)) as db, db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES ('notes', 'attributes', "
                   "'notes')")
    other = _geopackage_layers(str(project))
    assert len(other) == 2
    digest = hashlib.sha256(project.read_bytes()).hexdigest()
    with pytest.raises(QgsProcessingException, match=r"OUTPUT '.*project.gpkg' is a GeoPackage that holds other layers "
                                                     rf"\({', '.join(other)}\): writing the file would replace them "
                                                     "all"):
        combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6, OUTPUT=str(project))
    assert hashlib.sha256(project.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "train.csv").exists()
    # A layer written into it keeps the others; a re-run into a file that holds only its own layer passes.
    result, rows = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6,
                           OUTPUT=f"ogr:dbname='{project}' table=\"weights\" (geom)")
    assert SAMPLER_WEIGHT in rows.columns
    assert set(other) | {"weights"} <= set(_geopackage_layers(str(project)))
    for _ in range(2):
        combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6, OUTPUT=str(tmp_path / "weights.gpkg"))
    single = tmp_path / "earlier.gpkg"  # a file of one layer, whatever its name, is replaced as any file is
    shutil.copy(clusters_path, single)
    combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6, OUTPUT=str(single))
    assert _geopackage_layers(str(single))[0] == "earlier"


def test_a_training_csv_imported_back_feeds_the_weights(run_algorithm, clusters_path, tmp_path):
    """The CSV holds the proportions as class_dist_json and the flags under pytorch-smt-tools' names: imported back,
    they are the layer's cls_<c> and border_nodata / black_border fields again, and target_shares reads them."""
    _, weighted = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6)
    imported = run_algorithm("importpatchrecords", {"INPUT": str(tmp_path / "train.csv"),
                                                    "OUTPUT": str(tmp_path / "imported.gpkg")})["OUTPUT"]
    rows = pd.DataFrame(layer_rows(imported)).sort_values(["image_path", "row_off", "col_off"])
    weighted = weighted.sort_values(["image_path", "row_off", "col_off"])
    for column in CLASSES:
        np.testing.assert_allclose(rows[column].to_numpy(float), weighted[column].to_numpy(float), rtol=1e-3,
                                   atol=1e-6)
    for flag in ("border_nodata", "black_border"):
        assert rows[flag].astype(bool).tolist() == weighted[flag].astype(bool).tolist()
    assert "has_mask_border_nodata" not in rows.columns and "class_dist_json" not in rows.columns
    (tmp_path / "again").mkdir()
    _, again = combine(run_algorithm, imported, tmp_path / "again",
                       SAMPLING_METHOD=SAMPLING_METHODS.index("target_shares"), TARGET_SHARES="6:5%")
    assert again["sampler_weight"].notna().all()


@pytest.mark.parametrize("cancel_at", [64.0, 69.0, 70.0])
def test_cancel_before_the_outputs_writes_none_of_them(run_algorithm, clusters_path, tmp_path, cancel_at):
    """Cancel once the weights are computed (64: before the CSV; 69: before the layer; 70: while the layer is
    written): no output appears and earlier files keep their content."""
    from qgis.core import QgsProcessingFeedback

    csv, report, layer = tmp_path / "t.csv", tmp_path / "r.html", tmp_path / "w.gpkg"
    csv.write_text("earlier training csv\n")
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent >= cancel_at else None)
    with pytest.raises(QgsProcessingException, match="Cancel"):
        run_algorithm("combinesamplerweights", {"INPUT": clusters_path, "SAMPLING_METHOD": 6,
                                                "OUTPUT_CSV": str(csv), "OUTPUT_REPORT": str(report),
                                                "OUTPUT": str(layer)}, feedback)
    assert csv.read_text() == "earlier training csv\n"
    assert not report.exists() and not layer.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"], "no partial output left behind"


def test_training_csv_carries_the_tools_diagnostics(run_algorithm, clusters_path, tmp_path):
    import json

    result, table = combine(run_algorithm, clusters_path, tmp_path,
                            SAMPLING_METHOD=SAMPLING_METHODS.index("class_balanced"))
    csv = pd.read_csv(result["OUTPUT_CSV"], keep_default_na=False)
    # no uniqueness_score: the clusters layer has none
    assert list(csv.columns) == [
        "image", "mask", "row_off", "col_off", "patch_size", "sampler_weight", "patch_id",
        "class_entropy", "nodata_ratio", "has_mask_border_nodata", "has_image_black_border", "has_low_entropy",
        "has_high_nodata", "excluded", "freq_cluster_id", "freq_cluster_size", "freq_cluster_weight",
        "class_dist_json"]
    layer = table.set_index("patch_id").loc[csv["patch_id"]]
    assert csv["has_mask_border_nodata"].tolist() == layer["border_nodata"].astype(bool).tolist()
    assert csv["has_image_black_border"].tolist() == layer["black_border"].astype(bool).tolist()
    assert csv["excluded"].tolist() == layer["excluded"].astype(bool).tolist()
    reasons = [set((r or "").split(",")) for r in layer["exclusion_reason"]]
    assert csv["has_low_entropy"].tolist() == ["has_low_entropy" in r for r in reasons]
    assert csv["has_high_nodata"].tolist() == ["nodata_ratio" in r for r in reasons]
    assert csv["has_mask_border_nodata"].sum() >= 16  # the nodata strips
    for column in ("class_entropy", "nodata_ratio", "freq_cluster_id", "freq_cluster_size", "freq_cluster_weight"):
        np.testing.assert_allclose(csv[column].astype(float), layer[column].astype(float), err_msg=column)
    for text, (_, row) in zip(csv["class_dist_json"], layer.iterrows()):
        shares = json.loads(text)
        assert list(shares) == [c[len("cls_"):] for c in CLASSES]
        for c in CLASSES:
            assert shares[c[len("cls_"):]] == pytest.approx(row[c], rel=5e-6, abs=1e-12)


def test_low_effective_sample_size_is_warned_in_the_log_and_the_report(run_algorithm, clusters_path, tmp_path):
    warnings, infos = [], []
    feedback = QgsProcessingFeedback()
    feedback.pushWarning = warnings.append
    feedback.reportError = lambda message, fatal=False: warnings.append(message)
    feedback.pushInfo = infos.append
    out = {"INPUT": clusters_path, "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_REPORT": str(tmp_path / "r.html"),
           "SAMPLING_METHOD": SAMPLING_METHODS.index("composition_only"), "STRENGTH": 10}
    result = run_algorithm("combinesamplerweights", out, feedback)
    n = result["INCLUDED_PATCHES"]
    ess = result["EFFECTIVE_SAMPLE_SIZE"]
    assert ess < 0.3 * n
    expected = (f"Method 'composition_only' has an effective sample size of {ess:.0f}, {ess / n:.0%} of the {n} "
                "included patches (below 30%): a few patches dominate the draws and an epoch sees little variety. "
                "Consider a rank method, class_balanced, or a lower strength.")
    assert warnings.count(expected) == 1, warnings
    assert expected not in infos, "logged once, as a warning"
    import html

    with open(result["OUTPUT_REPORT"], encoding="utf-8") as handle:
        report = handle.read()
    assert f'<div class="warning" role="alert"><b>Warning</b>: {html.escape(expected)}</div>' in report

    warnings.clear()
    run_algorithm("combinesamplerweights", {**out, "STRENGTH": 1, "OUTPUT": str(tmp_path / "w1.gpkg"),
                                            "OUTPUT_REPORT": str(tmp_path / "r1.html")}, feedback)
    assert not any("effective sample size of" in w for w in warnings), warnings


def test_target_shares_reaches_the_asked_share_and_names_what_is_out_of_reach(run_algorithm, clusters_path, tmp_path):
    method = SAMPLING_METHODS.index("target_shares")
    result, table = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=method,
                            TARGET_SHARES="6:8%")
    included = table[~table["excluded"].astype(bool)]
    weights = included["sampler_weight"].to_numpy()
    valid = included["patch_size"].to_numpy() ** 2 * (1 - included["nodata_ratio"].to_numpy())
    shares = expected_class_shares(included[CLASSES].to_numpy(), weights, valid)
    assert shares[CLASSES.index("cls_6")] == pytest.approx(0.08, abs=0.002)
    assert weights.min() >= 1e-3 - 1e-12 and weights.mean() == pytest.approx(1.0)
    assert (table.loc[table["excluded"].astype(bool), "sampler_weight"] == 0).all()
    # the report shows the frontier and the new methods
    report = open(result["OUTPUT_REPORT"], encoding="utf-8").read()
    assert "What any weighting can reach" in report and "rare_class_sampling" in report

    feedback = RecordingFeedback()
    combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=method, TARGET_SHARES="6:0.9",
            feedback=feedback)
    assert any("No weighting reaches the target shares (cls_6 90.00%)" in m for m in feedback.lines)

    _, lifted = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=method, LIFT_CLASS=6, MIN_ESS=0.6,
                        MAX_WEIGHT=4)
    weights = lifted.loc[~lifted["excluded"].astype(bool), "sampler_weight"].to_numpy()
    assert effective_sample_size(weights) >= 0.6 * len(weights) - 1e-6 and weights.max() <= 4 * (1 + 1e-6)


@pytest.mark.parametrize("name, value, expected", [
    ("MIN_ESS", 1.5, "MIN_ESS (Minimum ESS (fraction of the patches)) is 1.5; it must be between 0.01 and 1."),
    ("MAX_WEIGHT", 0.5, "MAX_WEIGHT (Largest weight (× the mean)) is 0.5; it must be at least 1."),
])
def test_a_number_out_of_range_names_the_range(run_algorithm, clusters_path, tmp_path, name, value, expected):
    with pytest.raises(QgsProcessingException, match=re.escape(expected)):
        combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=SAMPLING_METHODS.index("target_shares"),
                **{name: value})


def test_a_training_csv_pointing_at_missing_rasters_is_written_with_a_warning(run_algorithm, clusters_path, tmp_path):
    """The trainer would fail on a missing image mid-epoch: the run says which files are gone."""
    from .conftest import RecordingFeedback, copy_layer_with

    def point_at_a_missing_image(layer, feature):
        layer.changeAttributeValue(feature.id(), layer.fields().indexOf("image_path"), str(tmp_path / "gone.tif"))

    edited = copy_layer_with(clusters_path, tmp_path, point_at_a_missing_image)
    feedback = RecordingFeedback()
    combine(run_algorithm, edited, tmp_path, feedback, SAMPLING_METHOD=SAMPLING_METHODS.index("class_balanced"))
    warnings = [line for line in feedback.lines if "do not exist here" in line]
    assert len(warnings) == 1 and str(tmp_path / "gone.tif") in warnings[0]
    assert warnings[0].startswith("1 rows of the training CSV point at 1 image or mask files")
    assert (tmp_path / "train.csv").exists()


def test_csv_and_report_named_without_an_ending_get_theirs(run_algorithm, clusters_path, tmp_path):
    """As QGIS adds .gpkg to a layer named without one: qgis_process and scripts pass the names as typed."""
    result, _ = combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6, OUTPUT=str(tmp_path / "weights"),
                        OUTPUT_CSV=str(tmp_path / "train"), OUTPUT_REPORT=str(tmp_path / "report"))
    written = {p.name for p in tmp_path.iterdir()} - {"weights.gpkg-wal", "weights.gpkg-shm"}  # SQLite's, while open
    assert sorted(written) == ["report.html", "train.csv", "weights.gpkg"]
    assert result["OUTPUT_CSV"] == str(tmp_path / "train.csv")
    assert result["OUTPUT_REPORT"] == str(tmp_path / "report.html")


def test_a_layer_output_named_like_a_raster_is_refused(run_algorithm, clusters_path, tmp_path):
    """A slip such as OUTPUT=masks/tile_02.tif made QGIS write tile_02.tif.gpkg among the masks."""
    with pytest.raises(QgsProcessingException, match=r"OUTPUT '.*tile_02\.tif' is named like a raster \(\.tif\), but "
                                                     r"the output is a vector layer"):
        combine(run_algorithm, clusters_path, tmp_path, SAMPLING_METHOD=6, OUTPUT=str(tmp_path / "tile_02.tif"))
    assert not list(tmp_path.iterdir())

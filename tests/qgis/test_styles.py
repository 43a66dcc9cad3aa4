"""The weight map reads at a glance: classes on values the data holds, rounded labels, excluded patches
apart (grey, hatched, "excluded"), on load and as a GeoPackage's default style."""

import re
from itertools import pairwise

import pytest
from qgis.core import QgsMapSettings, QgsProject, QgsRenderContext, QgsVectorLayer
from qgis.PyQt.QtCore import Qt

from tests.qgis.conftest import layer_rows

SIX_DECIMALS = re.compile(r"\d[.,]\d{6}")


def rendered(layer, renderer):
    """{legend label: [feature rows]} as ``renderer`` draws ``layer``, and {label: symbol}."""
    context = QgsRenderContext.fromMapSettings(QgsMapSettings())
    items = {item.ruleKey(): item for item in renderer.legendSymbolItems()}
    by_label = {}
    renderer.startRender(context, layer.fields())
    try:
        for feature in layer.getFeatures():
            keys = [key for key in renderer.legendKeysForFeature(feature, context) if key in items]
            assert len(keys) == 1, f"feature {feature.id()} is drawn by {len(keys)} legend entries"
            symbols = renderer.symbolsForFeature(feature, context)  # a rule renderer's symbolForFeature is None
            assert len(symbols) == 1
            row = dict(zip(layer.fields().names(), feature.attributes()))
            row["_color"] = symbols[0].color().name()
            by_label.setdefault(items[keys[0]].label(), []).append(row)
    finally:
        renderer.stopRender(context)
    return by_label, {item.label(): item.symbol().clone() for item in items.values()}  # the items own theirs


def assert_reads_at_a_glance(layer, renderer, field):
    labels = [item.label() for item in renderer.legendSymbolItems()]
    assert labels[-1] == "excluded" and labels.count("excluded") == 1
    classes = labels[:-1]
    assert len(classes) == len(set(classes)) >= 3, classes
    assert not any(SIX_DECIMALS.search(label) for label in labels), labels
    by_label, symbols = rendered(layer, renderer)
    # Every class draws features; classes increase and do not overlap.
    assert set(classes) <= set(by_label), f"empty classes: {set(classes) - set(by_label)}"
    spans = [(min(r[field] for r in by_label[c]), max(r[field] for r in by_label[c])) for c in classes]
    assert all(high < next_low for (_, high), (next_low, _) in pairwise(spans)), spans
    # A class holding one value says it once; a range says where it starts and ends.
    for label, (low, high) in zip(classes, spans):
        assert ("–" in label) == (low != high), (label, low, high)
    # The excluded patches, and only they, are drawn grey and hatched.
    excluded = by_label["excluded"]
    assert excluded and all(bool(r["excluded"]) for r in excluded)
    assert not any(bool(r["excluded"]) for c in classes for r in by_label[c])
    fill = symbols["excluded"].symbolLayer(0)
    assert fill.color().red() == fill.color().green() == fill.color().blue()
    assert fill.brushStyle() not in (Qt.SolidPattern, Qt.NoBrush)
    assert {r["_color"] for r in excluded} == {symbols["excluded"].color().name()}
    return classes, spans, by_label


@pytest.mark.parametrize("method", [0, 6])  # rank_max and class_balanced: many patches tie at the lowest weight
def test_sampler_weight_classes_are_distinct_and_excluded_apart(run_algorithm, uniqueness_path, tmp_path, method):
    from balanced_sampling.processing_provider.styles import GraduatedStyle

    out = str(tmp_path / "weights.gpkg")
    run_algorithm("combinesamplerweights", {"INPUT": uniqueness_path, "SAMPLING_METHOD": method, "OUTPUT": out})
    layer = QgsVectorLayer(out, "weights", "ogr")
    renderer = GraduatedStyle("sampler_weight").renderer(layer)
    assert renderer.type() == "RuleRenderer"
    classes, spans, by_label = assert_reads_at_a_glance(layer, renderer, "sampler_weight")
    rows = layer_rows(out)
    lowest = min(r["sampler_weight"] for r in rows if not r["excluded"])
    tied = sum(r["sampler_weight"] == lowest for r in rows if not r["excluded"])
    assert tied > len(rows) / 7, "the fixture should tie many patches at the lowest weight"
    # The tie is one class of its own, labelled with one number, holding exactly the tied patches.
    assert spans[0] == (lowest, lowest) and "–" not in classes[0]
    assert len(by_label[classes[0]]) == tied
    assert len(classes) == 7
    assert all(r["sampler_weight"] == 0 for r in by_label["excluded"])


def test_uniqueness_layer_draws_excluded_patches_apart_though_they_have_scores(uniqueness_path):
    from balanced_sampling.processing_provider.styles import GraduatedStyle

    layer = QgsVectorLayer(uniqueness_path, "uniqueness", "ogr")
    renderer = GraduatedStyle("uniqueness_score", ramp="Magma").renderer(layer)
    _, _, by_label = assert_reads_at_a_glance(layer, renderer, "uniqueness_score")
    assert all(r["uniqueness_score"] > 0 for r in by_label["excluded"])


def test_composition_clusters_layer_is_styled_on_load_by_cluster_weight(plugin, footprints_path):
    import processing
    from qgis.core import QgsProcessing

    result = processing.runAndLoadResults("balanced_sampling:computecompositionclusters", {
        "INPUT": footprints_path, "K_SELECTION": 1, "K": 6, "OUTPUT": QgsProcessing.TEMPORARY_OUTPUT})
    layer = QgsProject.instance().mapLayer(result["OUTPUT"])
    try:
        renderer = layer.renderer()
        assert renderer.type() == "RuleRenderer"
        classes, _, by_label = assert_reads_at_a_glance(layer, renderer, "freq_cluster_weight")
        # One class a cluster (6 clusters, 6 distinct weights), each naming its cluster.
        assert len(classes) == 6
        for label in classes:
            clusters = {r["freq_cluster_id"] for r in by_label[label]}
            assert len(clusters) == 1 and label.endswith(f"cluster {clusters.pop()}"), label
        assert all(r["freq_cluster_id"] == -1 for r in by_label["excluded"])
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_geopackage_output_opens_with_the_same_style(run_algorithm, uniqueness_path, tmp_path):
    from balanced_sampling.processing_provider.styles import GraduatedStyle

    out = str(tmp_path / "weights.gpkg")
    run_algorithm("combinesamplerweights", {"INPUT": uniqueness_path, "SAMPLING_METHOD": 0, "OUTPUT": out})
    stored = QgsVectorLayer(out, "stored", "ogr")  # QGIS loads the GeoPackage's default style
    fresh = GraduatedStyle("sampler_weight").renderer(QgsVectorLayer(out, "fresh", "ogr"))
    assert stored.renderer().type() == "RuleRenderer"
    assert ([i.label() for i in stored.renderer().legendSymbolItems()]
            == [i.label() for i in fresh.legendSymbolItems()])
    assert_reads_at_a_glance(stored, stored.renderer(), "sampler_weight")


def test_class_bounds_step_over_ties():
    from balanced_sampling.processing_provider.styles import class_bounds, class_labels

    # Quantiles over all values would give 1 – 1 twice (and an empty class): ties make one class.
    values = [1.0] * 50 + [float(v) for v in range(2, 52)]
    bounds = class_bounds(values, 7)
    assert bounds[0] == (1.0, 1.0) and len(bounds) == 7
    assert all(low <= high < next_low for (low, high), (next_low, _) in pairwise(bounds))
    # Few distinct values: one class each; none, or all equal: what there is.
    assert class_bounds([0.5, 0.25, 0.5, 2.0], 7) == [(0.25, 0.25), (0.5, 0.5), (2.0, 2.0)]
    assert class_bounds([3.0] * 10, 7) == [(3.0, 3.0)]
    assert class_bounds([], 7) == [] and class_bounds([None, float("nan")], 7) == []
    # Two significant digits unless neighbours would read alike; never 1.000000.
    assert class_labels([(1.0, 1.0), (1.5, 2.0)]) == ["1", "1.5 – 2"]
    assert class_labels([(0.3953247, 0.3953247), (0.4417, 0.9)]) == ["0.4", "0.44 – 0.9"]
    assert class_labels([(0.101, 0.102), (0.103, 0.2)]) == ["0.101 – 0.102", "0.103 – 0.2"]
    assert class_labels([(0.00068, 0.00104), (0.00107, 0.0338)]) == ["0.00068 – 0.001", "0.0011 – 0.034"]

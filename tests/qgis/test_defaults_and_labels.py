"""Defaults, enum labels and number display read like a person wrote them, and the chain computes only what
the chosen method reads."""

import os

import pandas as pd
import pytest
from qgis.core import QgsApplication, QgsProcessingFeedback

from balanced_sampling_plugin.contract import BACKENDS, K_SELECTIONS, PRECISIONS, SAMPLING_METHODS

ENUMS = {  # algorithm -> parameter -> the contract's order
    "combinesamplerweights": {"SAMPLING_METHOD": SAMPLING_METHODS},
    "buildbalanceddataset": {"SAMPLING_METHOD": SAMPLING_METHODS, "BACKEND": BACKENDS},
    "computedinov2uniqueness": {"BACKEND": BACKENDS, "PRECISION": PRECISIONS},
    "computecompositionclusters": {"K_SELECTION": K_SELECTIONS},
}


def algorithm(name):
    return QgsApplication.processingRegistry().algorithmById(f"balanced_sampling:{name}")


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_enum_options_name_the_value_first_and_say_what_it_does(plugin, name):
    for parameter, values in ENUMS[name].items():
        options = algorithm(name).parameterDefinition(parameter).options()
        assert len(options) == len(values)
        for option, value in zip(options, values):
            assert option.startswith(f"{value} — ") and len(option) > len(value) + 8, option


def test_the_qgis_default_method_lifts_rare_classes(plugin):
    for name in ("combinesamplerweights", "buildbalanceddataset"):
        definition = algorithm(name).parameterDefinition("SAMPLING_METHOD")
        assert SAMPLING_METHODS[definition.defaultValue()] == "class_balanced"


@pytest.mark.parametrize("name, parameter, decimals", [
    ("combinesamplerweights", "STRENGTH", 2), ("combinesamplerweights", "FLOOR", 4),
    ("computedinov2uniqueness", "STRETCH_LOW", 1), ("computecompositionclusters", "MAX_NODATA_RATIO", 2)])
def test_numbers_are_shown_with_sensible_decimals(plugin, name, parameter, decimals):
    metadata = algorithm(name).parameterDefinition(parameter).metadata()
    assert metadata["widget_wrapper"]["decimals"] == decimals


def test_the_chain_skips_dinov2_when_the_method_does_not_read_it(run_algorithm, synthetic_dataset, tmp_path):
    """class_balanced (the default) reads class shares only: no model is loaded (the one named does not exist)."""
    log = []
    feedback = QgsProcessingFeedback()
    feedback.pushInfo = log.append
    result = run_algorithm("buildbalanceddataset", {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
        "DINO_MODEL": str(tmp_path / "no-such-model"),
        "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv"),
        "OUTPUT_REPORT": str(tmp_path / "r.html")}, feedback)
    assert any("does not read uniqueness, so DINOv2 uniqueness is not computed" in line for line in log), log
    assert result["EFFECTIVE_SAMPLE_SIZE"] > 0
    assert (tmp_path / "t.csv").exists()


def test_the_chain_offers_the_edge_mode_and_an_optional_report(run_algorithm, synthetic_dataset, tmp_path):
    """512 px rasters cut into 200 px windows: dropped edges leave 2 x 2 windows per raster, shifted ones 3 x 3;
    without a report path nothing else is written, and the steps' raw result dictionaries stay out of the log."""
    folders = {"IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
               "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 200}
    counts = {}
    for edge in (0, 1):
        log = []
        feedback = QgsProcessingFeedback()
        feedback.pushInfo = log.append
        out = tmp_path / f"edge{edge}"
        out.mkdir()
        result = run_algorithm("buildbalanceddataset", {
            **folders, "EDGE_MODE": edge, "OUTPUT": str(out / "w.gpkg"), "OUTPUT_CSV": str(out / "t.csv")}, feedback)
        counts[edge] = len(pd.read_csv(result["OUTPUT_CSV"]))
        assert not result.get("OUTPUT_REPORT")
        assert sorted(p.name for p in out.iterdir()) == ["t.csv", "w.gpkg"]
        # One "Results:" line: the one processing.run (this test's caller) writes; none from the steps.
        assert len([line for line in log if line.startswith("Results:")]) == 1, log
    rasters = len(synthetic_dataset.images)
    assert counts == {0: rasters * 4, 1: rasters * 9}


def test_a_rank_method_with_uniqueness_off_is_refused_before_any_step(run_algorithm, synthetic_dataset, tmp_path):
    from qgis.core import QgsProcessingException

    log = []
    feedback = QgsProcessingFeedback()
    feedback.pushInfo = log.append
    with pytest.raises(QgsProcessingException, match="Sampling method rank_max reads DINOv2 uniqueness.*tick it"):
        run_algorithm("buildbalanceddataset", {
            "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
            "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
            "SAMPLING_METHOD": SAMPLING_METHODS.index("rank_max"), "USE_UNIQUENESS": False,
            "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv")}, feedback)
    assert not log and not list(tmp_path.iterdir())  # no step ran, nothing written


def test_the_chain_still_computes_uniqueness_for_a_rank_method(run_algorithm, synthetic_dataset, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="no-such-model"):
        run_algorithm("buildbalanceddataset", {
            "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
            "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
            "SAMPLING_METHOD": SAMPLING_METHODS.index("rank_max"), "DINO_MODEL": str(tmp_path / "no-such-model"),
            "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv"),
            "OUTPUT_REPORT": str(tmp_path / "r.html")})

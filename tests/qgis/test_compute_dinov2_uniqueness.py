"""Compute DINOv2 uniqueness through processing.run with a tiny local DINOv2."""

import numpy as np
import pandas as pd
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from balanced_sampling_plugin.weights import SAMPLING_METHODS, expected_class_shares

from .conftest import layer_rows

CLASSES = [f"cls_{c}" for c in range(1, 7)]


def test_scores_every_patch_and_keeps_the_input_fields(uniqueness_path, clusters_path):
    rows = pd.DataFrame(layer_rows(uniqueness_path))
    assert len(rows) == 384
    assert set(pd.DataFrame(layer_rows(clusters_path)).columns) <= set(rows.columns)
    scores = rows["uniqueness_score"].to_numpy(dtype=float)
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 2).all()
    assert scores.std() > 0


def test_cache_second_run_computes_nothing(run_algorithm, footprints_path, tiny_model, tmp_path):
    parameters = {"INPUT": footprints_path, "DINO_MODEL": tiny_model, "BATCH_SIZE": 64, "BACKEND": 1,
                  "PARQUET_PATH": str(tmp_path / "cache.parquet"), "OUTPUT": str(tmp_path / "first.gpkg")}
    first = run_algorithm("computedinov2uniqueness", parameters)
    assert (first["COMPUTED"], first["REUSED"]) == (384, 0)
    second = run_algorithm("computedinov2uniqueness", parameters | {"OUTPUT": str(tmp_path / "second.gpkg")})
    assert (second["COMPUTED"], second["REUSED"]) == (0, 384)
    a = pd.DataFrame(layer_rows(first["OUTPUT"])).set_index("patch_id")["uniqueness_score"]
    b = pd.DataFrame(layer_rows(second["OUTPUT"])).set_index("patch_id")["uniqueness_score"]
    assert np.allclose(a, b.loc[a.index])


def test_exact_backends_agree(run_algorithm, footprints_path, tiny_model, tmp_path):
    scores = {}
    cache = str(tmp_path / "cache.parquet")
    for backend in (1, 2):  # faiss, sklearn
        out = run_algorithm("computedinov2uniqueness", {
            "INPUT": footprints_path, "DINO_MODEL": tiny_model, "BACKEND": backend, "PARQUET_PATH": cache,
            "OUTPUT": str(tmp_path / f"u{backend}.gpkg")})
        scores[backend] = pd.DataFrame(layer_rows(out["OUTPUT"])).set_index("patch_id")["uniqueness_score"]
    assert np.allclose(scores[1], scores[2].loc[scores[1].index], atol=1e-5)


def test_unloadable_model_explains_how_to_provide_a_folder(run_algorithm, footprints_path, tmp_path):
    with pytest.raises(QgsProcessingException, match="save_pretrained"):
        run_algorithm("computedinov2uniqueness", {
            "INPUT": footprints_path, "DINO_MODEL": str(tmp_path / "no_model_here"),
            "OUTPUT": str(tmp_path / "x.gpkg")})


def test_bad_bands_are_refused(run_algorithm, footprints_path, tiny_model, tmp_path):
    with pytest.raises(QgsProcessingException, match="three band numbers"):
        run_algorithm("computedinov2uniqueness", {
            "INPUT": footprints_path, "DINO_MODEL": tiny_model, "BANDS": "1,2",
            "OUTPUT": str(tmp_path / "x.gpkg")})


def test_cancel_raises_and_writes_nothing(run_algorithm, footprints_path, tiny_model, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="(?i)cancel"):
        run_algorithm("computedinov2uniqueness", {
            "INPUT": footprints_path, "DINO_MODEL": tiny_model, "OUTPUT": str(tmp_path / "x.gpkg")}, feedback)
    assert not (tmp_path / "x.gpkg").exists()


def test_full_chain_rank_max_and_class_balanced(run_algorithm, uniqueness_path, tmp_path):
    shares = {}
    for method in ("rank_max", "class_balanced"):
        result = run_algorithm("combinesamplerweights", {
            "INPUT": uniqueness_path, "SAMPLING_METHOD": SAMPLING_METHODS.index(method),
            "OUTPUT": str(tmp_path / f"{method}.gpkg")})
        table = pd.DataFrame(layer_rows(result["OUTPUT"]))
        included = table[~table["excluded"].astype(bool)]
        proportions = included[CLASSES].to_numpy()
        uniform = expected_class_shares(proportions, np.ones(len(included)))
        shares[method] = expected_class_shares(proportions, included["sampler_weight"].to_numpy())
        rarest = int(np.argmin(uniform))
    assert shares["rank_max"][rarest] > uniform[rarest]
    assert shares["class_balanced"][rarest] >= 2 * uniform[rarest]


def test_build_balanced_dataset_runs_the_chain(run_algorithm, synthetic_dataset, tiny_model, tmp_path):
    import os

    result = run_algorithm("buildbalanceddataset", {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128,
        "DINO_MODEL": tiny_model, "SAMPLING_METHOD": SAMPLING_METHODS.index("rank_max"),
        "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv"),
        "OUTPUT_REPORT": str(tmp_path / "r.html")})
    rows = pd.DataFrame(layer_rows(result["OUTPUT"]))
    assert len(rows) == 6 * 16
    assert {"freq_cluster_id", "uniqueness_score", "sampler_weight"} <= set(rows.columns)
    assert ((rows["sampler_weight"] > 0) == ~rows["excluded"].astype(bool)).all()
    assert len(pd.read_csv(result["OUTPUT_CSV"])) == 96
    assert os.path.getsize(result["OUTPUT_REPORT"]) > 1000


@pytest.fixture
def chain_steps(monkeypatch):
    """The child algorithms Build balanced dataset runs, recorded (and run)."""
    import sys

    from qgis.core import QgsApplication

    chain = QgsApplication.processingRegistry().algorithmById("balanced_sampling:buildbalanceddataset")
    module = sys.modules[type(chain).__module__]
    steps, real = [], module.run_child
    monkeypatch.setattr(module, "run_child", lambda name, *args: steps.append(name) or real(name, *args))
    return steps


@pytest.mark.parametrize("bands, model, message", [
    ("5,1,1", None, r"has 3 bands; the band selection \(5, 1, 1\)"),
    ("0,1,2", None, r"Bands must be three band numbers such as 1,2,3; got '0,1,2'"),
    ("1,2,3", "missing_model_folder", r"The model folder '.*missing_model_folder' does not exist"),
])
def test_build_balanced_dataset_checks_bands_and_model_before_any_step(
        run_algorithm, synthetic_dataset, tiny_model, tmp_path, chain_steps, bands, model, message):
    import os

    with pytest.raises(QgsProcessingException, match=message):
        run_algorithm("buildbalanceddataset", {
            "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
            "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128, "BANDS": bands,
            "DINO_MODEL": str(tmp_path / model) if model else tiny_model,
            "SAMPLING_METHOD": SAMPLING_METHODS.index("rank_max"),
            "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv")})
    assert chain_steps == [], "refused before the footprints"
    assert not os.path.exists(tmp_path / "t.csv")


def test_build_balanced_dataset_passes_the_composition_options(run_algorithm, synthetic_dataset, tmp_path,
                                                                chain_steps):
    """The clustering and exclusion options of Compute composition clusters are the chain's advanced parameters,
    with the same defaults, and reach that step (its messages name them)."""
    import os

    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    registry = QgsApplication.processingRegistry()
    chain = registry.algorithmById("balanced_sampling:buildbalanceddataset")
    composition = registry.algorithmById("balanced_sampling:computecompositionclusters")
    for name in ("K_SELECTION", "K_MIN", "K_MAX", "K", "EXCLUDE_BORDER_NODATA", "EXCLUDE_BLACK_BORDER",
                 "BLACK_TOLERANCE", "MAX_NODATA_RATIO"):
        ours, theirs = chain.parameterDefinition(name), composition.parameterDefinition(name)
        assert (ours.description(), ours.defaultValue()) == (theirs.description(), theirs.defaultValue()), name
        assert ours.flags() & QgsProcessingParameterDefinition.FlagAdvanced, name
    folders = {"IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
               "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 64,
               "SAMPLING_METHOD": SAMPLING_METHODS.index("class_balanced")}
    result = run_algorithm("buildbalanceddataset", folders | {
        "K_SELECTION": 1, "K": 3, "MAX_NODATA_RATIO": 0.05, "EXCLUDE_BORDER_NODATA": False,
        "OUTPUT": str(tmp_path / "w.gpkg"), "OUTPUT_CSV": str(tmp_path / "t.csv")})
    rows = pd.DataFrame(layer_rows(result["OUTPUT"]))
    assert chain_steps == ["balanced_sampling:createpatchfootprints", "balanced_sampling:computecompositionclusters",
                           "balanced_sampling:combinesamplerweights"]
    included = rows[~rows["excluded"].astype(bool)]
    assert set(included["freq_cluster_id"]) == {0, 1, 2}
    assert (included["nodata_ratio"] <= 0.05).all() and (rows["nodata_ratio"] > 0.05).any()
    assert not rows["exclusion_reason"].fillna("").str.contains("border_nodata").any()


def test_shipped_model_runs_through_processing(run_algorithm, synthetic_dataset, tiny_model, tmp_path):
    import os

    result = run_algorithm("Build balanced dataset model", {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128, "DINO_MODEL": tiny_model,
        "SAMPLING_METHOD": SAMPLING_METHODS.index("class_balanced"),
        "sampler_weights:Sampler weights": str(tmp_path / "w.gpkg"),
        "sampler_weights:Training CSV": str(tmp_path / "t.csv"),
        "sampler_weights:Report": str(tmp_path / "r.html")})
    rows = pd.DataFrame(layer_rows(result["sampler_weights:Sampler weights"]))
    assert len(rows) == 96 and rows["sampler_weight"].notna().all()
    assert len(pd.read_csv(tmp_path / "t.csv")) == 96


def test_default_backend_is_nndescent_and_reproducible_is_an_advanced_option(
        run_algorithm, footprints_path, tiny_model, tmp_path, monkeypatch):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    from balanced_sampling_plugin.uniqueness import BACKENDS

    algorithm = QgsApplication.processingRegistry().algorithmById("balanced_sampling:computedinov2uniqueness")
    assert BACKENDS[algorithm.parameterDefinition("BACKEND").defaultValue()] == "nndescent"
    reproducible = algorithm.parameterDefinition("REPRODUCIBLE")
    assert reproducible.defaultValue() is False
    assert reproducible.flags() & QgsProcessingParameterDefinition.FlagAdvanced

    # The option reaches the engine.
    import importlib

    package = type(algorithm).__module__.split(".")[0]  # the plugin's engine, as QGIS imported it
    module = importlib.import_module(f"{package}.balanced_sampling_plugin.uniqueness_stage")
    calls = []
    real = module.compute_uniqueness
    monkeypatch.setattr(module, "compute_uniqueness", lambda *a, **kw: calls.append(kw) or real(*a, **kw))

    # 384 patches: below exact_below, so nndescent answers with exact search, like faiss.
    cache = str(tmp_path / "cache.parquet")
    outputs = {}
    for name, extra in {"default": {"REPRODUCIBLE": True}, "faiss": {"BACKEND": 1}}.items():
        outputs[name] = run_algorithm("computedinov2uniqueness", {
            "INPUT": footprints_path, "DINO_MODEL": tiny_model, "PARQUET_PATH": cache,
            "OUTPUT": str(tmp_path / f"{name}.gpkg"), **extra})["OUTPUT"]
    default, exact = (pd.DataFrame(layer_rows(outputs[n])).set_index("patch_id")["uniqueness_score"]
                      for n in ("default", "faiss"))
    assert np.allclose(default, exact.loc[default.index], atol=1e-5)
    assert [(c["backend"], c["reproducible"]) for c in calls] == [("nndescent", True), ("faiss", False)]


def test_fixed_stretch_values_are_read_and_bad_ones_named(run_algorithm, footprints_path, tiny_model, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="Stretch values '3000,0' are not 'low,high'"):
        run_algorithm("computedinov2uniqueness", {"INPUT": footprints_path, "DINO_MODEL": tiny_model,
                                                  "STRETCH_VALUES": "3000,0", "OUTPUT": str(tmp_path / "u.gpkg")})
    assert not (tmp_path / "u.gpkg").exists()

"""The shipped graphical model reads like the chain algorithm: labelled outputs, the chain's inputs in
its order, the algorithms' group (one group in the Toolbox, translated under pt_BR), and the file is
what scripts/build_model.py writes."""

import importlib.util
import os
from xml.etree.ElementTree import canonicalize

from qgis.core import (
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterDefinition,
    QgsSettings,
)
from qgis.PyQt.QtCore import QCoreApplication

from balanced_sampling_plugin.contract import METHOD_SIGNALS, SAMPLING_METHODS
from tests.conftest import ROOT

MODEL_ID = "balanced_sampling:Build balanced dataset model"
MODEL_FILE = os.path.join(ROOT, "processing_provider", "models", "build_balanced_dataset.model3")


def build_model_script():
    spec = importlib.util.spec_from_file_location("build_model", os.path.join(ROOT, "scripts", "build_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_inputs_follow_the_chain_and_outputs_are_labelled(plugin):
    registry = QgsApplication.processingRegistry()
    model = registry.createAlgorithmById(MODEL_ID)  # a run's instance: outputs resolved against the steps
    chain = registry.algorithmById("balanced_sampling:buildbalanceddataset")
    inputs = [p for p in model.parameterDefinitions() if not p.isDestination()]
    chain_inputs = [p for p in chain.parameterDefinitions() if not p.isDestination() and p.name() != "USE_UNIQUENESS"]
    assert [p.name() for p in inputs] == [p.name() for p in chain_inputs]
    assert inputs[0].name() == "IMAGE_FOLDER" and [p.name() for p in inputs[-2:]] == ["SAMPLING_METHOD",
                                                                                    "DASK_SCHEDULER"]
    for mine, theirs in zip(inputs, chain_inputs):
        if mine.name() == "SAMPLING_METHOD":  # the model always computes uniqueness: its default method reads it
            assert mine.description() == theirs.description()
            assert SAMPLING_METHODS[int(mine.defaultValue())] == "rank_max"
            assert "uniqueness" in METHOD_SIGNALS["rank_max"]
            continue
        assert (mine.description(), mine.defaultValue()) == (theirs.description(), theirs.defaultValue())

    outputs = {p.name(): p for p in model.parameterDefinitions() if p.isDestination()}
    assert {name: p.description() for name, p in outputs.items()} == {
        "sampler_weights:Sampler weights": "Sampler weights",
        "sampler_weights:Training CSV": "Training CSV",
        "sampler_weights:Report": "Report",
        "uniqueness:Embedding cache": "Embedding cache (Parquet)",
    }
    optional = {name for name, p in outputs.items() if p.flags() & QgsProcessingParameterDefinition.FlagOptional}
    # like the chain: the cache and the report may be skipped, the layer and the training CSV not
    assert optional == {"uniqueness:Embedding cache", "sampler_weights:Report"}


def test_model_is_in_the_algorithms_group(plugin):
    registry = QgsApplication.processingRegistry()
    model = registry.algorithmById(MODEL_ID)
    combine = registry.algorithmById("balanced_sampling:combinesamplerweights")
    assert combine.groupId() == "weights"
    assert (model.groupId(), model.group()) == (combine.groupId(), combine.group())


def test_toolbox_shows_one_weights_group_holding_the_model(plugin):
    from qgis.core import QgsProcessingAlgorithm
    from qgis.gui import QgsProcessingToolboxModel

    toolbox = QgsProcessingToolboxModel(None, QgsApplication.processingRegistry())
    provider = toolbox.indexForProvider("balanced_sampling")
    groups = {}
    for row in range(toolbox.rowCount(provider)):
        group = toolbox.index(row, 0, provider)
        groups.setdefault(toolbox.data(group), []).extend(
            toolbox.data(toolbox.index(r, 0, group)) for r in range(toolbox.rowCount(group)))
    assert len(groups) == 3, groups
    weights = QgsApplication.processingRegistry().algorithmById("balanced_sampling:combinesamplerweights").group()
    assert {"Build balanced dataset model", "Combine sampler weights"} <= set(groups[weights])
    assert isinstance(QgsApplication.processingRegistry().algorithmById(MODEL_ID), QgsProcessingAlgorithm)


def test_model_group_is_translated_under_pt_br(plugin):
    import balanced_sampling
    from balanced_sampling.processing_provider.provider import BalancedSamplingProvider

    settings = QgsSettings()
    previous = settings.value("locale/userLocale", "")
    settings.setValue("locale/userLocale", "pt_BR")
    localized = balanced_sampling.classFactory(None)
    provider = BalancedSamplingProvider()
    try:
        provider.refreshAlgorithms()
        model = next(a for a in provider.algorithms() if isinstance(a, QgsProcessingModelAlgorithm))
        translated = QCoreApplication.translate("BalancedSamplingAlgorithm", "Sampler weights")
        assert translated != "Sampler weights"
        assert (model.groupId(), model.group()) == ("weights", translated)
    finally:
        del provider
        localized.unload()
        settings.setValue("locale/userLocale", previous)


def test_model_file_is_what_the_script_writes(plugin, tmp_path):
    """Else run `make model` (after changing the chain's parameters or scripts/build_model.py)."""
    fresh = str(tmp_path / "fresh.model3")
    assert build_model_script().build().toFile(fresh)
    # Qt writes XML attributes in a per-process order: compare canonical forms.
    assert canonicalize(from_file=fresh) == canonicalize(from_file=MODEL_FILE), \
        "the shipped model is stale: run `make model`"


def test_model_inputs_reach_their_steps(run_algorithm, synthetic_dataset, tiny_model, tmp_path):
    from tests.qgis.conftest import layer_rows

    cache = str(tmp_path / "embeddings.parquet")
    result = run_algorithm("Build balanced dataset model", {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]), "IMAGE_PATTERN": "*.tif",
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128, "STRIDE": 64,
        "DINO_MODEL": tiny_model, "BACKEND": 2, "SAMPLING_METHOD": 4,
        "uniqueness:Embedding cache": cache,
        "sampler_weights:Sampler weights": str(tmp_path / "w.gpkg"),
        "sampler_weights:Training CSV": str(tmp_path / "t.csv"),
        "sampler_weights:Report": str(tmp_path / "r.html")})
    rows = layer_rows(result["sampler_weights:Sampler weights"])
    assert len(rows) > 96  # stride 64 over 128 px patches: overlapping windows, more than the 96 tiles
    assert os.path.getsize(cache) > 0  # (the step does not return PARQUET_PATH, so the model's result is None)


def test_model_default_method_applies_when_the_call_leaves_it_out(run_algorithm, synthetic_dataset, tiny_model,
                                                                  tmp_path):
    """QGIS 3.22 hands a model input left out of the call (qgis_process, processing.run) to its step as unset, so the
    step's default (class_balanced) applied instead of the model's documented rank_max."""
    from tests.qgis.conftest import RecordingFeedback

    common = {"IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
              "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 128, "DINO_MODEL": tiny_model,
              "sampler_weights:Sampler weights": str(tmp_path / "w.gpkg"),
              "sampler_weights:Training CSV": str(tmp_path / "t.csv")}
    for given, expected in ((None, "rank_max"), (SAMPLING_METHODS.index("composition_only"), "composition_only")):
        feedback = RecordingFeedback()
        parameters = common if given is None else common | {"SAMPLING_METHOD": given}
        import processing

        processing.run(MODEL_ID, parameters, feedback=feedback)
        methods = [line.split(":")[0] for line in feedback.lines
                   if " included, " in line and "excluded patches" in line]
        assert methods == [expected], feedback.lines

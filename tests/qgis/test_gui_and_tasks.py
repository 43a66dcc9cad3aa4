"""Desktop integration: menu/toolbar entry, and the chain run as a background QgsTask."""

import os
import time

import pandas as pd
from qgis.core import QgsApplication, QgsProject, QgsTask

from .conftest import layer_rows


def wait_for(task_runner, timeout=240):
    """Spin the event loop until the task ended (executed is delivered in the main thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        QgsApplication.processEvents()
        if task_runner.succeeded is not None and task_runner.task.status() in (QgsTask.Complete, QgsTask.Terminated):
            return
        time.sleep(0.05)
    raise AssertionError("the task did not finish in time")


def test_gui_entries_are_added_and_removed(plugin, qgis_iface):
    import balanced_sampling

    gui_plugin = balanced_sampling.classFactory(qgis_iface)
    gui_plugin.initGui()
    assert gui_plugin.action.text().startswith("Build balanced dataset")
    assert gui_plugin.action in gui_plugin.toolbar.actions()
    gui_plugin.unload()
    qgis_iface.removePluginMenu.assert_called()
    assert gui_plugin.action is None


def chain_parameters(synthetic_dataset, tiny_model, tmp_path):
    return {
        "IMAGE_FOLDER": os.path.dirname(synthetic_dataset.images[0]),
        "MASK_FOLDER": os.path.dirname(synthetic_dataset.masks[0]), "PATCH_SIZE": 64, "DINO_MODEL": tiny_model,
        "PARQUET_PATH": str(tmp_path / "cache.parquet"), "SAMPLING_METHOD": 6,
        "OUTPUT": str(tmp_path / "weights.gpkg"), "OUTPUT_CSV": str(tmp_path / "train.csv"),
        "OUTPUT_REPORT": str(tmp_path / "report.html"),
    }


def test_chain_runs_as_a_task_and_adds_a_styled_layer(plugin, synthetic_dataset, tiny_model, tmp_path):
    from balanced_sampling.processing_provider.tasks import AlgorithmTask

    project = QgsProject()
    runner = AlgorithmTask("balanced_sampling:buildbalanceddataset",
                           chain_parameters(synthetic_dataset, tiny_model, tmp_path), project=project).start()
    wait_for(runner)
    assert runner.succeeded, runner.feedback.textLog()
    assert runner.layer is not None and project.mapLayer(runner.layer.id()) is runner.layer
    assert runner.layer.renderer().type() == "RuleRenderer"  # weight classes + excluded (tests/qgis/test_styles.py)
    assert len(layer_rows(runner.results["OUTPUT"])) == 384
    project.removeAllMapLayers()


def test_cancelled_task_stops_and_leaves_the_cache_readable(plugin, synthetic_dataset, tiny_model, tmp_path):
    from balanced_sampling.processing_provider.tasks import AlgorithmTask

    parameters = chain_parameters(synthetic_dataset, tiny_model, tmp_path)
    before = {p: os.path.getmtime(p) for p in synthetic_dataset.images + synthetic_dataset.masks}
    runner = AlgorithmTask("balanced_sampling:buildbalanceddataset", parameters, project=QgsProject())
    # Cancel as soon as the uniqueness step reports progress: it must stop between batches.
    runner.feedback.progressChanged.connect(lambda value: runner.cancel() if value > 55 else None)
    runner.start()
    wait_for(runner)
    assert runner.succeeded is False
    assert not os.path.exists(parameters["OUTPUT_CSV"])
    assert {p: os.path.getmtime(p) for p in before} == before
    if os.path.exists(parameters["PARQUET_PATH"]):
        cache = pd.read_parquet(parameters["PARQUET_PATH"])
        assert len(cache) < 384

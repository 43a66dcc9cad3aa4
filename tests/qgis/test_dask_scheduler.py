"""DASK_SCHEDULER on Compute composition clusters: local:2 (a LocalCluster of 2 worker processes) writes the same
fields and values as the in-process run; a scheduler text the engine does not understand is refused before work."""

import pytest
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

from .conftest import layer_rows


def test_local_cluster_gives_the_in_process_result(run_algorithm, footprints_path, tmp_path):
    common = {"INPUT": footprints_path, "K_SELECTION": 1, "K": 4, "USE_LAYER_PROPORTIONS": False}
    run_algorithm("computecompositionclusters", {**common, "OUTPUT": str(tmp_path / "threads.gpkg")})
    run_algorithm("computecompositionclusters", {**common, "DASK_SCHEDULER": "local:2",
                                                 "OUTPUT": str(tmp_path / "dask.gpkg")})
    threads, dask = layer_rows(str(tmp_path / "threads.gpkg")), layer_rows(str(tmp_path / "dask.gpkg"))
    assert len(dask) == len(threads) == 384
    assert dask == threads


@pytest.mark.parametrize("algorithm", ["computecompositionclusters", "computedinov2uniqueness",
                                       "buildbalanceddataset"])
def test_the_parameter_is_advanced_optional_and_empty_by_default(plugin, algorithm):
    definition = QgsApplication.processingRegistry().algorithmById(
        f"balanced_sampling:{algorithm}").parameterDefinition("DASK_SCHEDULER")
    assert definition is not None and definition.description() == "Dask scheduler"
    assert definition.flags() & definition.FlagAdvanced and definition.flags() & definition.FlagOptional
    assert not definition.defaultValue()


def test_a_scheduler_text_not_understood_is_refused(plugin, footprints_path):
    algorithm = QgsApplication.processingRegistry().algorithmById("balanced_sampling:computecompositionclusters")
    ok, message = algorithm.checkParameterValues(
        {"INPUT": footprints_path, "DASK_SCHEDULER": "local:zero", "OUTPUT": "memory:"}, QgsProcessingContext())
    assert not ok and "local:zero" in message and "local:2" in message
    with pytest.raises(QgsProcessingException, match="local:zero"):
        import processing

        processing.run("balanced_sampling:computecompositionclusters",
                       {"INPUT": footprints_path, "DASK_SCHEDULER": "local:zero", "OUTPUT": "memory:"})


@pytest.mark.parametrize("algorithm", ["computecompositionclusters", "computedinov2uniqueness",
                                       "buildbalanceddataset"])
def test_missing_dask_is_refused_naming_the_packages_the_dialog_and_the_command(plugin, footprints_path, algorithm,
                                                                                monkeypatch):
    from balanced_sampling.processing_provider import dask_scheduler

    monkeypatch.setattr(dask_scheduler, "missing_packages", lambda modules: list(modules))
    registered = QgsApplication.processingRegistry().algorithmById(f"balanced_sampling:{algorithm}")
    ok, message = registered.checkParameterValues(
        {"INPUT": footprints_path, "DASK_SCHEDULER": "local:2", "OUTPUT": "memory:"}, QgsProcessingContext())
    assert not ok
    assert "needs the Python packages dask, distributed" in message
    assert "Install Python packages… (tick Also install Dask)" in message
    assert "pip install" in message and "dask distributed" in message

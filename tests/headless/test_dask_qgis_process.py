"""qgis_process with DASK_SCHEDULER: a LocalCluster started by the run (local:2) and a scheduler address (a cluster
this test starts) give the in-process result, and the address run's mask reads and DINOv2 embeddings happen on that
cluster's workers."""

import os
import sys

import pytest

from tests.conftest import ROOT

from .conftest import HAS_QGIS_PROCESS, gpkg_rows, qgis_process

pytestmark = pytest.mark.skipif(not HAS_QGIS_PROCESS, reason="qgis_process.bin is not installed")


def _clusters(footprints, out, profile, *extra):
    proc = qgis_process("run", "balanced_sampling:computecompositionclusters", "--", f"INPUT={footprints}",
                        "K_SELECTION=1", "K=4", f"OUTPUT={out}", *extra, profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return gpkg_rows(out)


@pytest.fixture(scope="module")
def footprints(synthetic_dataset, profile, tmp_path_factory):
    out = tmp_path_factory.mktemp("dask_qgis_process") / "fp.gpkg"
    proc = qgis_process("run", "balanced_sampling:createpatchfootprints", "--",
                        f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
                        f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}", "PATCH_SIZE=64",
                        f"OUTPUT={out}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_local_cluster_and_scheduler_address_equal_in_process(footprints, profile, tmp_path):
    reference = _clusters(footprints, tmp_path / "threads.gpkg", profile)
    assert len(reference) == 384
    assert _clusters(footprints, tmp_path / "local.gpkg", profile, "DASK_SCHEDULER=local:2") == reference

    # A cluster of our own: its workers import the plugin as qgis_process does (balanced_sampling.…).
    import distributed

    sys.path.insert(0, os.path.join(ROOT, "build", "qgis_plugins"))  # spawned workers start with this path
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      memory_limit="1GiB") as cluster:
            rows = _clusters(footprints, tmp_path / "address.gpkg", profile,
                             f"DASK_SCHEDULER={cluster.scheduler_address}")
            prefixes = dict(cluster.scheduler.task_prefixes)
    finally:
        sys.path.remove(os.path.join(ROOT, "build", "qgis_plugins"))
    assert rows == reference
    assert "read_chunk" in prefixes  # the mask reads ran as tasks of this cluster
    assert prefixes["read_chunk"].state_counts["memory"] + prefixes["read_chunk"].state_counts["released"] + \
        prefixes["read_chunk"].state_counts["forgotten"] >= 1


def test_embeddings_on_a_scheduler_address_equal_in_process(footprints, profile, tmp_path):
    """Compute DINOv2 uniqueness with a scheduler address: the embeddings are tasks of that cluster (the model loaded
    once per worker), the workers write the partitioned cache given as a folder, and the scores equal the
    in-process run's."""
    from tests.tiny_dinov2 import build_tiny_dinov2

    model = build_tiny_dinov2(tmp_path / "model")

    def uniqueness(out, *extra):
        proc = qgis_process("run", "balanced_sampling:computedinov2uniqueness", "--", f"INPUT={footprints}",
                            f"DINO_MODEL={model}", "BACKEND=1", "PRECISION=0", f"OUTPUT={out}", *extra,
                            profile=profile)  # BACKEND 1 = faiss (exact), PRECISION 0 = fp32
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc, gpkg_rows(out)

    _, reference = uniqueness(tmp_path / "threads.gpkg")
    assert len(reference) == 384 and all(row["uniqueness_score"] > 0 for row in reference)
    import distributed

    cache = str(tmp_path / "cache") + os.sep
    sys.path.insert(0, os.path.join(ROOT, "build", "qgis_plugins"))
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      memory_limit="1500MiB") as cluster:
            proc, rows = uniqueness(tmp_path / "address.gpkg", f"DASK_SCHEDULER={cluster.scheduler_address}",
                                    f"PARQUET_PATH={cache}")
            prefixes = dict(cluster.scheduler.task_prefixes)
    finally:
        sys.path.remove(os.path.join(ROOT, "build", "qgis_plugins"))
    assert [row["uniqueness_score"] for row in rows] == [row["uniqueness_score"] for row in reference]
    # Counts of transitions into each state: 384 patches on 2 worker threads = 4 tasks of 96, each finished once.
    assert prefixes["run_embedding_task"].state_counts["memory"] == 4
    assert "on the Dask scheduler tcp://" in proc.stdout
    parts = [name for name in os.listdir(cache) if name.startswith("part-")]
    assert len(parts) == 4  # written by the workers, one a task


def test_a_folder_cache_is_reused_by_a_rerun_and_read_by_select_coreset(footprints, profile, tmp_path):
    """PARQUET_PATH as a folder: the first run writes a part, the second run (the folder now exists) reuses every
    embedding, Select coreset reads the folder; a folder holding other files is refused and left as it was."""
    import json

    from tests.tiny_dinov2 import build_tiny_dinov2

    model = build_tiny_dinov2(tmp_path / "model")
    clusters = tmp_path / "clusters.gpkg"
    _clusters(footprints, clusters, profile)
    cache = str(tmp_path / "cache") + os.sep

    def uniqueness(out, parquet):
        return qgis_process("run", "balanced_sampling:computedinov2uniqueness", "--", f"INPUT={clusters}",
                            f"DINO_MODEL={model}", "BACKEND=1", "PRECISION=0", f"PARQUET_PATH={parquet}",
                            f"OUTPUT={out}", profile=profile)

    first = uniqueness(tmp_path / "u1.gpkg", cache)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "Loading weights" not in first.stdout + first.stderr  # transformers' progress bars stay out of the log
    again = uniqueness(tmp_path / "u2.gpkg", str(tmp_path / "cache"))  # the existing folder, no separator
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "384 of 384 patches reused, 0 to compute" in again.stdout
    assert gpkg_rows(tmp_path / "u2.gpkg") == gpkg_rows(tmp_path / "u1.gpkg")

    coreset = qgis_process("run", "balanced_sampling:selectcoreset", "--json", "--", f"INPUT={tmp_path / 'u2.gpkg'}",
                           "METHOD=2", "BUDGET=0.25", f"PARQUET_PATH={cache}", f"OUTPUT={tmp_path / 'coreset.gpkg'}",
                           profile=profile)  # METHOD 2 = fd, which reads the embeddings
    assert coreset.returncode == 0, coreset.stdout[-2000:] + coreset.stderr[-2000:]
    assert json.loads(coreset.stdout)["results"]["SELECTED_PATCHES"] > 0

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = uniqueness(tmp_path / "u3.gpkg", foreign)
    assert refused.returncode != 0 and "holds other files (notes.txt)" in refused.stdout + refused.stderr
    assert os.listdir(foreign) == ["notes.txt"] and (foreign / "notes.txt").read_text() == "keep me"

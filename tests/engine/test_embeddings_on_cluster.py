"""DINOv2 embeddings on a Dask LocalCluster of 2 worker processes (issue 17): the same vectors as in-process,
a partitioned cache written by the workers, only missing patches recomputed, a worker killed mid-run, cancel,
and the checks a worker makes of its model."""

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("distributed", reason="dask/distributed are installed by make setup (requirements.txt)")

from balanced_sampling_plugin import embedding_tasks  # noqa: E402
from balanced_sampling_plugin.compute import DaskExecutor  # noqa: E402
from balanced_sampling_plugin.embedding_cache import (  # noqa: E402
    EmbeddingCache,
    file_digest,
    image_state,
    is_partitioned,
)
from balanced_sampling_plugin.embeddings import extract_embeddings  # noqa: E402
from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled  # noqa: E402
from balanced_sampling_plugin.footprints import build_footprints  # noqa: E402
from balanced_sampling_plugin.progress import Progress  # noqa: E402
from balanced_sampling_plugin.records import normalize_path, patch_ids  # noqa: E402
from balanced_sampling_plugin.uniqueness_stage import compute_uniqueness  # noqa: E402
from tests.tiny_dinov2 import build_tiny_dinov2  # noqa: E402

PER_TASK = 48  # 384 patches -> 8 tasks


@pytest.fixture(scope="module")
def cluster():
    from tests.dask_cluster import local_test_cluster

    # The sabotage below runs on the workers; a task may kill 2 workers before the run stops.
    with local_test_cluster(__name__, allowed_failures=2, memory_limit="1500MiB") as executor:
        yield executor


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="module")
def records(synthetic_dataset):
    pairs = list(zip(synthetic_dataset.images, synthetic_dataset.masks))
    return build_footprints(pairs, patch_size=64, stride=64).records  # 6 rasters x 64 windows


@pytest.fixture(scope="module")
def in_process(records, model):
    return extract_embeddings(records, dino_model=model, precision="fp32", threads=1).embeddings


@pytest.fixture
def small_tasks(monkeypatch):
    monkeypatch.setattr(embedding_tasks, "PATCHES_PER_TASK", PER_TASK)


def _parts(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("part-"))


def test_cluster_embeddings_equal_in_process(cluster, records, model, in_process, small_tasks, tmp_path):
    messages = []
    result = extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster,
                                parquet_path=tmp_path / "cache.parquet", progress=Progress(info=messages.append))
    np.testing.assert_array_equal(result.embeddings, in_process)
    assert result.computed == len(records) and result.reused == 0 and result.device == "cluster"
    assert any("in 8 tasks" in m and "local Dask cluster of 2 worker processes" in m for m in messages), messages
    # The single-file cache was written by the client and serves an in-process re-run.
    again = extract_embeddings(records, dino_model=model, precision="fp32", parquet_path=tmp_path / "cache.parquet")
    assert again.computed == 0 and again.reused == len(records)
    np.testing.assert_array_equal(again.embeddings, in_process)


def test_workers_write_a_partitioned_cache_and_a_rerun_computes_only_missing_patches(
        cluster, records, model, in_process, small_tasks, tmp_path):
    folder = str(tmp_path / "cache") + os.sep
    assert is_partitioned(folder)
    first = extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster, parquet_path=folder)
    np.testing.assert_array_equal(first.embeddings, in_process)
    parts = _parts(folder)
    assert len(parts) == 8  # one part per task, written by the workers
    # Each vector is stored with its image's file state, taken by the client before the workers read the pixels.
    stored = pq.read_table(folder).to_pandas().drop_duplicates("patch_key").set_index("patch_key")["image_state"]
    expected = {key: f"{image_state(normalize_path(path))}:{file_digest(path)}"  # size, time, bytes' digest
                for key, path in zip(patch_ids(records), records.image_path)}
    assert stored.to_dict() == expected
    os.remove(os.path.join(folder, parts[3]))  # a lost partition: only its 48 patches are computed again
    second = extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster, parquet_path=folder)
    assert (second.computed, second.reused) == (PER_TASK, len(records) - PER_TASK)
    np.testing.assert_array_equal(second.embeddings, in_process)
    new = set(_parts(folder)) - set(parts)
    assert sum(pq.read_table(os.path.join(folder, name)).num_rows for name in new) == PER_TASK
    # Nothing missing: no model runs, no part is added.
    third = extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster, parquet_path=folder)
    assert third.computed == 0 and third.device is None and set(_parts(folder)) == set(parts) - {parts[3]} | new


def _install_sabotage(marker, after_parts, folder):
    """Replace this worker's run_embedding_task by one that kills the process once, after ``after_parts``
    parts were written (so some partitions are finished when a worker dies mid-run); the marker file lists the
    parts it saw."""
    from balanced_sampling_plugin import embedding_tasks as tasks

    original = tasks.run_embedding_task

    def sabotaged(task, stop):
        parts = sorted(n for n in os.listdir(folder) if n.startswith("part-")) if os.path.isdir(folder) else []
        if len(parts) >= after_parts and not os.path.exists(marker):
            with open(marker, "w") as handle:
                handle.write("\n".join(parts))
            os._exit(1)
        return original(task, stop)

    tasks.run_embedding_task = sabotaged


def test_a_worker_killed_mid_run_keeps_finished_partitions_and_the_result_is_complete(
        cluster, records, model, in_process, small_tasks, tmp_path):
    folder = str(tmp_path / "cache") + os.sep
    marker = tmp_path / "died"
    cluster.client.run(_install_sabotage, str(marker), 3, folder)
    result = extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster, parquet_path=folder)
    assert marker.exists()  # a worker really died mid-run
    finished = set(marker.read_text().split())
    assert len(finished) >= 3 and finished <= set(_parts(folder))  # the parts finished before it died were kept
    np.testing.assert_array_equal(result.embeddings, in_process)
    found, vectors = EmbeddingCache(folder).lookup(result_keys(records), _identity(folder), in_process.shape[1])
    assert found.all()
    np.testing.assert_array_equal(vectors, in_process[first_rows(records)])
    cluster.client.wait_for_workers(2, timeout=60)
    cluster.client.run(_restore)  # the other worker may still hold the sabotage


def _restore():
    import importlib

    from balanced_sampling_plugin import embedding_tasks as tasks

    importlib.reload(tasks)


def result_keys(records):
    from balanced_sampling_plugin.records import patch_ids

    return np.unique(patch_ids(records).to_numpy())


def first_rows(records):
    """The first record row of each key of :func:`result_keys`, in that order."""
    from balanced_sampling_plugin.records import patch_ids

    return np.unique(patch_ids(records).to_numpy(), return_index=True)[1]


def _identity(path):
    """The model identity stored in the cache (a file, or a folder of parts)."""
    import pyarrow.dataset as parquet_dataset

    return parquet_dataset.dataset(str(path), format="parquet").to_table(columns=["model"])["model"][0].as_py()


def test_cancel_on_the_cluster_keeps_what_arrived_in_a_single_file_cache(cluster, records, model, in_process,
                                                                         small_tasks, tmp_path):
    """Cancel once the first task's result is in: the futures are cancelled and what arrived is in the cache."""
    path = tmp_path / "cache.parquet"
    moved = []
    progress = Progress(set_percent=lambda percent: moved.append(percent > 0), is_canceled=lambda: any(moved))
    with pytest.raises(OperationCanceled) as info:
        extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster, parquet_path=path,
                           progress=progress)
    found, vectors = EmbeddingCache(path).lookup(result_keys(records), _identity(path), in_process.shape[1])
    assert 0 < found.sum() < len(records)
    assert f"the {int(found.sum())} embeddings computed so far were added" in str(info.value)
    np.testing.assert_array_equal(vectors, in_process[first_rows(records)][found])


def test_a_worker_with_other_weights_is_refused(model, tmp_path):
    spec = embedding_tasks.ModelSpec(name=model, local=True, fingerprint="0" * 24, precision="fp32",
                                     use_gpu=False, dim=32)
    with pytest.raises(BalancedSamplingError, match="holds other weights than on this machine"):
        embedding_tasks.worker_model(spec)
    missing = embedding_tasks.ModelSpec(name=str(tmp_path / "nowhere"), local=True, fingerprint=None,
                                        precision="fp32", use_gpu=False, dim=32)
    with pytest.raises(BalancedSamplingError, match="does not exist on the Dask worker"):
        embedding_tasks.worker_model(missing)


def test_a_model_that_fails_on_the_workers_is_a_clear_error(cluster, records, model, tmp_path, small_tasks):
    """The worker setup loads the model on every worker before any task: its engine error comes back as itself."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for name in os.listdir(model):
        target = broken / name
        target.write_bytes(b"not a model" if name.endswith(".safetensors") else (
            open(os.path.join(model, name), "rb").read()))
    with pytest.raises(BalancedSamplingError, match="Cannot load the DINOv2 model"):
        extract_embeddings(records.head(10), dino_model=str(broken), precision="fp32", executor=cluster)


def test_uniqueness_on_the_cluster_equals_in_process(cluster, records, model, small_tasks):
    here = compute_uniqueness(records, dino_model=model, precision="fp32", backend="faiss", threads=1)
    there = compute_uniqueness(records, dino_model=model, precision="fp32", backend="faiss", executor=cluster)
    np.testing.assert_array_equal(there.table.to_numpy(), here.table.to_numpy())


def test_a_partitioned_cache_folder_with_other_files_is_refused(records, model, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(BalancedSamplingError, match="holds other files .*notes.txt"):
        extract_embeddings(records.head(4), dino_model=model, precision="fp32", parquet_path=folder)
    assert os.listdir(folder) == ["notes.txt"] and (folder / "notes.txt").read_text() == "keep me"


def test_the_yaml_compute_section_runs_both_stages_on_one_cluster(synthetic_dataset, model, tmp_path, monkeypatch):
    """compute.scheduler local:2 with mode both: one executor reaches the composition and the uniqueness stage
    (embeddings on its workers), is closed after the run, and the CSV equals the in-process run's."""
    import pandas as pd

    from balanced_sampling_plugin import pipeline
    from balanced_sampling_plugin.pipeline import run_config
    from tests.shipped_examples import example_patch_records, write_config

    seen, real = [], pipeline.compute_uniqueness

    def spy(*args, **kwargs):
        seen.append(kwargs.get("executor"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compute_uniqueness", spy)
    body = {"mode": "both", "sampling_method": "rank_max",
            "input": {"patch_records": example_patch_records(synthetic_dataset, 64)},
            "clustering": {"k_selection": "fixed", "k": 4},
            "embeddings": {"dino_model": model, "parquet_path": str(tmp_path / "cache") + os.sep},
            "uniqueness": {"backend": "faiss"},
            "output": {"csv_path": str(tmp_path / "threads.csv")}}
    run_config(write_config(synthetic_dataset.folder, body))
    body["output"]["csv_path"] = str(tmp_path / "dask.csv")
    body["embeddings"]["parquet_path"] = str(tmp_path / "cache-dask") + os.sep
    body["compute"] = {"scheduler": "local:2", "memory_limit": "1500MiB"}
    run_config(write_config(synthetic_dataset.folder, body))
    assert seen[0] is None
    assert isinstance(seen[1], DaskExecutor) and seen[1]._client is None  # closed after the run
    parts = _parts(tmp_path / "cache-dask")
    assert len(parts) >= 1  # written by the workers
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "dask.csv"), pd.read_csv(tmp_path / "threads.csv"))
    # Again: the cache folder exists now and is reused (nothing computed, no part added), same CSV.
    body["output"]["csv_path"] = str(tmp_path / "again.csv")
    run_config(write_config(synthetic_dataset.folder, body))
    assert _parts(tmp_path / "cache-dask") == parts
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), pd.read_csv(tmp_path / "threads.csv"))


def test_patches_per_task_spreads_small_runs_over_the_workers():
    assert embedding_tasks.patches_per_task(384, 2) == 96  # 4 tasks: both workers busy
    assert embedding_tasks.patches_per_task(1_000_000, 64) == 512  # big runs: the largest task
    assert embedding_tasks.patches_per_task(10, 8) == 32  # never below the smallest task (here: one task)
    assert embedding_tasks.patches_per_task(0, 0) == 32


def test_a_gpu_worker_searches_its_batch_size_once(records, model, monkeypatch):
    """On a GPU worker the largest batch is found by the first task and reused by the next ones (the search runs
    forward passes); the device itself is faked here: no GPU on the test machine."""
    from balanced_sampling_plugin import embeddings
    from balanced_sampling_plugin.embeddings import resolve_model_name

    name, local = resolve_model_name(model)
    spec = embedding_tasks.ModelSpec(name, local, None, "fp32", True, 32)
    monkeypatch.setitem(embedding_tasks._MODELS, spec, ("model", lambda image: image, "cuda"))
    searches, batches = [], []
    monkeypatch.setattr(embeddings, "gpu_batch_size", lambda *a, **k: searches.append(a[3]) or 96)
    monkeypatch.setattr(embeddings, "_embed_on", lambda *a: batches.append((a[6], a[7])) or np.zeros((len(a[4]), 32)))
    windows = [(path, row, col, size) for path, row, col, size in records[["image_path", "row_off", "col_off",
                                                                          "patch_size"]].head(64).itertuples(False)]
    tasks = embedding_tasks.plan_tasks(windows, [str(i) for i in range(64)], spec, (1, 2, 3), None, 16, "id",
                                       per_task=32)
    for task in tasks:
        assert embedding_tasks.run_embedding_task(task, lambda: False).shape == (32, 32)
    assert searches == ["fp32"] and batches == [(96, embedding_tasks.READERS_GPU)] * 2
    embedding_tasks.forget_models()
    assert not embedding_tasks._GPU_BATCHES


def test_a_single_file_cache_is_checkpointed_while_results_arrive(cluster, records, model, small_tasks, tmp_path,
                                                                  monkeypatch):
    """With CHECKPOINT_SECONDS 0 every arriving task rewrites the single-file cache with what is in so far."""
    from balanced_sampling_plugin import embeddings

    saved = []
    real = EmbeddingCache.save

    def spy(self, keys, identity, vectors, states=None):
        saved.append(len(keys))
        assert states is not None and len(states) == len(keys) and all(states)  # the images' states go with them
        return real(self, keys, identity, vectors, states)

    monkeypatch.setattr(embeddings, "CHECKPOINT_SECONDS", 0)
    monkeypatch.setattr(EmbeddingCache, "save", spy)
    extract_embeddings(records, dino_model=model, precision="fp32", executor=cluster,
                       parquet_path=tmp_path / "cache.parquet")
    assert saved == sorted(saved) and saved[0] == PER_TASK and saved[-2:] == [len(records)] * 2  # then the final save


def test_embeddings_larger_than_memory_go_to_a_memory_map_and_the_knn_out_of_core(
        cluster, records, model, in_process, small_tasks, tmp_path, monkeypatch):
    """With little memory available the run's vectors live in a temporary memory map beside the cache (filled from
    the partitioned cache part by part and by the workers), the uniqueness kNN runs out of core, the scores match
    exact search, and the temporary folder goes with the result."""
    import gc

    from scipy.stats import spearmanr

    from balanced_sampling_plugin import uniqueness_out_of_core

    folder = str(tmp_path / "cache") + os.sep
    half = records.iloc[: len(records) // 2]
    extract_embeddings(half, dino_model=model, precision="fp32", parquet_path=folder)  # half of them cached
    monkeypatch.setattr(uniqueness_out_of_core, "available_memory_bytes", lambda: 100_000)  # 0.1 MB "free": less than 4 x the 49 KB of vectors
    messages = []
    result = compute_uniqueness(records, dino_model=model, precision="fp32", parquet_path=folder, executor=cluster,
                                progress=Progress(info=messages.append))
    assert any("kept in a temporary file in" in m for m in messages), messages
    assert any("out of core" in m for m in messages), messages
    assert (result.computed, result.reused) == (len(records) - len(half), len(half))
    said = next(m for m in messages if "kept in a temporary file in" in m)
    where = said.split("temporary file in ")[1].split(" (deleted")[0]
    assert os.path.dirname(where) == str(tmp_path)  # beside the cache, on the user's disk
    gc.collect()
    assert not os.path.exists(where)  # the memory map went with the embeddings once the scores were made
    monkeypatch.undo()
    exact = compute_uniqueness(records, dino_model=model, precision="fp32", parquet_path=folder, backend="faiss")
    scores, reference = result.table.iloc[:, 0].to_numpy(), exact.table.iloc[:, 0].to_numpy()
    assert spearmanr(scores, reference).statistic > 0.99
    gc.collect()

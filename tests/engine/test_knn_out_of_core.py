"""Out-of-core cosine kNN: float16 NN-Descent graph + exact re-rank read from a memory-mapped .npy (no QGIS)."""

import gc
import hashlib
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.uniqueness import knn_cosine, normalize_rows, recall_at_k, reduce_dimensions
from balanced_sampling_plugin.uniqueness_out_of_core import (
    STEP_SHARES,
    available_memory_bytes,
    fits_in_memory,
    in_memory_knn_bytes,
    knn_cosine_out_of_core,
    pca_axes,
    project_rows,
)

pytest.importorskip("faiss")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_knn import scene_embeddings  # noqa: E402

N, D, K = 20_000, 768, 5
#: One thread: the graph is then identical every run, so two reads of the same file compare exactly.
ONE_THREAD = {"num_threads": 1}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(path of the .npy, the rows as written): scene-like embeddings, not unit length (x 3)."""
    x = scene_embeddings(N, D) * np.float32(3.0)
    path = tmp_path_factory.mktemp("ooc") / "embeddings.npy"
    np.save(path, x)
    return path, x


@pytest.fixture(scope="module")
def result(stored):
    """The out-of-core kNN of the memmap (opened writable, so an in-place write would show), and the file's
    hash before the run."""
    path, _ = stored
    before = sha(path)
    vectors = np.load(path, mmap_mode="r+")
    timings, percents = {}, []
    idx, dist = knn_cosine_out_of_core(vectors, K, progress=Progress(set_percent=percents.append), timings=timings,
                                       **ONE_THREAD)
    del vectors
    return idx, dist, before, timings, percents


@pytest.fixture(scope="module")
def truth(stored):
    """Exact neighbours of 2 000 random queries (faiss, all rows)."""
    import faiss

    unit = normalize_rows(stored[1])
    queries = np.random.default_rng(1).choice(N, 2000, replace=False)
    index = faiss.IndexFlatIP(D)
    index.add(unit)
    sims, labels = index.search(unit[queries], K + 1)
    exact = np.array([[j for j in row if j != q][:K] for row, q in zip(labels, queries)])
    return queries, exact, unit


def test_recall_exact_distances_and_never_self(result, truth):
    idx, dist, _, timings, _ = result
    queries, exact, unit = truth
    assert idx.shape == (N, K) and idx.dtype == np.int64 and dist.shape == (N, K) and dist.dtype == np.float32
    assert set(timings) == {"pca", "projection", "graph", "rerank"}
    assert recall_at_k(idx[queries], exact) >= 0.98
    # The distances are the exact cosine distances of the pairs returned, nearest first.
    cosine = np.einsum("nd,nkd->nk", unit, unit[idx])
    np.testing.assert_allclose(dist, np.clip(1.0 - cosine, 0, 2), atol=1e-5)
    assert (np.diff(dist, axis=1) >= 0).all()
    assert not (idx == np.arange(N)[:, None]).any(), "a patch is never its own neighbour"
    assert all(len(set(row)) == K for row in idx[:2000])


def test_input_file_is_not_modified(stored, result):
    assert sha(stored[0]) == result[2]


def test_same_neighbours_as_in_memory_nndescent(stored, result, truth):
    # Not identical (float16 graph storage), but the same quality on the same rows.
    queries, exact, _ = truth
    in_memory, _ = knn_cosine(stored[1], K, backend="nndescent")
    assert abs(recall_at_k(result[0][queries], exact) - recall_at_k(in_memory[queries], exact)) <= 0.01


def test_pca_matches_reduce_dimensions(stored):
    path, x = stored
    axes, offset = pca_axes(np.load(path, mmap_mode="r"), 256, block_rows=3000)
    unit = normalize_rows(x[:600])
    ours, theirs = project_rows(unit, axes, offset), reduce_dimensions(normalize_rows(x), 256)[:600]
    # Eigenvector signs may differ: compare the projections' inner products.
    np.testing.assert_allclose(ours @ ours.T, theirs @ theirs.T, atol=1e-4)


def test_memmap_is_never_read_whole_into_memory(stored):
    # numpy reports its allocations to tracemalloc: a copy of the matrix (61 MB) would be seen; the
    # blocks, graph and results stay well under half of it.
    path, _ = stored
    full = N * D * 4
    tracemalloc.start()
    try:
        knn_cosine_out_of_core(path, K, block_rows=1024)  # a path: opened memory-mapped
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < full / 2, f"peak numpy allocation {peak / 1e6:.0f} MB of a {full / 1e6:.0f} MB matrix"


class CountingRows:
    """A read-only row source that records how many rows each read asked for."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, rows):
        block = self.array[rows]
        self.reads.append(len(block))
        return block


def test_gather_reads_bounded_blocks_and_gives_the_same_neighbours(stored, result):
    path, _ = stored
    source = CountingRows(np.load(path, mmap_mode="r"))
    block_rows, graph_k = 256, 32
    idx, dist = knn_cosine_out_of_core(source, K, block_rows=block_rows, **ONE_THREAD)
    assert max(source.reads) <= block_rows * (graph_k + 1) < N
    assert sum(source.reads) >= N, "every row was read"
    # Same graph (one thread), same candidates, whichever way they are read.
    np.testing.assert_array_equal(idx, result[0])
    np.testing.assert_allclose(dist, result[1], atol=1e-6)


def test_cancel_during_projection_and_during_graph(stored):
    path, _ = stored
    calls = []
    with pytest.raises(OperationCanceled):
        knn_cosine_out_of_core(path, K, progress=Progress(is_canceled=lambda: calls.append(1) or len(calls) > 12))
    assert len(calls) == 13, "cancel is honoured at the next block"
    # While faiss builds the graph (one long call), cancel is polled.
    percents, cancelled_at = [], []
    graph_start, graph_end = STEP_SHARES["graph"]

    def is_canceled():
        if percents and percents[-1] > 100 * graph_start + 0.5 and not cancelled_at:  # while the graph builds
            cancelled_at.append(time.monotonic())
        return bool(cancelled_at)

    with pytest.raises(OperationCanceled):
        knn_cosine_out_of_core(path, K, progress=Progress(is_canceled=is_canceled, set_percent=percents.append))
    assert time.monotonic() - cancelled_at[0] < 1.0
    assert percents == sorted(percents) and percents[-1] < 100 * graph_end
    # The abandoned faiss call goes on in the background (the tests after this one run meanwhile) on
    # storage its closure still owns: freeing it here would crash the process.
    gc.collect()


def test_progress_reaches_100(result):
    percents = result[4]
    assert percents == sorted(percents) and percents[-1] == pytest.approx(100.0) and len(percents) > 20


def test_small_tables_run_an_exact_blocked_search(tmp_path):
    x = scene_embeddings(1500, 64, seed=3)
    x[7] = 0.0  # an all-zero row: cosine 0 with everything, as in memory
    np.save(tmp_path / "small.npy", x)
    timings = {}
    idx, dist = knn_cosine_out_of_core(tmp_path / "small.npy", 4, block_rows=300, timings=timings)
    assert set(timings) == {"exact"}
    exact_idx, exact_dist = knn_cosine(x, 4, backend="faiss")
    np.testing.assert_allclose(dist, exact_dist, atol=1e-5)
    assert recall_at_k(idx, exact_idx) >= 0.999  # ties may swap equal-distance neighbours
    assert not (idx == np.arange(1500)[:, None]).any()


def test_bad_input_is_named(tmp_path):
    with pytest.raises(BalancedSamplingError, match="2-D"):
        knn_cosine_out_of_core(np.zeros(10, dtype=np.float32), 2)
    with pytest.raises(BalancedSamplingError, match="2-D"):
        knn_cosine_out_of_core(np.zeros((10, 0), dtype=np.float32), 2)
    with pytest.raises(BalancedSamplingError, match="n - 1 = 9; got 10"):
        knn_cosine_out_of_core(np.ones((10, 4), dtype=np.float32), 10)
    with pytest.raises(BalancedSamplingError, match="got 0"):
        knn_cosine_out_of_core(np.ones((10, 4), dtype=np.float32), 0)
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        knn_cosine_out_of_core(tmp_path / "missing.npy", 5)
    with pytest.raises(BalancedSamplingError, match="numbers"):
        knn_cosine_out_of_core(np.array([["a", "b"], ["c", "d"]]), 1)
    with pytest.raises(BalancedSamplingError, match="Unknown parameter"):
        knn_cosine_out_of_core(np.ones((10, 4), dtype=np.float32), 2, M=16)
    x = scene_embeddings(6000, 32, seed=1)
    x[4321, 5] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(BalancedSamplingError, match="patch row 4321 holds NaN"):
        knn_cosine_out_of_core(tmp_path / "nan.npy", 5)
    x[4321, 5] = 0.0
    x[5999, 0] = np.inf
    with pytest.raises(BalancedSamplingError, match="patch row 5999 holds NaN or infinite"):
        knn_cosine_out_of_core(x, 5)
    # Large but finite values are fine (their squares overflow float32: the norm is taken in float64).
    x[5999, 0] = 3e25
    idx, _ = knn_cosine_out_of_core(x, 5)
    assert idx.shape == (6000, 5)


def test_fits_in_memory():
    assert in_memory_knn_bytes(10_000_000, 768) > 60e9  # the float32 matrix twice, at least
    assert fits_in_memory(155_000, 768, available_bytes=8 << 30)
    assert not fits_in_memory(10_000_000, 768, available_bytes=64 << 30)
    assert not fits_in_memory(2_000_000, 768, available_bytes=16 << 30)
    assert fits_in_memory(2_000_000, 768, available_bytes=32 << 30, share=1.0)
    available = available_memory_bytes()
    assert available is None or available > 0
    assert fits_in_memory(1000, 768) in (True, False)

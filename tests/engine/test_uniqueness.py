"""Cosine kNN backends and the uniqueness score (no model, no QGIS)."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.uniqueness import (
    BACKENDS,
    DEFAULT_BACKEND,
    drop_self,
    inner_products_by_index,
    knn_cosine,
    project_rows,
    recall_at_k,
    reduce_dimensions,
    rerank_exact,
    uniqueness_scores,
)


def clustered(n=1500, d=48, n_clusters=12, rank=6, seed=0):
    """Unit vectors in Gaussian clusters of intrinsic dimension ``rank``, uneven cluster sizes."""
    rng = np.random.default_rng(seed)
    sizes = rng.pareto(1.0, n_clusters) + 1
    labels = rng.choice(n_clusters, size=n, p=sizes / sizes.sum())
    centres = rng.standard_normal((n_clusters, d))
    bases = rng.standard_normal((n_clusters, rank, d)) / np.sqrt(rank)
    z = rng.standard_normal((n, rank))
    x = 1.5 * centres[labels] + np.einsum("nr,nrd->nd", z, bases[labels]) + 0.1 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def embeddings():
    return clustered()


@pytest.fixture(scope="module")
def exact(embeddings):
    return knn_cosine(embeddings, 5, backend="faiss")


def test_exact_backends_agree(embeddings, exact):
    idx_faiss, dist_faiss = exact
    idx_sk, dist_sk = knn_cosine(embeddings, 5, backend="sklearn")
    # Same neighbour sets; near-ties (1e-7 apart) may swap order within a row.
    np.testing.assert_array_equal(np.sort(idx_sk, axis=1), np.sort(idx_faiss, axis=1))
    np.testing.assert_allclose(dist_sk, dist_faiss, atol=1e-5)
    # torch: blocked products, the block smaller than the table so several blocks and the self mask are used
    idx_torch, dist_torch = knn_cosine(embeddings, 5, backend="torch", device="cpu",
                                       block_bytes=4 * len(embeddings) * 37)
    np.testing.assert_array_equal(np.sort(idx_torch, axis=1), np.sort(idx_faiss, axis=1))
    np.testing.assert_allclose(dist_torch, dist_faiss, atol=1e-5)


def test_torch_backend_asked_for_a_missing_gpu_says_so(embeddings):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the error cannot happen")
    with pytest.raises(BalancedSamplingError, match="torch sees no CUDA GPU; use device 'auto' or 'cpu'"):
        knn_cosine(embeddings, 5, backend="torch", device="cuda")
    with pytest.raises(BalancedSamplingError, match="Unknown parameter.*'torch' kNN backend; it accepts block_bytes, "
                                                    "device"):
        knn_cosine(embeddings, 5, backend="torch", ef=3)


def test_hnsw_matches_exact(embeddings, exact):
    idx, dist = knn_cosine(embeddings, 5, backend="hnsw")
    assert recall_at_k(idx, exact[0]) >= 0.99
    assert spearmanr(dist.mean(axis=1), exact[1].mean(axis=1)).statistic >= 0.99


@pytest.mark.parametrize("backend", BACKENDS)
def test_output_shapes_and_ranges(embeddings, backend):
    idx, dist = knn_cosine(embeddings, 5, backend=backend)
    assert idx.shape == dist.shape == (len(embeddings), 5)
    assert idx.dtype == np.int64 and dist.dtype == np.float32
    assert (dist >= 0).all() and (dist <= 2).all()
    assert (np.diff(dist, axis=1) >= -1e-6).all()
    assert not (idx == np.arange(len(embeddings))[:, None]).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_self_is_never_a_neighbour_among_exact_duplicates(backend):
    rng = np.random.default_rng(1)
    # 20 groups of 8 identical vectors: more duplicates than the k + 1 = 6 results asked for.
    x = np.repeat(rng.standard_normal((20, 16)), 8, axis=0)
    idx, dist = knn_cosine(x, 5, backend=backend)
    rows = np.arange(len(x))[:, None]
    assert not (idx == rows).any()
    assert (idx // 8 == rows // 8).all(), "the nearest neighbours are the patch's duplicates"
    np.testing.assert_allclose(dist, 0.0, atol=1e-5)


def test_duplicate_pairs_are_each_others_nearest():
    x = clustered(200, seed=3)
    x = np.concatenate([x, x[:10]])  # rows 200..209 duplicate rows 0..9
    for backend in BACKENDS:
        idx, dist = knn_cosine(x, 3, backend=backend)
        np.testing.assert_array_equal(idx[:10, 0], np.arange(200, 210))
        np.testing.assert_array_equal(idx[200:, 0], np.arange(10))
        np.testing.assert_allclose(dist[:10, 0], 0.0, atol=1e-5)


def test_drop_self_removes_own_id_or_farthest():
    indices = np.array([[4, 0, 7], [3, 5, 6]])
    distances = np.array([[0.0, 0.0, 0.2], [0.0, 0.1, 0.3]], dtype=np.float32)
    idx, dist = drop_self(indices, distances, np.array([0, 9]), 2)
    np.testing.assert_array_equal(idx, [[4, 7], [3, 5]])
    np.testing.assert_allclose(dist, [[0.0, 0.2], [0.0, 0.1]])


def test_hnsw_is_deterministic(embeddings):
    first = knn_cosine(embeddings, 5, backend="hnsw")
    second = knn_cosine(embeddings, 5, backend="hnsw")
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_unique_point_scores_highest():
    x = clustered(400, seed=5)
    outlier = np.random.default_rng(9).standard_normal(x.shape[1]).astype(np.float32)
    x = np.vstack([x, outlier / np.linalg.norm(outlier)])
    for backend in BACKENDS:
        scores = uniqueness_scores(x, k=5, backend=backend)
        assert scores.shape == (401,) and scores.dtype == np.float64
        assert scores.argmax() == 400


def test_small_tables():
    progress = Progress()
    scores = uniqueness_scores(np.eye(3), k=5, backend="hnsw", progress=progress)
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)  # orthogonal: cosine distance 1
    assert any("lowered from 5 to 2" in w for w in progress.warnings)
    with pytest.raises(BalancedSamplingError, match="at least 2 patches"):
        uniqueness_scores(np.ones((1, 4)), k=5)


def test_bad_input_is_a_clear_error(embeddings):
    with pytest.raises(BalancedSamplingError, match="Unknown kNN backend 'annoy'"):
        knn_cosine(embeddings, 5, backend="annoy")
    with pytest.raises(BalancedSamplingError, match="Unknown parameter"):
        knn_cosine(embeddings, 5, backend="faiss", M=16)
    bad = embeddings[:10].copy()
    bad[4, 0] = np.nan
    with pytest.raises(BalancedSamplingError, match="row 4"):
        knn_cosine(bad, 3, backend="faiss")


def test_zero_vectors_do_not_crash():
    x = clustered(50, seed=2)
    x[:2] = 0.0
    for backend in BACKENDS:
        idx, dist = knn_cosine(x, 3, backend=backend)
        assert np.isfinite(dist).all()


def test_normalize_rows_keeps_huge_finite_rows_and_names_the_first_bad_one():
    from balanced_sampling_plugin.uniqueness import normalize_rows

    # Squares of 1e30 overflow float32: such a row is finite, and normalised in float64.
    x = np.array([[1e30, 1e30, 0.0], [0.0, 0.0, 0.0], [3.0, 4.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(normalize_rows(x), [[0.70710677, 0.70710677, 0], [0, 0, 0], [0.6, 0.8, 0]], rtol=1e-6)
    assert x[2, 0] == 3.0, "the caller's array is left alone"
    for bad in (np.nan, np.inf, -np.inf):
        y = np.ones((4, 3), dtype=np.float32)
        y[2, 1] = bad
        with pytest.raises(BalancedSamplingError, match="patch row 2 holds NaN or infinite"):
            normalize_rows(y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_progress_and_cancel(embeddings, backend, monkeypatch):
    import balanced_sampling_plugin.uniqueness as uniqueness

    monkeypatch.setattr(uniqueness, "QUERY_BATCH", 256)
    percents = []
    knn_cosine(embeddings, 5, backend=backend, progress=Progress(set_percent=percents.append))
    assert len(percents) > 2 and percents == sorted(percents) and percents[-1] == pytest.approx(100.0)

    calls = []
    progress = Progress(is_canceled=lambda: calls.append(1) or len(calls) > 2)
    with pytest.raises(OperationCanceled):
        knn_cosine(embeddings, 5, backend=backend, progress=progress)
    assert len(calls) == 3, "cancel is honoured at the next batch"


def test_recall_at_k():
    assert recall_at_k([[1, 2], [3, 4]], [[2, 1], [3, 5]]) == pytest.approx(0.75)
    with pytest.raises(BalancedSamplingError):
        recall_at_k([[1, 2]], [[1, 2, 3]])


# The two-stage hnsw path (PCA -> hnsw candidates -> exact re-rank). ``exact_below=0`` forces it
# on tables smaller than the default exact-search threshold.
TWO_STAGE = {"exact_below": 0, "reduce_dim": 32, "candidates": 24}


@pytest.fixture(scope="module")
def larger():
    return clustered(n=4000, d=96, n_clusters=20, rank=12, seed=7)


@pytest.fixture(scope="module")
def larger_exact(larger):
    return knn_cosine(larger, 5, backend="faiss")


# The graph paths, forced on small tables: hnsw two-stage and NN-Descent by both builders (all
# PCA -> graph -> exact re-rank). faiss's NN-Descent is deterministic on one thread only.
NNDESCENT = {"exact_below": 0, "reduce_dim": 32, "project_from": 0}
FAISS_NNDESCENT = {**NNDESCENT, "builder": "faiss"}
PYNNDESCENT = {**NNDESCENT, "builder": "pynndescent"}
GRAPH_PATHS = pytest.mark.parametrize("backend, params", [
    ("hnsw", TWO_STAGE), ("nndescent", FAISS_NNDESCENT), ("nndescent", {**FAISS_NNDESCENT, "num_threads": 1}),
    ("nndescent", PYNNDESCENT), ("nndescent", {**PYNNDESCENT, "num_threads": 1})])


@GRAPH_PATHS
def test_graph_paths_match_exact(larger, larger_exact, backend, params):
    idx, dist = knn_cosine(larger, 5, backend=backend, **params)
    assert recall_at_k(idx, larger_exact[0]) >= 0.99
    assert spearmanr(dist.mean(axis=1), larger_exact[1].mean(axis=1)).statistic >= 0.995
    assert not (idx == np.arange(len(larger))[:, None]).any()
    assert (np.diff(dist, axis=1) >= -1e-6).all()
    # Distances are exact cosines of the neighbours returned.
    exact = 1.0 - np.einsum("nd,nkd->nk", larger, larger[idx])
    np.testing.assert_allclose(dist, np.clip(exact, 0, 2), atol=1e-5)


@pytest.mark.parametrize("backend, params", [
    ("hnsw", TWO_STAGE), ("nndescent", {**FAISS_NNDESCENT, "num_threads": 1}), ("nndescent", PYNNDESCENT),
    ("nndescent", {**PYNNDESCENT, "num_threads": 1})])
def test_graph_paths_are_deterministic(larger, backend, params):
    first = knn_cosine(larger, 5, backend=backend, **params)
    second = knn_cosine(larger, 5, backend=backend, **params)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@GRAPH_PATHS
def test_graph_paths_never_return_self_among_duplicates(backend, params):
    rng = np.random.default_rng(4)
    x = np.repeat(rng.standard_normal((40, 64)), 8, axis=0)
    idx, dist = knn_cosine(x, 5, backend=backend, **params)
    rows = np.arange(len(x))[:, None]
    assert not (idx == rows).any()
    assert (idx // 8 == rows // 8).all()
    np.testing.assert_allclose(dist, 0.0, atol=1e-5)


def test_small_tables_use_exact_search(larger, larger_exact):
    idx, dist = knn_cosine(larger, 5, backend="hnsw")  # 4000 < exact_below
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(larger_exact[0], axis=1))
    np.testing.assert_allclose(dist, larger_exact[1], atol=1e-5)


def test_reduce_dimensions():
    x = clustered(500, d=48, seed=8)
    y = reduce_dimensions(x, 16)
    assert y.shape == (500, 16) and y.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(y, reduce_dimensions(x, 16))
    assert reduce_dimensions(x, 0) is x and reduce_dimensions(x, 48) is x


def test_project_rows_keeps_a_row_at_the_offset_zero():
    axes = np.eye(3, 2, dtype=np.float32)
    rows = np.array([[0.6, 0.8, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    y = project_rows(rows, axes, np.array([1.0, 0.0], dtype=np.float32))
    np.testing.assert_allclose(y, [[-0.4472136, 0.8944272], [0.0, 0.0], [-1.0, 0.0]], atol=1e-6)
    scaled = project_rows(rows * 2, axes, np.array([1.0, 0.0], dtype=np.float32), np.full(3, 0.5, np.float32))
    np.testing.assert_allclose(scaled, y, atol=1e-6)


def test_rerank_exact_skips_self_and_duplicates():
    x = np.eye(4, dtype=np.float32)
    x[1] = [0.8, 0.6, 0, 0]
    x[2] = [0.6, 0.8, 0, 0]
    idx, dist = rerank_exact(x, np.array([[0, 2, 2, 1, 3]]), np.array([0]), 2)
    np.testing.assert_array_equal(idx, [[1, 2]])
    np.testing.assert_allclose(dist, [[0.2, 0.4]], atol=1e-6)
    with pytest.raises(BalancedSamplingError, match="candidates"):
        rerank_exact(x, np.array([[0, 1, 1]]), np.array([0]), 2)


def test_two_stage_progress_and_cancel(larger, monkeypatch):
    import balanced_sampling_plugin.uniqueness as uniqueness

    monkeypatch.setattr(uniqueness, "QUERY_BATCH", 512)
    percents = []
    knn_cosine(larger, 5, backend="hnsw", progress=Progress(set_percent=percents.append), **TWO_STAGE)
    assert len(percents) > 4 and percents == sorted(percents) and percents[-1] == pytest.approx(100.0)

    calls = []
    progress = Progress(is_canceled=lambda: calls.append(1) or len(calls) > 2)
    with pytest.raises(OperationCanceled):
        knn_cosine(larger, 5, backend="hnsw", progress=progress, **TWO_STAGE)
    assert len(calls) == 3



def test_default_backend_is_nndescent_and_enum_order_is_stable():
    # QGIS models and qgis_process calls store the enum index: existing entries never move.
    assert BACKENDS[:3] == ("hnsw", "faiss", "sklearn")
    assert DEFAULT_BACKEND == "nndescent" and DEFAULT_BACKEND in BACKENDS


def test_nndescent_thread_count_reaches_the_graph_build(larger, monkeypatch):
    # faiss builds the graph in a worker thread; OpenMP's thread count is per thread, so it
    # must be set there (a regression: "Reproducible kNN" silently ran on all cores).
    import threading

    import faiss

    calls = []
    real = faiss.omp_set_num_threads
    monkeypatch.setattr(faiss, "omp_set_num_threads",
                        lambda n: calls.append((threading.current_thread().name, n)) or real(n))
    knn_cosine(larger, 5, backend="nndescent", num_threads=1, **FAISS_NNDESCENT)
    assert any(name.startswith("knn-graph") and n == 1 for name, n in calls), calls


def test_reproducible_runs_faiss_on_one_thread_and_keeps_pynndescent_on_all(larger, monkeypatch):
    # faiss's graph depends on thread timing; pynndescent's is the same every run for a given thread count.
    import threading

    import faiss
    import numba

    from balanced_sampling_plugin.uniqueness import default_threads, reproducible_params, uniqueness_scores

    assert reproducible_params("nndescent") == {"reproducible": True} and reproducible_params("hnsw") == {}
    faiss_calls, numba_calls = [], []
    real_faiss, real_numba = faiss.omp_set_num_threads, numba.set_num_threads
    monkeypatch.setattr(faiss, "omp_set_num_threads",
                        lambda n: faiss_calls.append((threading.current_thread().name, n)) or real_faiss(n))
    monkeypatch.setattr(numba, "set_num_threads",
                        lambda n: numba_calls.append((threading.current_thread().name, n)) or real_numba(n))
    knn_cosine(larger, 5, backend="nndescent", reproducible=True, **FAISS_NNDESCENT)
    assert any(name.startswith("knn-graph") and n == 1 for name, n in faiss_calls), faiss_calls
    first = knn_cosine(larger, 5, backend="nndescent", reproducible=True, **PYNNDESCENT)
    assert numba_calls[0][1] == min(default_threads(), numba.config.NUMBA_NUM_THREADS), numba_calls
    second = knn_cosine(larger, 5, backend="nndescent", reproducible=True, **PYNNDESCENT)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    # Out of core the graph is faiss's: reproducible becomes one thread there.
    import balanced_sampling_plugin.uniqueness_out_of_core as out_of_core

    seen = {}
    monkeypatch.setattr(out_of_core, "knn_cosine_out_of_core",
                        lambda vectors, k, progress=None, **params: seen.update(params) or
                        (np.zeros((len(vectors), k), np.int64), np.zeros((len(vectors), k), np.float32)))
    uniqueness_scores(larger.view(np.memmap), 5, backend="nndescent", reproducible=True)  # a memmap: out of core
    assert seen.get("num_threads") == 1 and "reproducible" not in seen, seen


def test_pynndescent_thread_count_reaches_the_kernels_and_is_restored(larger, monkeypatch):
    # numba's thread count is per calling thread too: set in the worker that runs the kernels, then put back.
    import threading

    import numba

    calls = []
    real = numba.set_num_threads
    monkeypatch.setattr(numba, "set_num_threads",
                        lambda n: calls.append((threading.current_thread().name, n)) or real(n))
    knn_cosine(larger, 5, backend="nndescent", num_threads=1, **PYNNDESCENT)
    assert calls[0][0].startswith("knn-graph") and calls[0][1] == 1, calls
    assert calls[-1] == (calls[0][0], numba.config.NUMBA_NUM_THREADS), "the thread's own count is restored"


def test_nndescent_parameters_are_checked(larger):
    with pytest.raises(BalancedSamplingError, match=r"Unknown parameter.*'nndescent'.*graph_k"):
        knn_cosine(larger, 5, backend="nndescent", M=16)


def test_nndescent_progress_reaches_100(larger, monkeypatch):
    import balanced_sampling_plugin.uniqueness as uniqueness

    monkeypatch.setattr(uniqueness, "QUERY_BATCH", 512)
    percents = []
    knn_cosine(larger, 5, backend="nndescent", progress=Progress(set_percent=percents.append), **NNDESCENT)
    assert len(percents) > 4 and percents == sorted(percents) and percents[-1] == pytest.approx(100.0)


def test_graph_build_is_polled_for_cancel_while_it_runs():
    # The faiss graph is one long call in a worker thread: cancel must not wait for it.
    import threading

    from balanced_sampling_plugin.uniqueness import _run_polled

    release, finished = threading.Event(), threading.Event()
    percents = []
    progress = Progress(is_canceled=lambda: len(percents) >= 2, set_percent=percents.append)
    with pytest.raises(OperationCanceled):
        _run_polled(lambda: release.wait(10) and finished.set(), 1.0, progress, poll=0.02)
    assert not release.is_set() and not finished.is_set(), "cancelled while the work was still running"
    assert percents == sorted(percents) and 0 < percents[-1] <= 95
    release.set()
    assert _run_polled(lambda: 42, 1.0, Progress(), poll=0.02) == 42


def test_nndescent_with_many_neighbours(larger, larger_exact):
    progress = Progress(info=lambda message: None)
    idx, _ = knn_cosine(larger, 24, backend="nndescent", progress=progress, **NNDESCENT)  # graph_k -> 48
    exact24, _ = knn_cosine(larger, 24, backend="faiss")
    assert recall_at_k(idx, exact24) >= 0.98
    # Beyond the largest graph faiss builds safely: exact search, said in the log.
    messages = []
    idx, dist = knn_cosine(larger, 40, backend="nndescent", progress=Progress(info=messages.append), **NNDESCENT)
    exact40 = knn_cosine(larger, 40, backend="faiss")
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(exact40[0], axis=1))
    assert any("exact faiss search" in m for m in messages)

def test_inner_products_by_index_faiss_and_numpy_agree(larger, monkeypatch):
    import builtins

    rng = np.random.default_rng(0)
    queries = rng.choice(len(larger), 50, replace=False)
    candidates = rng.integers(0, len(larger), size=(50, 7))
    with_faiss = inner_products_by_index(larger, queries, candidates)
    expected = np.einsum("nd,nkd->nk", larger[queries], larger[candidates])
    np.testing.assert_allclose(with_faiss, expected, atol=1e-5)

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **kw: (_ for _ in ()).throw(ImportError(name)) if name == "faiss"
                        else real_import(name, *a, **kw))
    np.testing.assert_allclose(inner_products_by_index(larger, queries, candidates), expected, atol=1e-5)


def test_nndescent_goes_out_of_core_when_memory_is_short_or_the_embeddings_are_on_disk(monkeypatch, tmp_path):
    """uniqueness_scores picks the out-of-core search for a memmap, or when the in-memory search would need more
    than half the available memory, says so, and scores like exact search."""
    from balanced_sampling_plugin import uniqueness_out_of_core

    x = clustered(n=8000, d=64, n_clusters=40, rank=8, seed=3)
    exact_scores = uniqueness_scores(x, 5, backend="faiss")
    messages = []
    here = uniqueness_scores(x, 5, progress=Progress(info=messages.append))
    assert not any("out of core" in m for m in messages)  # plenty of memory for 8 000 x 64

    monkeypatch.setattr(uniqueness_out_of_core, "available_memory_bytes", lambda: 4 << 20)  # 4 MB free
    messages.clear()
    short = uniqueness_scores(x, 5, progress=Progress(info=messages.append))
    assert any("more than half of the 0.0 GB available" in m and "out of core" in m for m in messages), messages
    monkeypatch.undo()

    np.save(tmp_path / "x.npy", x)
    messages.clear()
    on_disk = uniqueness_scores(np.load(tmp_path / "x.npy", mmap_mode="r"), 5, progress=Progress(info=messages.append))
    assert any("read from storage" in m for m in messages)
    for scores in (here, short, on_disk):
        assert spearmanr(scores, exact_scores).statistic > 0.995
        assert np.mean(np.abs(scores - exact_scores) < 1e-5) > 0.97  # the exact distances of (nearly) the same pairs

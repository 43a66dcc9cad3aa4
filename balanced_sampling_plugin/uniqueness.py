"""Cosine k-nearest-neighbour search over patch embeddings, and the uniqueness score.

``uniqueness_score`` of a patch = mean cosine distance (``1 - cos``, in [0, 2]) from its
embedding to its ``k`` nearest *other* patches. Higher = more unique.

Four interchangeable backends give the same neighbours (exactly, or with recall@k >= 0.99
for ``nndescent`` and ``hnsw``, measured in ``docs/benchmarks.md``):

- ``nndescent`` (the default, needs faiss): the fastest for large N. From ``project_from`` patches the unit
  vectors are projected to ``reduce_dim`` dimensions by PCA (:func:`reduce_dimensions`), NN-Descent builds
  the ``graph_k``-nearest-neighbour graph of the projections directly (an all-pairs kNN
  problem: no index is queried afterwards), and :func:`rerank_exact` re-scores each patch's
  ``graph_k`` graph neighbours with the exact cosine of the full vectors. The graph comes from
  pynndescent's kernels seeded by a random-projection forest (:mod:`.nn_descent`; compiled once
  per machine, then loaded from numba's cache) when pynndescent is installed, else from faiss's
  NN-Descent (``builder``). With more than one thread faiss's graph can differ very slightly
  between runs (it joins neighbour lists concurrently); ``num_threads=1`` gives identical
  results every run. Below ``exact_below`` patches, faiss exact search instead.
- ``hnsw``: two-stage search with hnswlib. The unit vectors are projected to
  ``reduce_dim`` dimensions by PCA (:func:`reduce_dimensions`), an hnswlib graph over the
  projections proposes ``candidates`` neighbours per patch, and :func:`rerank_exact`
  re-scores them with the exact cosine of the full vectors. The distances returned are
  therefore exact; only a true neighbour missing from the candidates can be wrong. Below
  ``exact_below`` patches (tiny tables) it runs an exact blocked matrix product instead
  (:func:`_knn_exact`, numpy only). That is not worth it at 20k: measured 8-13 s there vs
  4-6 s for the two-stage path and 3-4 s for faiss (docs/benchmarks.md).
- ``faiss``: exact inner product (``IndexFlatIP``) on L2-normalised float32 vectors.
- ``torch``: exact, blocked float32 matrix products with torch on a CUDA GPU when there is
  one (``device="auto"``; TF32 off, so the products stay float32), else on the CPU; 155 000 x
  768 is ~37 TFLOP: seconds on a GPU, minutes on 2 CPU cores.
- ``sklearn``: exact brute-force cosine ``NearestNeighbors``.

The patch itself is never its own neighbour: each query asks for ``k + 1`` neighbours and
drops its own index (by id, not by ``distance == 0``, so exact duplicates still count as
neighbours of each other); when the index is not among them, the farthest one is dropped.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from .contract import BACKEND_PACKAGES, BACKENDS, DEFAULT_BACKEND
from .errors import BalancedSamplingError, require
from .i18n import _
from .progress import Progress, as_progress


#: ``hnsw`` parameters chosen with bench/bench_knn.py (docs/benchmarks.md), on both synthetic
#: D=768 sets at N=155k (target: recall@5 >= 0.99, score Spearman >= 0.995):
#: ``M``, ``ef_construction``, ``ef``, ``random_seed``: the hnswlib graph over the projections;
#: ``build_threads``: > 1 builds faster, but hnswlib's graph then depends on thread timing, so
#: results vary slightly from run to run; ``reduce_dim``: PCA dimensions the graph is built on
#: (0 or >= D: no projection); ``candidates``: neighbours per patch proposed by the graph and
#: re-scored exactly; ``exact_below``: below this many patches, exact search instead.
HNSW_DEFAULTS = {
    "M": 24,
    "ef_construction": 200,
    "ef": 96,
    "random_seed": 42,
    "build_threads": 1,
    "reduce_dim": 256,
    "candidates": 48,
    "exact_below": 5_000,
}

#: ``nndescent`` parameters chosen with bench/bench_knn.py at N=155k (docs/benchmarks.md):
#: ``builder``: who builds the graph: "pynndescent" (its kernels, seeded by a random-projection
#: forest), "faiss" (faiss's NN-Descent from a random graph), "auto" = pynndescent when installed and
#: the table has at least :data:`PYNNDESCENT_FROM` patches;
#: ``graph_k``: neighbours per patch in the graph (all re-scored exactly); ``iterations``: most
#: NN-Descent rounds (pynndescent stops once converged, ~5 here; faiss's recall stops rising
#: after ~10); ``trees``: random-projection trees of pynndescent's start graph; ``pool``,
#: ``sample``, ``reverse``: faiss only: candidate pool per patch while the graph converges
#: (``L``, >= graph_k), new neighbours joined per patch and round (``S``), reverse neighbours
#: kept per patch (``R``); ``reduce_dim``, ``exact_below``: as for hnsw; ``project_from``: fewest
#: patches the graph is built on the ``reduce_dim`` projection (smaller tables keep every dimension:
#: on the benchmarks' clustered family PCA 256 held recall@5 only 0.974-0.990 at 10 000-60 000
#: patches, all dimensions 0.993-0.996 in about the same time, docs/benchmarks.md); ``random_seed``: the
#: start graph's random choices; ``reproducible``: identical results every run (faiss's builder then
#: runs on one thread; pynndescent's is deterministic for a given thread count and keeps them).
NNDESCENT_DEFAULTS = {
    "builder": "auto",
    "reproducible": False,
    "graph_k": 32,
    "pool": 36,
    "sample": 10,
    "reverse": 50,
    "iterations": 10,
    "trees": 8,
    "reduce_dim": 256,
    "project_from": 100_000,
    "random_seed": 2021,
    "exact_below": 5_000,
}

#: Who may build the ``nndescent`` graph (``builder``).
NNDESCENT_BUILDERS = ("auto", "pynndescent", "faiss")

#: Fewest patches for which "auto" picks pynndescent: below, loading its kernels (~1 s) outweighs the gain
#: (20 000: 4.0 s vs faiss 3.0 s; 50 000: 5.6-6.3 s vs 7.0-8.3 s; a new process each, docs/benchmarks.md).
PYNNDESCENT_FROM = 50_000

#: Largest graph the ``nndescent`` path builds (larger ``k`` runs exact search), and the fewest
#: patches per graph neighbour it needs: both checked with faiss 1.15 (k = 63 at 600 patches
#: was fine; graph_k 301 at 1 000 patches aborted the process inside faiss).
NNDESCENT_MAX_GRAPH_K = 64
NNDESCENT_MIN_ROWS_PER_NEIGHBOUR = 16

#: NN-Descent seconds per (patch x iteration x pool slot) on one core of the benchmark machine,
#: only to move the progress bar while faiss builds the graph (one uninterruptible call).
NNDESCENT_SECONDS_PER_UNIT = 7e-7

#: The same for pynndescent's kernels, per (patch x graph neighbour) on one core (22 s of CPU for
#: 155k x 32, docs/benchmarks.md).
PYNNDESCENT_SECONDS_PER_UNIT = 4.5e-6

#: ``torch`` parameters: ``device`` ("auto": CUDA when available, else CPU; or "cpu", "cuda",
#: "cuda:1"); ``block_bytes``: memory of one block of similarities (queries x n float32).
TORCH_DEFAULTS = {"device": "auto", "block_bytes": 1 << 30}

#: Backend -> its tunable parameters and their defaults.
BACKEND_DEFAULTS = {"hnsw": HNSW_DEFAULTS, "nndescent": NNDESCENT_DEFAULTS, "torch": TORCH_DEFAULTS}

#: Rows used to estimate the PCA projection (a fixed random subsample of larger tables).
PCA_SAMPLE = 20_000

#: Rows re-ranked per call in :func:`rerank_exact` (bounds the gathered block).
RERANK_BLOCK = 8192

#: Queries per batch: one progress step (and cancel check) per batch.
QUERY_BATCH = 4096


def default_threads() -> int:
    """Number of CPU threads the kNN backends may use (all cores)."""
    return max(1, os.cpu_count() or 1)


def reproducible_params(backend: str) -> dict:
    """``knn_cosine`` parameters that make ``backend`` return identical neighbours every run.

    Only ``nndescent`` can depend on thread timing: faiss's builder joins neighbour lists concurrently and
    then runs on one thread (about 2x slower on 2 cores); pynndescent's graph is the same every run for a
    given thread count, so it keeps them all. The other backends are deterministic as they are, so they get
    ``{}`` and keep their speed.
    """
    return {"reproducible": True} if backend == "nndescent" else {}


def require_backend(backend: str):
    """The module behind a kNN backend; raises for an unknown backend or a missing package."""
    if backend not in BACKEND_PACKAGES:
        raise BalancedSamplingError(_("Unknown kNN backend '{backend}'; choose one of {choices}.").format(
            backend=backend, choices=", ".join(BACKENDS)))
    module, pip_name = BACKEND_PACKAGES[backend]
    return require(module, _("the '{backend}' kNN backend").format(backend=backend), pip_name=pip_name)


def row_norms(x: np.ndarray, ids=None) -> np.ndarray:
    """(n,) float32 L2 norms of the (n, d) float32 rows ``x``, without an (n, d) temporary.

    Raises :class:`BalancedSamplingError` for a row holding NaN or inf, naming its patch row (``ids[row]`` when
    ``ids`` is given). Rows whose float32 sum of squares overflows are finite: their norms come from float64.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    suspect = np.flatnonzero(~np.isfinite(norms))
    if len(suspect):
        bad = suspect[~np.isfinite(x[suspect]).all(axis=1)]
        if len(bad):
            row = bad[0] if ids is None else np.asarray(ids)[bad[0]]
            raise BalancedSamplingError(
                _("The embedding of patch row {row} holds NaN or infinite values; delete the embedding cache "
                  "(parquet) and re-run.").format(row=int(row))
            )
        norms[suspect] = np.linalg.norm(x[suspect].astype(np.float64), axis=1)
    return norms


def row_scales(embeddings) -> tuple[np.ndarray, np.ndarray]:
    """``embeddings`` as an (n, d) float32 C-contiguous array (the same array when it already is one) and the
    (n,) float32 factors that make its rows unit length (0 for all-zero rows, which stay zero).

    Raises :class:`BalancedSamplingError` when the array is not 2-D or holds NaN/inf, naming the first such row.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise BalancedSamplingError(_("Embeddings must be a 2-D array (patches x dimensions); got shape {shape}.")
                                    .format(shape=x.shape))
    norms = row_norms(x)
    scale = np.zeros_like(norms)
    np.divide(1.0, norms, out=scale, where=norms > 0)
    return x, scale


def normalize_rows(embeddings) -> np.ndarray:
    """L2-normalised float32 copy of ``embeddings`` (n, d); all-zero rows stay zero.

    Raises :class:`BalancedSamplingError` when the array is not 2-D or holds NaN/inf.
    """
    x, scale = row_scales(embeddings)
    return np.multiply(x, scale[:, None], out=np.empty_like(x))


def effective_k(n: int, k: int, progress: Progress | None = None) -> int:
    """``k`` clipped to ``n - 1`` (with a warning) so that every patch has ``k`` other patches.

    Raises :class:`BalancedSamplingError` for ``n < 2`` or ``k < 1``.
    """
    if k < 1:
        raise BalancedSamplingError(_("The number of neighbours must be at least 1; got {k}.").format(k=k))
    if n < 2:
        raise BalancedSamplingError(
            _("Uniqueness needs at least 2 patches to compare; the table holds {n}.").format(n=n)
        )
    if k >= n:
        as_progress(progress).warning(
            _("Only {n} patches: the number of neighbours is lowered from {k} to {lowered}.").format(
                n=n, k=k, lowered=n - 1)
        )
        return n - 1
    return k


def drop_self(indices: np.ndarray, distances: np.ndarray, query_ids: np.ndarray, k: int):
    """Remove each query's own id from its ``k + 1`` neighbours, keeping ``k``.

    Parameters
    ----------
    indices, distances : (b, k + 1) arrays, sorted by increasing distance.
    query_ids : (b,) int array, the id of each query row.

    Returns
    -------
    (b, k) indices and distances. When a row does not contain its own id (ties among
    duplicates, or an approximate miss), its last (farthest) neighbour is dropped.
    """
    is_self = indices == query_ids[:, None]
    # Keep only the first occurrence of self; a row without self loses its last column.
    first_self = np.where(is_self.any(axis=1), is_self.argmax(axis=1), indices.shape[1] - 1)
    keep = np.ones(indices.shape, dtype=bool)
    keep[np.arange(len(indices)), first_self] = False
    return indices[keep].reshape(-1, k), distances[keep].reshape(-1, k)


def _batches(n: int, batch: int):
    for start in range(0, n, batch):
        yield start, min(n, start + batch)


def pca_sample_rows(n: int, sample: int = PCA_SAMPLE, seed: int = 0) -> np.ndarray:
    """The sorted rows (of ``n``) the PCA is estimated from: a fixed random subsample of ``sample``, or all."""
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False)) if n > sample else np.arange(n)


def pca_of_rows(rows: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the (m, d) float64 unit ``rows``: see :func:`pca_axes_of`."""
    mean = rows.mean(axis=0)
    centred = rows - mean
    return pca_axes_of(centred.T @ centred, mean, dim)


def pca_axes_of(scatter: np.ndarray, mean: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(d, dim) float32 axes, the top eigenvectors of the (d, d) float64 ``scatter`` (the centred rows' Gram
    matrix), and the (dim,) float32 projected ``mean``, so a projection is ``unit_rows @ axes - offset``."""
    _, vectors = np.linalg.eigh(scatter)  # ascending eigenvalues
    axes = np.ascontiguousarray(vectors[:, ::-1][:, :dim], dtype=np.float32)
    return axes, (mean @ axes).astype(np.float32)


def project_rows(unit_rows: np.ndarray, axes: np.ndarray, offset: np.ndarray,
                 scale: np.ndarray | None = None) -> np.ndarray:
    """Unit-length PCA projections (float32) of unit rows; rows projecting to zero stay zero.

    With ``scale`` ((n,) float32, see :func:`row_scales`) the rows are raw and ``rows * scale`` the unit ones:
    the same projections without a unit-length copy of the (n, d) rows.
    """
    y = unit_rows @ axes
    if scale is not None:
        y *= scale[:, None]
    y -= offset
    # In place, one (n,) temporary: np.linalg.norm's (n, dim) one cost as much as the matrix product at 155k.
    squared = np.einsum("ij,ij->i", y, y)  # unit rows, so |y| <= 2: no float32 overflow
    inverse = np.zeros_like(squared)
    np.divide(1.0, np.sqrt(squared), out=inverse, where=squared > 0)
    y *= inverse[:, None]
    return y


def reduce_dimensions(x: np.ndarray, dim: int, sample: int = PCA_SAMPLE, seed: int = 0,
                      scale: np.ndarray | None = None) -> np.ndarray:
    """PCA projection of the unit rows ``x`` (n, d) onto ``dim`` axes, re-normalised to unit length.

    The axes are the top eigenvectors of the covariance of a fixed random subsample of
    ``sample`` rows (all rows when fewer), so the result is deterministic for a given input.
    Rows projecting to zero stay zero. Returns float32 (n, dim); ``x`` itself when
    ``dim`` is 0 or not smaller than d. With ``scale`` (see :func:`row_scales`) ``x`` holds the raw
    rows and ``x * scale`` the unit ones (then the unit rows themselves when there is no projection).
    """
    n, d = x.shape
    if dim <= 0 or dim >= d:
        return _unit(x, scale)
    rows = pca_sample_rows(n, sample, seed)
    sample_rows = x[rows].astype(np.float64)
    if scale is not None:
        sample_rows *= scale[rows, None]
    axes, offset = pca_of_rows(sample_rows, dim)
    return project_rows(x, axes, offset, scale)


def inner_products_by_index(x: np.ndarray, query_ids: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``out[i, j] = x[query_ids[i]] . x[candidates[i, j]]`` for (n, d) float32 rows ``x``.

    Uses faiss's threaded ``fvec_inner_products_by_idx`` when faiss is installed (measured
    ~13x faster than numpy's batched products at 155k x 32 candidates, docs/benchmarks.md),
    numpy otherwise. Returns (b, c) float32.
    """
    ids = np.ascontiguousarray(candidates, dtype=np.int64)
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None and x.dtype == np.float32 and x.flags.c_contiguous:
        queries = np.ascontiguousarray(x[query_ids])
        out = np.empty(ids.shape, dtype=np.float32)
        faiss.fvec_inner_products_by_idx(
            faiss.swig_ptr(out), faiss.swig_ptr(queries), faiss.swig_ptr(x), faiss.swig_ptr(ids),
            x.shape[1], len(ids), ids.shape[1],
        )
        return out
    # (b, c, d) @ (b, d, 1): one small matrix product per query.
    return np.matmul(x[ids], x[query_ids, :, None])[..., 0]


def rerank_exact(x: np.ndarray, candidates: np.ndarray, query_ids: np.ndarray, k: int,
                 scale: np.ndarray | None = None):
    """The ``k`` best of each query's candidate neighbours, by exact cosine on the unit rows ``x``.

    Parameters
    ----------
    x : (n, d) float32 unit rows (all patches); with ``scale`` ((n,) float32, :func:`row_scales`) raw rows,
        ``x * scale`` being the unit ones.
    candidates : (b, c) int array of candidate ids per query (duplicates and the query's own
        id allowed: both are skipped, so the patch is never its own neighbour).
    query_ids : (b,) int array, the row of ``x`` of each query.

    Returns
    -------
    (b, k) int64 indices and float32 cosine distances ``1 - cos``, nearest first (ties keep
    the lower id first). Needs at least ``k`` distinct non-self candidates per row.
    """
    lab = np.sort(np.asarray(candidates, dtype=np.int64), axis=1)
    skip = lab == query_ids[:, None]
    skip[:, 1:] |= lab[:, 1:] == lab[:, :-1]
    sims = np.empty(lab.shape, dtype=np.float32)
    for start, stop in _batches(len(lab), RERANK_BLOCK):
        sims[start:stop] = inner_products_by_index(x, query_ids[start:stop], lab[start:stop])
    if scale is not None:
        sims *= scale[query_ids][:, None]
        sims *= scale[lab]
    sims[skip] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    indices = np.take_along_axis(lab, order, axis=1)
    if np.isneginf(np.take_along_axis(sims, order, axis=1)).any():
        raise BalancedSamplingError(
            _("Too few distinct candidate neighbours to keep {k} per patch; lower the number of neighbours or raise "
              "the backend's candidate count ('candidates' for hnsw, 'graph_k' for nndescent).").format(k=k)
        )
    return indices, 1.0 - np.take_along_axis(sims, order, axis=1)


def _knn_exact(x, k, progress):
    """Exact kNN by blocked float32 matrix products (numpy only): for small tables."""
    n = len(x)
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    block = max(1, min(QUERY_BATCH, 50_000_000 // n))  # <= ~200 MB of similarities
    for start, stop in _batches(n, block):
        sims = x[start:stop] @ x.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never self, by id
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(-sims, axis=1)[:, :k]
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        out_idx[start:stop] = np.take_along_axis(part, order, axis=1)
        out_dist[start:stop] = 1.0 - np.take_along_axis(part_sims, order, axis=1)
        progress.update(stop, n)
    return out_idx, out_dist


def _knn_hnsw(x, k, progress, M, ef_construction, ef, random_seed, build_threads, num_threads,
              reduce_dim, candidates, exact_below):
    n = len(x)
    if n < exact_below:
        return _knn_exact(x, k, progress)
    hnswlib = require_backend("hnsw")
    y = reduce_dimensions(x, int(reduce_dim))
    n_cand = min(max(int(candidates), k), n - 1)
    index = hnswlib.Index(space="ip", dim=y.shape[1])
    index.init_index(max_elements=n, M=M, ef_construction=ef_construction, random_seed=random_seed)
    # Deterministic only with one build thread (insertion order); queries are independent
    # of each other, so they always use all threads.
    index.set_num_threads(build_threads)
    total = 2 * n  # build and query + re-rank steps weigh the same on the bar
    for start, stop in _batches(n, QUERY_BATCH):
        index.add_items(y[start:stop], np.arange(start, stop))
        progress.update(stop, total)
    index.set_ef(max(ef, n_cand + 1))
    index.set_num_threads(num_threads)
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    for start, stop in _batches(n, QUERY_BATCH):
        labels, _ = index.knn_query(y[start:stop], k=n_cand + 1)
        out_idx[start:stop], out_dist[start:stop] = rerank_exact(x, labels, np.arange(start, stop), k)
        progress.update(n + stop, total)
    return out_idx, out_dist


def _knn_nndescent(x, k, progress, num_threads, builder, reproducible, graph_k, pool, sample, reverse, iterations,
                   trees, reduce_dim, project_from, random_seed, exact_below, scale=None):
    """``x``: unit rows, or raw rows with their ``scale`` (:func:`row_scales`): no unit copy of (n, d) is made
    then, except for exact search."""
    n = len(x)
    if builder not in NNDESCENT_BUILDERS:
        nndescent_builder(builder)  # raises, naming the choices
    # The graph holds at least 2k neighbours, so the exact re-rank has candidates to choose
    # from (projected distances misorder near neighbours); the pool keeps its headroom.
    headroom = max(0, int(pool) - int(graph_k))
    graph_k = max(int(graph_k), 2 * k, k + 1)
    pool = graph_k + headroom
    if graph_k > NNDESCENT_MAX_GRAPH_K:
        # faiss aborts the whole process (an assertion) when NN-Descent leaves a neighbour list
        # shorter than graph_k, which happened with a few hundred neighbours: exact search then.
        progress.info(_("{k} neighbours per patch is more than the nndescent graph serves ({most}); using exact "
                        "faiss search.").format(k=k, most=NNDESCENT_MAX_GRAPH_K // 2))
        return _knn_faiss(_unit(x, scale), k, progress, num_threads)
    if n < max(exact_below, NNDESCENT_MIN_ROWS_PER_NEIGHBOUR * graph_k, 200):
        return _knn_faiss(_unit(x, scale), k, progress, num_threads)
    if n * graph_k >= 2**31:
        # Both builders index their graph with 32-bit ints.
        raise BalancedSamplingError(_("{n} patches x {graph_k} graph neighbours is too large for the 'nndescent' "
                                      "backend; use 'hnsw'.").format(n=n, graph_k=graph_k))
    build_share = 0.9  # of the bar; the exact re-rank takes the rest
    builder = nndescent_builder(builder, progress, n)
    # pynndescent's imports run while the PCA's matrix products release the GIL.
    imports = _nn_descent_module().preload() if builder == "pynndescent" else None
    projected = reduce_dimensions(x, graph_dims(n, reduce_dim, project_from), scale=scale)
    if imports is not None:
        imports.join()
        graph = _pynndescent_graph(projected, graph_k, iterations, trees, random_seed, num_threads,
                                   progress.child(0.0, build_share))
    else:
        graph = _nndescent_graph(projected, graph_k, pool, sample, reverse, iterations, random_seed,
                                 1 if reproducible else num_threads, progress.child(0.0, build_share))
    del projected
    rerank_progress = progress.child(build_share, 1.0)
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    for start, stop in _batches(n, QUERY_BATCH):
        out_idx[start:stop], out_dist[start:stop] = rerank_exact(x, graph[start:stop], np.arange(start, stop), k,
                                                                 scale)
        rerank_progress.update(stop, n)
    return out_idx, out_dist


def graph_dims(n: int, reduce_dim: int, project_from: int) -> int:
    """Dimensions the ``nndescent`` graph of ``n`` patches is built on: the PCA's ``reduce_dim`` from
    ``project_from`` patches, 0 (every dimension) below; see :data:`NNDESCENT_DEFAULTS`."""
    return int(reduce_dim) if n >= int(project_from) else 0


def preload_knn(backend: str, n: int) -> None:
    """Start importing the graph kernels in a background thread when ``backend`` will build its graph with
    pynndescent for ``n`` patches: called before the embeddings are read, the imports (~0.5 s) overlap that read
    rather than competing with the PCA for the cores. Does nothing otherwise."""
    if backend == "nndescent" and n >= PYNNDESCENT_FROM and _nn_descent_module().available():
        _nn_descent_module().preload()


def _nn_descent_module():
    from . import nn_descent

    return nn_descent


def _unit(x: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """The unit rows: ``x`` itself, or ``x * scale`` when ``x`` holds raw rows."""
    return x if scale is None else np.multiply(x, scale[:, None], out=np.empty_like(x))


def nndescent_builder(builder: str, progress: Progress | None = None, n: int = PYNNDESCENT_FROM) -> str:
    """The ``nndescent`` graph builder that will run for ``builder`` on ``n`` patches ("auto" -> "pynndescent"
    when installed and ``n >= PYNNDESCENT_FROM``, else "faiss").

    Raises for an unknown name, or for "pynndescent" when it is not installed (naming the pip package).
    """
    from . import nn_descent

    if builder not in NNDESCENT_BUILDERS:
        raise BalancedSamplingError(_("Unknown nndescent builder '{builder}'; choose one of {choices}.").format(
            builder=builder, choices=", ".join(NNDESCENT_BUILDERS)))
    if builder == "auto":
        if n < PYNNDESCENT_FROM:
            return "faiss"
        if nn_descent.available():
            return "pynndescent"
        as_progress(progress).info(_("pynndescent is not installed: the kNN graph is built by faiss's NN-Descent "
                                     "instead (same recall, about twice the time; pip install pynndescent)."))
        return "faiss"
    if builder == "pynndescent" and not nn_descent.available():
        # Raises, saying how to install it. Not imported when present: the kernels load without its package
        # __init__ (nn_descent.kernels), which would import scikit-learn and compile rp_trees for nothing.
        require("pynndescent", _("the 'pynndescent' builder of the nndescent kNN backend"), pip_name="pynndescent")
    return builder


def _pynndescent_graph(y, graph_k, iterations, trees, random_seed, num_threads, progress):
    """(n, graph_k) int32 ids of each row's nearest rows of ``y`` (unit rows) by pynndescent's kernels,
    in a polled worker thread (they release the GIL); says when this run compiled them."""
    from . import nn_descent

    estimate = PYNNDESCENT_SECONDS_PER_UNIT * len(y) * graph_k / max(1, min(num_threads, default_threads()))
    graph, compiled, seconds = _run_polled(
        lambda: nn_descent.build_graph(y, graph_k, iterations, trees, random_seed, num_threads), estimate, progress)
    if compiled:
        progress.info(_("Compiled the NN-Descent kernels for this machine ({seconds:.0f} s, once: numba keeps them in "
                        "its cache, and later runs load them in about a second).").format(seconds=seconds))
    return graph


def _nndescent_graph(y, graph_k, pool, sample, reverse, iterations, random_seed, num_threads, progress):
    """(n, graph_k) int32 ids of each row's nearest rows of ``y`` (unit rows, inner product), built
    by faiss's NN-Descent in a polled worker thread; the index is freed on return."""
    faiss = require_backend("nndescent")
    n = len(y)
    index = faiss.IndexNNDescentFlat(y.shape[1], graph_k, faiss.METRIC_INNER_PRODUCT)
    params = index.nndescent
    params.L, params.S, params.R = pool, int(sample), int(reverse)
    params.iter, params.random_seed = int(iterations), int(random_seed)
    estimate = NNDESCENT_SECONDS_PER_UNIT * n * params.iter * params.L / max(1, min(num_threads, default_threads()))

    def build():
        # OpenMP's thread count is per calling thread: set it in the worker that runs faiss.
        with _omp_threads(faiss, num_threads):
            index.add(y)

    _run_polled(build, estimate, progress)
    return faiss.vector_to_array(params.final_graph).reshape(n, graph_k)


def _run_polled(work, expected_seconds: float, progress: Progress, poll: float = 0.25):
    """Run ``work()`` (one long C++ call that releases the GIL) in a worker thread.

    Meanwhile the bar moves by elapsed time against ``expected_seconds`` (capped at 95 %) and
    cancel is honoured within ``poll`` seconds: the caller gets ``OperationCanceled`` at once
    and the abandoned call finishes in the background, its result discarded. faiss offers no
    cancel hook, so until it returns (up to ~20 s at 155k patches) it keeps its cores and
    memory, and a Python interpreter that exits meanwhile waits for it.
    """
    import concurrent.futures
    import time

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="knn-graph")
    future = executor.submit(work)
    started = time.monotonic()
    try:
        while True:
            try:
                result = future.result(timeout=poll)
                break
            except concurrent.futures.TimeoutError:
                elapsed = time.monotonic() - started
                progress.update(min(0.95, elapsed / max(expected_seconds, 1e-3)), 1.0)
        progress.update(1.0, 1.0)
        return result
    finally:
        executor.shutdown(wait=False)


def _knn_faiss(x, k, progress, num_threads):
    faiss = require_backend("faiss")
    n, d = x.shape
    with _omp_threads(faiss, num_threads):
        index = faiss.IndexFlatIP(d)
        index.add(x)
        out_idx = np.empty((n, k), dtype=np.int64)
        out_dist = np.empty((n, k), dtype=np.float32)
        for start, stop in _batches(n, QUERY_BATCH):
            sims, labels = index.search(x[start:stop], k + 1)
            out_idx[start:stop], out_dist[start:stop] = drop_self(
                labels.astype(np.int64), 1.0 - sims, np.arange(start, stop), k
            )
            progress.update(stop, n)
        return out_idx, out_dist


def torch_device(device: str = "auto") -> str:
    """The torch device of the ``torch`` backend: "auto" = "cuda" when torch sees a GPU, else "cpu"."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise BalancedSamplingError(_("The torch kNN backend was asked for device '{device}', but torch sees no CUDA "
                                      "GPU; use device 'auto' or 'cpu'.").format(device=device))
    return str(device)


def _knn_torch(x, k, progress, num_threads, device, block_bytes):
    """Exact kNN by blocked float32 matrix products with torch (GPU when there is one)."""
    torch = require_backend("torch")
    device = torch_device(device)
    n = len(x)
    block = int(max(1, min(QUERY_BATCH, block_bytes // (4 * n))))  # QUERY_BATCH: progress and cancel
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    threads = torch.get_num_threads()
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.set_num_threads(int(num_threads))
        torch.backends.cuda.matmul.allow_tf32 = False  # exact float32 products
        with torch.inference_mode():
            data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
            for start, stop in _batches(n, block):
                sims = data[start:stop] @ data.T
                rows = torch.arange(stop - start, device=sims.device)
                sims[rows, rows + start] = -float("inf")  # never self, by id
                top, labels = torch.topk(sims, k, dim=1)
                out_idx[start:stop] = labels.cpu().numpy()
                out_dist[start:stop] = 1.0 - top.cpu().numpy()
                progress.update(stop, n)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    return out_idx, out_dist


@contextlib.contextmanager
def _omp_threads(faiss, num_threads: int):
    """faiss's OpenMP thread count for this thread, restored afterwards (QGIS reuses task threads)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(num_threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _knn_sklearn(x, k, progress, num_threads):
    neighbors = require_backend("sklearn")
    n = len(x)
    model = neighbors.NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute", n_jobs=num_threads)
    model.fit(x)
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    for start, stop in _batches(n, QUERY_BATCH):
        dists, labels = model.kneighbors(x[start:stop])
        out_idx[start:stop], out_dist[start:stop] = drop_self(
            labels.astype(np.int64), dists.astype(np.float32), np.arange(start, stop), k
        )
        progress.update(stop, n)
    return out_idx, out_dist


def knn_cosine(embeddings, k: int, backend: str = DEFAULT_BACKEND, progress: Progress | None = None, **params):
    """The ``k`` nearest other rows of every row of ``embeddings`` by cosine distance.

    Parameters
    ----------
    embeddings : (n, d) array-like of float
        One embedding per patch; need not be normalised.
    k : int
        Neighbours per patch, excluding the patch itself (already clipped: ``k <= n - 1``).
    backend : {"nndescent", "hnsw", "faiss", "sklearn", "torch"}
    progress : Progress, optional
        Updated once per query batch; raises ``OperationCanceled`` when cancelled.
    **params
        ``num_threads`` (all backends, default: all cores); the tunables of ``nndescent``
        (:data:`NNDESCENT_DEFAULTS`; identical results every run only with
        ``num_threads=1``) and ``hnsw`` (:data:`HNSW_DEFAULTS`; deterministic while
        ``build_threads == 1``), and ``torch``'s ``device`` and ``block_bytes``
        (:data:`TORCH_DEFAULTS`).

    Returns
    -------
    indices : (n, k) int64, row numbers of the neighbours, nearest first.
    distances : (n, k) float32, cosine distances ``1 - cos`` in [0, 2], ascending.
    """
    progress = as_progress(progress)
    require_backend(backend)
    if backend == "nndescent":
        # Raw rows and their scales: the graph path never needs a unit-length copy of the (n, d) table
        # (476 MB at 155 000 x 768, ~1 s to fill).
        x, scale = row_scales(embeddings)
    else:
        x, scale = normalize_rows(embeddings), None
    if not 1 <= k < len(x):
        raise BalancedSamplingError(_("k must be between 1 and n - 1 = {most}; got {k}.").format(most=len(x) - 1, k=k))
    num_threads = int(params.pop("num_threads", default_threads()))
    defaults = BACKEND_DEFAULTS.get(backend, {})
    unknown = set(params) - set(defaults)
    if unknown:
        if defaults:
            message = _("Unknown parameter(s) {unknown} for the '{backend}' kNN backend; it accepts {accepted}.")
        else:
            message = _("Unknown parameter(s) {unknown} for the '{backend}' kNN backend; it takes none.")
        raise BalancedSamplingError(message.format(unknown=sorted(unknown), backend=backend,
                                                   accepted=", ".join(sorted(defaults))))
    tuned = {**defaults, **params}
    if backend == "nndescent":
        indices, distances = _knn_nndescent(x, k, progress, num_threads=num_threads, scale=scale, **tuned)
    elif backend == "hnsw":
        indices, distances = _knn_hnsw(x, k, progress, num_threads=num_threads, **tuned)
    elif backend == "faiss":
        indices, distances = _knn_faiss(x, k, progress, num_threads)
    elif backend == "torch":
        indices, distances = _knn_torch(x, k, progress, num_threads, **tuned)
    else:
        indices, distances = _knn_sklearn(x, k, progress, num_threads)
    # Float rounding can push 1 - cos of near-duplicates slightly below 0.
    return indices, np.clip(distances, 0.0, 2.0)


def uniqueness_scores(embeddings, k: int = 5, backend: str = DEFAULT_BACKEND, progress: Progress | None = None,
                      **params):
    """Uniqueness of every row: mean cosine distance to its ``k`` nearest other rows.

    ``k`` is clipped to ``n - 1`` with a warning; ``n < 2`` raises. Returns (n,) float64
    in [0, 2], higher = more unique. ``params`` go to :func:`knn_cosine`.

    With the ``nndescent`` backend, embeddings in a ``numpy.memmap`` (or a ``.npy`` path), or more than the
    in-memory search fits in half the available memory, go to
    :func:`~balanced_sampling_plugin.uniqueness_out_of_core.knn_cosine_out_of_core` (the same graph on float16
    projections, exact re-rank in blocks), said in the log.
    """
    if backend == "nndescent" and _out_of_core(embeddings, k, progress, params):
        from .uniqueness_out_of_core import knn_cosine_out_of_core, open_vectors

        params = dict(params)
        params.pop("project_from", None)  # a table this large is always projected out of core
        if params.pop("reproducible", False):
            params["num_threads"] = 1  # the out-of-core graph is faiss's

        vectors = open_vectors(embeddings)
        k = effective_k(len(vectors), int(k), progress)
        _, distances = knn_cosine_out_of_core(vectors, k, progress=progress, **params)
        return distances.astype(np.float64).mean(axis=1)
    embeddings = np.asarray(embeddings)
    k = effective_k(len(embeddings), int(k), progress)
    _, distances = knn_cosine(embeddings, k, backend=backend, progress=progress, **params)
    return distances.astype(np.float64).mean(axis=1)


def _out_of_core(embeddings, k, progress, params) -> bool:
    """Whether the ``nndescent`` search should run out of core (see :func:`uniqueness_scores`); says why."""
    from .uniqueness_out_of_core import available_memory_bytes, fits_in_memory, in_memory_knn_bytes

    if isinstance(embeddings, (str, os.PathLike, np.memmap)):
        as_progress(progress).info(_("The embeddings are read from storage: the kNN graph is built out of core "
                                     "(float16 projections, exact re-rank in blocks)."))
        return True
    shape = getattr(embeddings, "shape", None)
    if shape is None or len(shape) != 2:
        return False
    n, d = int(shape[0]), int(shape[1])
    available = available_memory_bytes()
    tuned = {**NNDESCENT_DEFAULTS, **params}
    reduce_dim = graph_dims(n, tuned["reduce_dim"], tuned["project_from"])
    if available is None or fits_in_memory(n, d, available, reduce_dim=reduce_dim, k=max(1, int(k))):
        return False
    as_progress(progress).info(
        _("The in-memory kNN of {n} embeddings would need about {need:.1f} GB, more than half of the {free:.1f} GB "
          "available: the graph is built out of core (float16 projections, exact re-rank in blocks).").format(
            n=n, need=in_memory_knn_bytes(n, d, max(1, int(k)), reduce_dim) / 1e9, free=available / 1e9))
    return True


def recall_at_k(approx_idx, exact_idx) -> float:
    """Mean fraction of each row's exact neighbours found by the approximate search.

    Both are (n, k) integer arrays of neighbour ids for the same n queries; order within a
    row does not matter. Returns a float in [0, 1].
    """
    approx_idx, exact_idx = np.asarray(approx_idx), np.asarray(exact_idx)
    if approx_idx.shape != exact_idx.shape:
        raise BalancedSamplingError(_("Neighbour arrays differ in shape: {approx} vs {exact}.").format(
            approx=approx_idx.shape, exact=exact_idx.shape))
    hits = sum(len(np.intersect1d(a, e)) for a, e in zip(approx_idx, exact_idx))
    return hits / exact_idx.size

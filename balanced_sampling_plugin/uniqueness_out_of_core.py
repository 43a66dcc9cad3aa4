"""Cosine kNN for more patches than fit in memory: a float16 NN-Descent graph + exact re-rank from storage.

The in-memory ``nndescent`` backend of :func:`~balanced_sampling_plugin.uniqueness.knn_cosine` holds the
embeddings twice as float32 (the input and its unit-length copy) plus float32 PCA projections: ~10 GB at
1 M patches x 768 dims, ~105 GB at 10 M (:func:`in_memory_knn_bytes`). :func:`knn_cosine_out_of_core` gives
the same kind of result
(every patch's ``k`` nearest other patches by exact cosine, ``1 - cos`` ascending) while holding in memory
only what the graph needs:

1. **PCA axes** from a fixed random sample of :data:`~balanced_sampling_plugin.uniqueness.PCA_SAMPLE` rows
   (the rows and seed :func:`~balanced_sampling_plugin.uniqueness.reduce_dimensions` picks, read in
   blocks; the covariance is accumulated, so only a d x d matrix is held).
2. **Projection**, in row blocks read from ``vectors`` (a ``numpy.memmap`` of the float32 embeddings, say):
   unit rows -> PCA -> unit rows -> float16, written straight into the faiss index's storage (n x
   ``reduce_dim`` x 2 bytes: 1 GB at 2 M patches, 5 GB at 10 M). The full float32 matrix is never in
   memory; non-finite rows are reported by row number.
3. **Graph**: faiss NN-Descent over that float16 storage (``IndexNNDescent`` on an ``IndexScalarQuantizer``
   ``QT_fp16``, inner product), the in-memory backend's parameters with more rounds and samples
   (:data:`OUT_OF_CORE_DEFAULTS`), run in a polled worker thread so a cancel is honoured within a quarter
   of a second (faiss itself finishes in the background).
4. **Exact re-rank**, queries in patch order, ``block_rows`` at a time: each patch's ``graph_k`` graph
   neighbours are re-scored with the exact cosine of the full float32 vectors (the row norms were kept
   from step 2, n x 4 bytes), the selection rules of :func:`~balanced_sampling_plugin.uniqueness.rerank_exact`.
   For a float32 memmap, faiss reads the candidates (sorted by id) straight from the mapping; for any
   other row source (``gather=True``) each block's candidate rows are read once, as one gather of unique
   row ids in increasing order.

Memory: the float16 storage + faiss's NN-Descent working set (about :data:`NNDESCENT_NODE_BYTES` a patch
while it builds) + the (n, graph_k) int32 graph + the (n, k) results + the row norms (n x 4 bytes) +, with
``gather``, one re-rank gather of at most ``block_rows x (graph_k + 1)`` float32 rows (~200 MB at the
defaults): 3.2 GiB at 2 M patches (docs/scale-out.md). The memory-mapped input is only read; its pages are
the operating system's page cache, evicted as needed (they show up in the process's RSS as file-backed
pages while mapped).

Small tables (fewer than NN-Descent needs) and ``k`` beyond what the graph serves fall back to an exact
blocked search that also reads ``vectors`` in blocks.

numpy and faiss only; faiss is imported when a search runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .errors import BalancedSamplingError
from .i18n import _
from .progress import Progress, as_progress
from .uniqueness import (
    NNDESCENT_DEFAULTS,
    NNDESCENT_MAX_GRAPH_K,
    NNDESCENT_MIN_ROWS_PER_NEIGHBOUR,
    NNDESCENT_SECONDS_PER_UNIT,
    PCA_SAMPLE,
    _omp_threads,
    _run_polled,
    default_threads,
    pca_axes_of,
    pca_sample_rows,
    project_rows,
    require_backend,
    row_norms,
)

#: Rows per projection block and queries per re-rank block (one progress step and cancel check each).
BLOCK_ROWS = 2048

#: Bytes a patch of faiss's NN-Descent working set while it builds (its candidate pools and sample
#: lists), beyond the storage and the final graph: measured 600-1 070 with faiss 1.15 at the default
#: parameters (peak anonymous memory less storage and graph, 200 k and 2 M patches, docs/scale-out.md);
#: only to estimate the in-memory path's peak in :func:`in_memory_knn_bytes`.
NNDESCENT_NODE_BYTES = 1000

#: Fixed working memory of pynndescent's NN-Descent (the in-memory graph builder): its update buffers are sized
#: by blocks of 16 384 patches and its candidate count, not by n (0.97 GB peak RSS while it built the graph of
#: 155 000 x 256 projections, of which the projections 0.16 GB and the interpreter ~0.25 GB). Counted whichever
#: builder runs: an estimate that errs on the safe side.
PYNNDESCENT_WORKSPACE_BYTES = 600_000_000

#: Share of the available memory the in-memory kNN may plan to use (:func:`fits_in_memory`): the rest
#: is left to the table, QGIS and the operating system's page cache.
MEMORY_SHARE = 0.5

#: Share of the progress bar of each step, from their times at 200 k and 2 M patches (docs/scale-out.md):
#: the graph takes ~95 % of the time.
STEP_SHARES = {"pca": (0.0, 0.01), "projection": (0.01, 0.04), "graph": (0.04, 0.96), "rerank": (0.96, 1.0)}

#: Parameters :func:`knn_cosine_out_of_core` takes besides its named ones.
GRAPH_PARAMS = ("graph_k", "pool", "sample", "reverse", "iterations", "random_seed", "exact_below")

#: Their defaults: the in-memory backend's (:data:`NNDESCENT_DEFAULTS`, chosen at 155 k) with more
#: NN-Descent rounds and samples, because at a fixed pool and round count recall@5 falls with n
#: (scene-like data: 0.992 at 200 k, 0.973 at 500 k, 0.944 at 2 M). Measured (docs/scale-out.md): at 2 M
#: recall@5 0.944 -> 0.979 and score Spearman 0.998 -> 0.9999; at 500 k +23 % time (later rounds
#: change few neighbours, so they cost little).
OUT_OF_CORE_DEFAULTS = {**{key: NNDESCENT_DEFAULTS[key] for key in GRAPH_PARAMS}, "iterations": 20, "sample": 16}


# ----------------------------------------------------------------------------------------------------
# When to go out of core
# ----------------------------------------------------------------------------------------------------

def available_memory_bytes() -> int | None:
    """Memory this process can still take: the smaller of the system's available memory and what its
    cgroup (container, systemd slice) still allows. ``None`` when neither can be read.

    Linux: ``MemAvailable`` of /proc/meminfo and cgroup v2 ``memory.max - memory.current`` (v1:
    ``memory.limit_in_bytes - memory.usage_in_bytes``); Windows: ``GlobalMemoryStatusEx``; elsewhere
    (macOS) the physical memory from ``sysconf``.
    """
    candidates = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # v1 writes a huge number for "no limit"
                continue
            candidates.append(max(0, int(limit) - int(Path(usage_file).read_text().strip())))
            break
        except (OSError, ValueError):
            continue
    if not candidates and os.name == "nt":
        candidates.append(_windows_available_bytes())
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            pass
    candidates = [c for c in candidates if c is not None]
    return min(candidates) if candidates else None


def _windows_available_bytes() -> int | None:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    try:
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.ullAvailPhys)
    except (AttributeError, OSError):
        pass
    return None


def in_memory_knn_bytes(n: int, d: int, k: int = 5, reduce_dim: int = NNDESCENT_DEFAULTS["reduce_dim"],
                        graph_k: int = NNDESCENT_DEFAULTS["graph_k"]) -> int:
    """Estimated peak bytes of ``knn_cosine(embeddings, k, backend="nndescent")`` on (n, d) float32.

    The input array and its unit-length copy (2 x n x d x 4), the float32 PCA projection, its temporary
    and faiss's copy of it (3 x n x reduce_dim x 4), NN-Descent's working set (:data:`NNDESCENT_NODE_BYTES`
    a patch, plus pynndescent's fixed buffers, :data:`PYNNDESCENT_WORKSPACE_BYTES`), the graph in the builder
    and as numpy (2 x n x graph_k x 4) and the results (n x k x 12).
    """
    r = d if reduce_dim <= 0 or reduce_dim >= d else reduce_dim
    per_patch = 2 * d * 4 + 3 * r * 4 + NNDESCENT_NODE_BYTES + 2 * graph_k * 4 + k * 12
    return int(n) * per_patch + PYNNDESCENT_WORKSPACE_BYTES


def fits_in_memory(n: int, d: int, available_bytes: int | None = None, share: float = MEMORY_SHARE,
                   **estimate) -> bool:
    """Whether the in-memory kNN of ``n`` embeddings of ``d`` dims needs at most ``share`` of the memory.

    ``available_bytes`` defaults to :func:`available_memory_bytes` (system and cgroup); when that cannot
    be read, the answer is ``True`` (in memory, as before). ``estimate`` goes to
    :func:`in_memory_knn_bytes` (``k``, ``reduce_dim``, ``graph_k``). Meant to be called by whoever
    holds the embeddings before loading them all, e.g.::

        if fits_in_memory(n_patches, 768):
            indices, distances = knn_cosine(embeddings, k)
        else:  # the embeddings written to a .npy file (or a np.memmap) first
            indices, distances = knn_cosine_out_of_core("embeddings.npy", k, progress=progress)
    """
    if available_bytes is None:
        available_bytes = available_memory_bytes()
        if available_bytes is None:
            return True
    return in_memory_knn_bytes(n, d, **estimate) <= share * available_bytes


# ----------------------------------------------------------------------------------------------------
# The search
# ----------------------------------------------------------------------------------------------------

def open_vectors(vectors):
    """The (n, d) row source of :func:`knn_cosine_out_of_core`: a ``.npy`` path opened memory-mapped
    (read-only), an array (``numpy.memmap`` included) as it is, or anything with ``shape``, ``dtype``
    and numpy-style row indexing (``v[a:b]``, ``v[sorted_ids]``). Never reads the rows."""
    if isinstance(vectors, (str, os.PathLike)):
        path = Path(vectors)
        if not path.is_file():
            raise BalancedSamplingError(_("The embeddings file '{path}' does not exist.").format(path=path))
        try:
            vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BalancedSamplingError(_("Could not open '{path}' as a .npy array of embeddings ({error}).")
                                        .format(path=path, error=exc)) from exc
    elif not (hasattr(vectors, "shape") and hasattr(vectors, "dtype") and hasattr(vectors, "__getitem__")):
        vectors = np.asarray(vectors)
    shape = tuple(vectors.shape)
    if len(shape) != 2 or shape[1] == 0:
        raise BalancedSamplingError(_("Embeddings must be a 2-D array (patches x dimensions); got shape {shape}.")
                                    .format(shape=shape))
    if not (np.issubdtype(vectors.dtype, np.floating) or np.issubdtype(vectors.dtype, np.integer)):
        raise BalancedSamplingError(_("Embeddings must be numbers (float32); got dtype {dtype}.")
                                    .format(dtype=vectors.dtype))
    return vectors


def _unit_rows(x: np.ndarray, ids) -> tuple[np.ndarray, np.ndarray]:
    """(unit rows, norms) of the float32 rows ``x`` (patch rows ``ids``), normalised in place; all-zero rows
    stay zero (as ``normalize_rows`` leaves them)."""
    norms = row_norms(x, ids)
    np.divide(x, norms[:, None], out=x, where=norms[:, None] > 0)
    return x, norms


def _read(vectors, rows) -> np.ndarray:
    """Rows ``rows`` (a slice, or sorted unique ids) of ``vectors`` as a float32 array of their own."""
    block = vectors[rows]
    if isinstance(block, np.ndarray) and isinstance(rows, slice):
        return np.array(block, dtype=np.float32)  # a slice is a view: copy, so the caller's rows are never written
    return np.asarray(block, dtype=np.float32)  # an index array already made a copy


def pca_axes(vectors, dim: int, block_rows: int = BLOCK_ROWS, sample: int = PCA_SAMPLE, seed: int = 0,
             progress: Progress | None = None):
    """PCA of the unit rows of ``vectors`` as :func:`~balanced_sampling_plugin.uniqueness.reduce_dimensions`
    computes it (the same fixed random sample of ``sample`` rows, its mean and the top ``dim`` eigenvectors
    of its covariance), with the sample read ``block_rows`` at a time and the covariance accumulated (the
    sample is the whole table below ``sample`` rows: never held at once).

    Returns ``(axes, offset)``: (d, dim) float32 axes and the (dim,) float32 projected mean, so a
    projection is ``unit_rows @ axes - offset``.
    """
    progress = as_progress(progress)
    d = vectors.shape[1]
    rows = pca_sample_rows(vectors.shape[0], sample, seed)
    total = np.zeros(d)
    gram = np.zeros((d, d))
    for start in range(0, len(rows), block_rows):
        ids = rows[start:start + block_rows]
        x = _unit_rows(_read(vectors, ids), ids)[0].astype(np.float64)
        total += x.sum(axis=0)
        gram += x.T @ x
        progress.update(start + len(ids), len(rows))
    mean = total / len(rows)
    return pca_axes_of(gram - len(rows) * np.outer(mean, mean), mean, dim)  # = centred.T @ centred


def knn_cosine_out_of_core(vectors, k: int, progress: Progress | None = None, *, reduce_dim: int = 256,
                           block_rows: int = BLOCK_ROWS, num_threads: int | None = None,
                           gather: bool | None = None, timings: dict | None = None, **params):
    """The ``k`` nearest other rows of every row of ``vectors`` by cosine, without loading ``vectors``.

    Parameters
    ----------
    vectors : (n, d) float32 ``numpy.memmap`` or array, or the path of a ``.npy`` file (opened
        memory-mapped, read-only); need not be normalised. Only read, in blocks (see the module doc).
    k : int
        Neighbours per patch, excluding the patch itself; ``1 <= k <= n - 1``.
    progress : Progress, optional
        Updated once per block; raises ``OperationCanceled`` when cancelled (within ~0.25 s while faiss
        builds the graph; the abandoned build then finishes in the background, keeping its cores and
        memory until it returns: minutes at millions of patches).
    reduce_dim : int
        PCA dimensions of the float16 graph storage (0 or >= d: the unit rows themselves, in float16).
    block_rows : int
        Rows per projection block and queries per re-rank block; a re-rank gather holds at most
        ``block_rows x (graph_k + 1)`` float32 rows.
    num_threads : int, optional
        faiss threads (default: all cores). With more than one the graph can differ very slightly
        between runs, as for the in-memory ``nndescent`` backend; 1 gives identical results every run.
    gather : bool, optional
        How the re-rank reads the full vectors. False: faiss reads each query's candidates (sorted by id)
        straight from ``vectors`` (no copy; needs a C-contiguous float32 array such as a ``.npy`` memmap,
        and is the fastest while the file is in the page cache); True: each block's candidate rows are
        read once, in increasing row order, into memory (any row source: other dtypes, h5py/zarr
        datasets). Default: False when ``vectors`` allows it.
    timings : dict, optional
        Filled with the wall seconds of each step (``pca``, ``projection``, ``graph``, ``rerank``, or
        ``exact`` for the small-table path), for benchmarks.
    **params
        NN-Descent tunables, as for the in-memory backend: ``graph_k``, ``pool``, ``sample``, ``reverse``,
        ``iterations``, ``random_seed``, ``exact_below``; defaults :data:`OUT_OF_CORE_DEFAULTS`.

    Returns
    -------
    indices : (n, k) int64, row numbers of the neighbours, nearest first (never the row itself).
    distances : (n, k) float32, exact cosine distances ``1 - cos`` in [0, 2], ascending.
    """
    progress = as_progress(progress)
    timings = {} if timings is None else timings
    vectors = open_vectors(vectors)
    n, d = (int(s) for s in vectors.shape)
    k = int(k)
    if not 1 <= k < n:
        raise BalancedSamplingError(_("k must be between 1 and n - 1 = {most}; got {k}.").format(most=n - 1, k=k))
    unknown = set(params) - set(GRAPH_PARAMS)
    if unknown:
        raise BalancedSamplingError(_("Unknown parameter(s) {unknown} for the out-of-core kNN; it accepts {accepted}.")
                                    .format(unknown=sorted(unknown),
                                            accepted=", ".join(("reduce_dim", "block_rows", "num_threads")
                                                               + GRAPH_PARAMS)))
    block_rows = int(block_rows)
    if block_rows < 1:
        raise BalancedSamplingError(_("block_rows must be at least 1; got {rows}.").format(rows=block_rows))
    num_threads = default_threads() if num_threads is None else int(num_threads)
    tuned = {**OUT_OF_CORE_DEFAULTS, **params}
    headroom = max(0, int(tuned["pool"]) - int(tuned["graph_k"]))
    graph_k = max(int(tuned["graph_k"]), 2 * k, k + 1)
    pool = graph_k + headroom
    faiss = require_backend("nndescent")

    if graph_k > NNDESCENT_MAX_GRAPH_K or n < max(int(tuned["exact_below"]), NNDESCENT_MIN_ROWS_PER_NEIGHBOUR * graph_k,
                                                   200):
        if graph_k > NNDESCENT_MAX_GRAPH_K:
            progress.info(_("{k} neighbours per patch is more than the nndescent graph serves ({most}); using exact "
                            "search.").format(k=k, most=NNDESCENT_MAX_GRAPH_K // 2))
        started = time.perf_counter()
        result = _knn_exact_blocked(vectors, k, block_rows, progress)
        timings["exact"] = time.perf_counter() - started
        return result
    if n * graph_k >= 2**31:
        raise BalancedSamplingError(_("{n} patches x {graph_k} graph neighbours is too large for the 'nndescent' "
                                      "graph (faiss indexes it with 32-bit integers); lower graph_k.")
                                    .format(n=n, graph_k=graph_k))
    dim = d if reduce_dim <= 0 or reduce_dim >= d else int(reduce_dim)
    pca_p, proj_p, graph_p, rerank_p = (progress.child(*STEP_SHARES[step])
                                        for step in ("pca", "projection", "graph", "rerank"))

    started = time.perf_counter()
    if dim < d:
        axes, offset = pca_axes(vectors, dim, block_rows=block_rows, progress=pca_p)
    timings["pca"] = time.perf_counter() - started

    started = time.perf_counter()
    storage = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexNNDescent(storage, graph_k)
    storage.codes.resize(n * storage.code_size)
    # The faiss storage's codes are IEEE float16 components: a numpy view writes them in place.
    projected = faiss.rev_swig_ptr(storage.codes.data(), n * storage.code_size).view(np.float16).reshape(n, dim)
    inverse_norms = np.empty(n, dtype=np.float32)  # for the exact cosine of the re-rank
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        unit, norms = _unit_rows(_read(vectors, slice(start, stop)), np.arange(start, stop))
        np.divide(1.0, norms, out=inverse_norms[start:stop], where=norms > 0)
        inverse_norms[start:stop][norms == 0] = 0.0  # all-zero rows: cosine 0 with everything, as in memory
        projected[start:stop] = project_rows(unit, axes, offset) if dim < d else unit
        proj_p.update(stop, n)
    storage.ntotal = n
    del projected
    timings["projection"] = time.perf_counter() - started

    started = time.perf_counter()
    nnd = index.nndescent
    nnd.L, nnd.S, nnd.R = pool, int(tuned["sample"]), int(tuned["reverse"])
    nnd.iter, nnd.random_seed = int(tuned["iterations"]), int(tuned["random_seed"])
    estimate = NNDESCENT_SECONDS_PER_UNIT * n * nnd.iter * nnd.L / max(1, min(num_threads, default_threads()))
    no_rows = np.empty((0, dim), dtype=np.float32)

    def build(index=index, storage=storage):
        # The rows are already in the storage: adding none builds the graph over them. ``storage`` is
        # bound here so that a cancelled build, which finishes in the background, still has it.
        with _omp_threads(faiss, num_threads):
            index.add(no_rows)

    _run_polled(build, estimate, graph_p)
    graph = faiss.vector_to_array(nnd.final_graph).reshape(n, graph_k)
    del index, storage, nnd
    timings["graph"] = time.perf_counter() - started

    started = time.perf_counter()
    if gather is None:
        gather = not (isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 and vectors.flags.c_contiguous)
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    with _omp_threads(faiss, num_threads):
        for start in range(0, n, block_rows):
            stop = min(n, start + block_rows)
            out_idx[start:stop], out_dist[start:stop] = _rerank_block(
                faiss, vectors, inverse_norms, graph[start:stop], start, stop, k, gather)
            rerank_p.update(stop, n)
    timings["rerank"] = time.perf_counter() - started
    # Float rounding can push 1 - cos of near-duplicates slightly below 0.
    return out_idx, np.clip(out_dist, 0.0, 2.0)


def _rerank_block(faiss, vectors, inverse_norms, candidates, start: int, stop: int, k: int, gather: bool):
    """The ``k`` best graph candidates of queries ``start:stop`` by exact cosine (the selection of
    :func:`~balanced_sampling_plugin.uniqueness.rerank_exact`: the query itself and repeated candidates
    skipped, ties to the lower id). ``gather``: read the block's rows once, in increasing id order, into
    memory; else faiss reads each query's candidates (sorted by id) straight from the float32 ``vectors``."""
    queries = np.arange(start, stop)
    lab = np.sort(candidates.astype(np.int64), axis=1)
    skip = lab == queries[:, None]
    skip[:, 1:] |= lab[:, 1:] == lab[:, :-1]
    if gather:
        rows = np.union1d(lab, queries)  # sorted and unique: one local read
        source = np.ascontiguousarray(_read(vectors, rows))
        ids = np.searchsorted(rows, lab)
        query_rows = np.ascontiguousarray(source[np.searchsorted(rows, queries)])
    else:
        source, ids = vectors, lab
        query_rows = np.ascontiguousarray(vectors[start:stop])
    sims = np.empty(lab.shape, dtype=np.float32)
    faiss.fvec_inner_products_by_idx(faiss.swig_ptr(sims), faiss.swig_ptr(query_rows), faiss.swig_ptr(source),
                                     faiss.swig_ptr(ids), source.shape[1], len(lab), lab.shape[1])
    sims *= inverse_norms[start:stop, None]
    sims *= inverse_norms[lab]
    sims[skip] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(sims, order, axis=1)
    if np.isneginf(best).any():
        raise BalancedSamplingError(
            _("Too few distinct candidate neighbours to keep {k} per patch; lower the number of neighbours or raise "
              "'graph_k'.").format(k=k))
    return np.take_along_axis(lab, order, axis=1), 1.0 - best


def _knn_exact_blocked(vectors, k: int, block_rows: int, progress: Progress):
    """Exact kNN reading ``vectors`` in blocks (every query block against every data block): small tables."""
    n = vectors.shape[0]
    out_idx = np.empty((n, k), dtype=np.int64)
    out_dist = np.empty((n, k), dtype=np.float32)
    for q_start in range(0, n, block_rows):
        q_stop = min(n, q_start + block_rows)
        queries = _unit_rows(_read(vectors, slice(q_start, q_stop)), np.arange(q_start, q_stop))[0]
        rows_q = np.arange(q_start, q_stop)
        best_sims = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        best_ids = np.empty((len(queries), 0), dtype=np.int64)
        for d_start in range(0, n, block_rows):
            d_stop = min(n, d_start + block_rows)
            sims = queries @ _unit_rows(_read(vectors, slice(d_start, d_stop)), np.arange(d_start, d_stop))[0].T
            ids = np.broadcast_to(np.arange(d_start, d_stop), sims.shape)
            sims[ids == rows_q[:, None]] = -np.inf  # never self, by id
            all_sims = np.concatenate([best_sims, sims], axis=1)
            all_ids = np.concatenate([best_ids, ids], axis=1)
            # Best first, ties by the lower id (as the other backends order them).
            order = np.lexsort((all_ids, -all_sims), axis=1)[:, :k]
            best_sims = np.take_along_axis(all_sims, order, axis=1)
            best_ids = np.take_along_axis(all_ids, order, axis=1)
        out_idx[q_start:q_stop] = best_ids
        out_dist[q_start:q_stop] = 1.0 - best_sims
        progress.update(q_stop, n)
    return out_idx, np.clip(out_dist, 0.0, 2.0)

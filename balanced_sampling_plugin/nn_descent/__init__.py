"""The NN-Descent graph of the ``nndescent`` kNN backend, built with pynndescent's compiled kernels.

pynndescent seeds NN-Descent with a random-projection forest (faiss's starts from a random graph, which costs
about four of its ten rounds) and its batched kernels converge in five rounds here; :mod:`.cached_kernels` keeps
the compiled code in numba's on-disk cache, so only the first run on a machine compiles (about a minute on
2 cores); every later process, ``qgis_process`` included, loads it in about a second. ``make setup`` and the
plugin's package installer compile them ahead (:func:`warm_up`, ``python -m balanced_sampling_plugin.nn_descent``),
so no kNN run pays that minute. Nothing here is imported until a graph is built: numba and pynndescent stay out of
the plugin's start-up.
"""

from __future__ import annotations

import importlib.util
import threading
import time

import numpy as np

#: Rows per random-projection leaf: about five times the graph's neighbours, within pynndescent's bounds.
LEAF_SIZE_PER_NEIGHBOUR = 5
MIN_LEAF_SIZE, MAX_LEAF_SIZE = 60, 256

#: NN-Descent stops once a round changes fewer than this share of the graph's edges (pynndescent's default).
DELTA = 0.001

#: One graph at a time in this process: numba's thread pool is shared between the threads that call it.
_LOCK = threading.Lock()


def available() -> bool:
    """Whether pynndescent (and with it numba) is installed."""
    return importlib.util.find_spec("pynndescent") is not None and importlib.util.find_spec("numba") is not None


def preload() -> threading.Thread:
    """Import numba, pynndescent and the kernels in a background thread, and return it (join it before
    :func:`build_graph`). The imports (~1.3 s, mostly holding the GIL) then overlap the PCA before the graph,
    whose matrix products release the GIL. An import error surfaces again, in full, in :func:`build_graph`."""

    def load():
        try:
            from pynndescent import hybrid_forest  # noqa: F401

            from . import cached_kernels  # noqa: F401
        except Exception:  # noqa: BLE001 - reported where the kernels are used
            pass

    thread = threading.Thread(target=load, name="knn-graph-imports", daemon=True)
    thread.start()
    return thread


def leaf_size(graph_k: int) -> int:
    """Rows per random-projection leaf for a graph of ``graph_k`` neighbours."""
    return int(min(MAX_LEAF_SIZE, max(MIN_LEAF_SIZE, LEAF_SIZE_PER_NEIGHBOUR * graph_k)))


def build_graph(unit_rows: np.ndarray, graph_k: int, iterations: int, trees: int, random_seed: int,
                num_threads: int) -> tuple[np.ndarray, bool, float]:
    """The ``graph_k`` nearest rows of every row of ``unit_rows`` by inner product.

    Parameters
    ----------
    unit_rows : (n, d) float32, C-contiguous, rows of unit length (zero rows allowed).
    graph_k : neighbours per row; ``iterations``: most NN-Descent rounds (it stops earlier once converged);
        ``trees``: random-projection trees of the start graph; ``random_seed``: the forest's and the rounds'
        random choices; ``num_threads``: CPU threads (capped at numba's).

    Returns
    -------
    graph : (n, graph_k) int32 row ids, nearest first (the row itself may be among them).
    compiled : whether this call compiled the kernels (numba's cache was empty or stale).
    seconds : wall time of the call.
    """
    import numba
    from pynndescent.hybrid_forest import make_hybrid_leaf_array

    from .cached_kernels import nn_descent

    started = time.perf_counter()
    threads = max(1, min(int(num_threads), numba.config.NUMBA_NUM_THREADS))
    rows = np.ascontiguousarray(unit_rows, dtype=np.float32)
    rng_state = np.random.default_rng(random_seed).integers(1, 2**31, size=3).astype(np.int64)
    misses_before = sum(nn_descent.stats.cache_misses.values())
    with _LOCK:
        # numba's thread count is per calling thread: set here, in the thread that runs the kernels.
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            leaves = make_hybrid_leaf_array(rows, int(trees), leaf_size(graph_k), int(random_seed), angular=True)
            graph, _ = nn_descent(rows, leaves, int(graph_k), int(graph_k), int(iterations), DELTA, rng_state,
                                  threads)
        finally:
            numba.set_num_threads(previous)
    compiled = sum(nn_descent.stats.cache_misses.values()) > misses_before
    return graph, compiled, time.perf_counter() - started


def warm_up() -> tuple[bool, float]:
    """Compile the kernels into numba's on-disk cache, or load them from it: a graph of 2 000 random rows, with the
    argument types of every real call. Returns (whether this call compiled, seconds)."""
    import numba
    from pynndescent.hybrid_forest import make_hybrid_leaf_array

    rows = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    started = time.perf_counter()
    _, compiled, _ = build_graph(rows, 10, 2, 2, 0, numba.config.NUMBA_NUM_THREADS)
    # Small tables are split depth-first only; large ones first breadth-first, by functions compiled on first use.
    make_hybrid_leaf_array(rows, 2, leaf_size(10), 0, angular=True, local_bytes=0)
    return compiled, time.perf_counter() - started

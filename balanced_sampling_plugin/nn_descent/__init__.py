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

import contextlib
import importlib.util
import sys
import threading
import time
import types

import numpy as np

#: Rows per random-projection leaf: about five times the graph's neighbours, within pynndescent's bounds.
LEAF_SIZE_PER_NEIGHBOUR = 5
MIN_LEAF_SIZE, MAX_LEAF_SIZE = 60, 256

#: NN-Descent stops once a round changes fewer than this share of the graph's edges (pynndescent's default).
DELTA = 0.001

#: One graph at a time in this process: numba's thread pool is shared between the threads that call it.
_LOCK = threading.Lock()
#: The kernels, once imported (:func:`kernels`), and the lock of that import.
_KERNELS = None
_IMPORT_LOCK = threading.Lock()


def available() -> bool:
    """Whether pynndescent (and with it numba) is installed."""
    return importlib.util.find_spec("pynndescent") is not None and importlib.util.find_spec("numba") is not None


def kernels():
    """The compiled graph code: a namespace with ``nn_descent`` (:mod:`.cached_kernels`) and pynndescent's
    ``make_hybrid_leaf_array``, imported once per process.

    pynndescent's package ``__init__`` imports its NNDescent class and with it scikit-learn and a dozen modules
    the kernels never use (1.4-1.6 s against 0.5-0.6 s for what they need, measured in a fresh process). Unless
    pynndescent is imported already, its submodules are loaded under a bare stand-in for the package, and
    ``sys.modules`` is then left as it was: a later ``import pynndescent`` (umap, a user's console) runs the
    real ``__init__`` and gets a complete package of its own.
    """
    global _KERNELS
    with _IMPORT_LOCK:
        if _KERNELS is None:
            _KERNELS = _import_kernels()
        return _KERNELS


def _import_kernels():
    if "pynndescent" in sys.modules:
        from pynndescent.hybrid_forest import make_hybrid_leaf_array

        from .cached_kernels import nn_descent
        return _loaded(nn_descent, make_hybrid_leaf_array)
    import numba

    # What the real __init__ does before any parallel code runs: its workaround for numba issue 3341.
    if numba.config.THREADING_LAYER == "omp":
        try:
            from numba.np.ufunc import tbbpool  # noqa: F401

            numba.config.THREADING_LAYER = "tbb"
        except ImportError:
            numba.config.THREADING_LAYER = "workqueue"
    spec = importlib.util.find_spec("pynndescent")
    package = types.ModuleType("pynndescent")
    package.__path__, package.__spec__, package.__file__ = list(spec.submodule_search_locations), spec, spec.origin
    sys.modules["pynndescent"] = package
    try:
        from pynndescent.hybrid_forest import make_hybrid_leaf_array

        from .cached_kernels import nn_descent

        # numba imports a function's module by name when it loads the function's cached code: load (or compile)
        # everything a graph calls while the stand-in is in place.
        kernels = _loaded(nn_descent, make_hybrid_leaf_array)
    finally:
        for name in [name for name in sys.modules if name == "pynndescent" or name.startswith("pynndescent.")]:
            del sys.modules[name]
    return kernels


def _loaded(nn_descent, make_hybrid_leaf_array):
    """The namespace :func:`kernels` returns, after :func:`_exercise`; ``compile_seconds``: how long that took
    when it compiled the kernels (numba's cache was empty or stale), else None (cleared once reported)."""
    misses_before = sum(nn_descent.stats.cache_misses.values())
    started = time.perf_counter()
    _exercise(nn_descent, make_hybrid_leaf_array)
    compiled = sum(nn_descent.stats.cache_misses.values()) > misses_before
    return types.SimpleNamespace(nn_descent=nn_descent, make_hybrid_leaf_array=make_hybrid_leaf_array,
                                 compile_seconds=time.perf_counter() - started if compiled else None)


def _exercise(nn_descent, make_hybrid_leaf_array) -> None:
    """Run the kernels once on 2 000 random rows with the argument types of every real call, both ways the forest
    splits (depth-first only below 1 MiB of rows; breadth-first first above): afterwards no graph compiles or
    loads code of its own."""
    import numba

    rows = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    threads = numba.config.NUMBA_NUM_THREADS
    rng_state = np.random.default_rng(0).integers(1, 2**31, size=3).astype(np.int64)
    with _numba_threads(threads):
        for local_bytes in (1 << 20, 0):
            leaves = make_hybrid_leaf_array(rows, 2, leaf_size(10), 0, angular=True, local_bytes=local_bytes)
        nn_descent(rows, leaves, 10, 10, 2, DELTA, rng_state, threads)


@contextlib.contextmanager
def _numba_threads(threads: int):
    """Hold :data:`_LOCK` and run numba's kernels on ``threads`` threads in this thread (numba's thread count is
    per calling thread), restoring its count after."""
    import numba

    with _LOCK:
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            yield
        finally:
            numba.set_num_threads(previous)


def preload() -> threading.Thread:
    """Import the kernels (:func:`kernels`) in a background thread, and return it (join it before
    :func:`build_graph`). The imports (~0.5 s, mostly holding the GIL) then overlap what runs before the graph
    (the embeddings' read, the PCA, whose matrix products release the GIL). An import error surfaces again, in
    full, in :func:`build_graph`."""

    def load():
        try:
            kernels()
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
    compiled : whether the kernels were compiled for this call (numba's cache was empty or stale), here or in
        :func:`preload`'s thread.
    seconds : wall time of the call, or of the compilation when that took longer (in preload's thread).
    """
    import numba

    started = time.perf_counter()
    compiled_code = kernels()
    nn_descent, make_hybrid_leaf_array = compiled_code.nn_descent, compiled_code.make_hybrid_leaf_array
    compile_seconds = _take_compile_seconds(compiled_code)  # also a compile in preload()'s thread
    threads = max(1, min(int(num_threads), numba.config.NUMBA_NUM_THREADS))
    rows = np.ascontiguousarray(unit_rows, dtype=np.float32)
    rng_state = np.random.default_rng(random_seed).integers(1, 2**31, size=3).astype(np.int64)
    misses_before = sum(nn_descent.stats.cache_misses.values())
    with _numba_threads(threads):
        leaves = make_hybrid_leaf_array(rows, int(trees), leaf_size(graph_k), int(random_seed), angular=True)
        graph, _ = nn_descent(rows, leaves, int(graph_k), int(graph_k), int(iterations), DELTA, rng_state, threads)
    compiled = compile_seconds is not None or sum(nn_descent.stats.cache_misses.values()) > misses_before
    return graph, compiled, max(time.perf_counter() - started, compile_seconds or 0.0)


def _take_compile_seconds(compiled_code) -> float | None:
    """How long :func:`kernels` spent compiling in this process, or None; told once: whoever reads it clears it."""
    with _IMPORT_LOCK:
        seconds, compiled_code.compile_seconds = compiled_code.compile_seconds, None
    return seconds


def warm_up() -> tuple[bool, float]:
    """Compile the kernels into numba's on-disk cache, or load them from it (:func:`kernels` runs them once on a
    small table with the argument types of every real call). Returns (whether this call compiled, seconds)."""
    started = time.perf_counter()
    compiled = _take_compile_seconds(kernels()) is not None
    return compiled, time.perf_counter() - started

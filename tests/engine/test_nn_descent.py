"""The nndescent backend's graph builders: pynndescent's kernels (disk-cached) and the fallback to faiss."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin import nn_descent
from balanced_sampling_plugin.errors import BalancedSamplingError, MissingDependencyError
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.uniqueness import knn_cosine, nndescent_builder, recall_at_k

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORCED = {"exact_below": 0, "reduce_dim": 32, "project_from": 0}


def cluster_and_outlier(n=6000, d=48, seed=3):
    """Unit rows around e1 (spread in the other axes; cosine about -0.4 with -e1), five rows nearly orthogonal to e1
    (cosine -0.1 with -e1) and, last, one row at -e1: its five true nearest rows all have a negative cosine."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d), dtype=np.float32)
    x[:, 0] = 3.0
    x[:, 1:] = rng.standard_normal((n, d - 1))
    planted = np.arange(100, 600, 100)
    x[planted] = 0.0
    x[planted, 0] = 0.1
    x[planted, 1 + np.arange(5)] = 1.0
    x[-1] = 0.0
    x[-1, 0] = -1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True), planted


def test_the_most_unique_patch_gets_its_true_neighbours():
    # pynndescent's own cosine (-log2 of the product) puts all non-positive products at the same infinite
    # distance: this row's graph neighbours were arbitrary, its uniqueness overestimated.
    x, planted = cluster_and_outlier()
    x *= np.linspace(0.5, 40.0, len(x), dtype=np.float32)[:, None]  # raw rows: the graph path keeps their scales
    before = x.copy()
    exact_idx, exact_dist = knn_cosine(x, 5, backend="faiss")
    assert set(exact_idx[-1]) == set(planted) and (exact_dist[-1] > 1.0).all()
    idx, dist = knn_cosine(x, 5, backend="nndescent", builder="pynndescent", exact_below=0, reduce_dim=0)
    # Exact: 1.10 on average. Arbitrary rows of the cluster: ~1.4 (pynndescent's "cosine" graph gave 1.35 and none
    # of the planted rows). A graph that orders negative products finds most of them (faiss's: 3 of 5, 1.18).
    assert dist[-1].mean() < 1.25 and len(set(idx[-1]) & set(planted)) >= 3, (dist[-1], idx[-1])
    assert recall_at_k(idx, exact_idx) >= 0.99
    np.testing.assert_array_equal(x, before)  # the caller's array, read in place, is left as it was
    # Distances are the exact cosines of the neighbours returned, from the raw rows and their scales.
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(dist, 1.0 - np.einsum("nd,nkd->nk", unit, unit[idx]), atol=1e-5)
    # With a projection: the neighbours of the unit rows themselves (rounding moves a few graph edges).
    projected = knn_cosine(x, 5, backend="nndescent", builder="pynndescent", exact_below=0, reduce_dim=24,
                           project_from=0)
    from_unit = knn_cosine(unit, 5, backend="nndescent", builder="pynndescent", exact_below=0, reduce_dim=24,
                           project_from=0)
    assert recall_at_k(projected[0], from_unit[0]) >= 0.99
    assert np.abs(projected[1].mean(axis=1) - from_unit[1].mean(axis=1)).mean() < 1e-3
    np.testing.assert_array_equal(x, before)


def test_unknown_builder_is_refused_naming_the_choices():
    x, _ = cluster_and_outlier(n=1000)
    with pytest.raises(BalancedSamplingError, match="Unknown nndescent builder 'numba'; choose one of auto, "
                                                    "pynndescent, faiss"):
        knn_cosine(x, 5, backend="nndescent", builder="numba")


def test_auto_falls_back_to_faiss_without_pynndescent_and_says_so(monkeypatch):
    monkeypatch.setattr(nn_descent, "available", lambda: False)
    messages = []
    assert nndescent_builder("auto", Progress(info=messages.append)) == "faiss"
    assert "pynndescent is not installed" in messages[0] and "pip install pynndescent" in messages[0]
    assert nndescent_builder("faiss") == "faiss"


def test_asking_for_pynndescent_without_it_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynndescent", None)  # import then fails, as when it is not installed
    with pytest.raises(MissingDependencyError, match="'pynndescent' is needed for the 'pynndescent' builder"):
        nndescent_builder("pynndescent")


def test_auto_uses_pynndescent_when_installed_on_large_tables():
    from balanced_sampling_plugin.uniqueness import PYNNDESCENT_FROM

    assert nn_descent.available()
    assert nndescent_builder("auto", n=PYNNDESCENT_FROM) == "pynndescent"
    assert nndescent_builder("auto", n=PYNNDESCENT_FROM - 1) == "faiss"  # loading the kernels would cost more
    assert nndescent_builder("pynndescent", n=100) == "pynndescent"


FRESH_PROCESS = """
import json, sys
import numpy as np
from balanced_sampling_plugin import nn_descent
rng = np.random.default_rng(0)
x = rng.standard_normal((12000, 24)).astype(np.float32)  # > 1 MiB: the forest splits breadth-first first
x /= np.linalg.norm(x, axis=1, keepdims=True)
graph, compiled, seconds = nn_descent.build_graph(x, 12, 10, 4, 7, 2)
print(json.dumps({"compiled": compiled, "graph": graph[:50].tolist()}))
"""


def cache_files(folder):
    return {os.path.join(root, name): os.stat(os.path.join(root, name)).st_mtime_ns
            for root, _, names in os.walk(folder) for name in names}


def test_kernels_compile_once_ahead_and_later_processes_only_load_them(tmp_path):
    # The point of cached_kernels: pynndescent's nn_descent compiled again in every process (~30 s on 2 cores,
    # every qgis_process run). `python -m balanced_sampling_plugin.nn_descent` (make setup, the package installer)
    # compiles everything a graph needs into the cache; later processes load it and compile nothing, not even
    # pynndescent's forest functions that only large tables use.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": REPO}

    def run(*command):
        done = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=600,
                              cwd=REPO)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Cannot cache" not in done.stderr, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert run("-m", "balanced_sampling_plugin.nn_descent").startswith("Compiled the NN-Descent kernels in ")
    compiled_ahead = cache_files(tmp_path / "numba")
    assert any(os.path.basename(path).startswith("cached_kernels.nn_descent") for path in compiled_ahead)
    runs = [json.loads(run("-c", FRESH_PROCESS)) for _ in range(2)]
    assert [r["compiled"] for r in runs] == [False, False]
    assert runs[0]["graph"] == runs[1]["graph"], "same seed, same graph"
    assert cache_files(tmp_path / "numba") == compiled_ahead, "a graph compiled what the warm-up had not"
    assert run("-m", "balanced_sampling_plugin.nn_descent").startswith("The NN-Descent kernels are already compiled")


def test_without_pynndescent_there_is_nothing_to_compile(monkeypatch, capsys):
    from balanced_sampling_plugin.nn_descent.__main__ import main

    monkeypatch.setattr(nn_descent, "available", lambda: False)
    assert main() == 0
    assert "pynndescent is not installed: nothing to compile" in capsys.readouterr().out


def test_first_compile_is_said_in_the_log(monkeypatch):
    import balanced_sampling_plugin.nn_descent as builder

    real = builder.build_graph
    monkeypatch.setattr(builder, "build_graph", lambda *a: (real(*a)[0], True, 42.0))
    messages = []
    knn_cosine(cluster_and_outlier(n=2000)[0], 5, backend="nndescent", builder="pynndescent",
               progress=Progress(info=messages.append), **FORCED)
    assert any("Compiled the NN-Descent kernels for this machine (42 s, once" in m for m in messages), messages


def test_the_kernels_are_imported_while_the_embeddings_are_read(monkeypatch):
    # Before the embeddings (a cache read of seconds at 155k), not before the PCA whose cores the imports would share.
    from balanced_sampling_plugin import uniqueness, uniqueness_stage
    from balanced_sampling_plugin.uniqueness import PYNNDESCENT_FROM, preload_knn

    started = []
    monkeypatch.setattr(nn_descent, "preload", lambda: started.append("imports"))
    preload_knn("nndescent", PYNNDESCENT_FROM)
    preload_knn("nndescent", PYNNDESCENT_FROM - 1)  # faiss builds that graph
    preload_knn("hnsw", 10 * PYNNDESCENT_FROM)
    assert started == ["imports"]

    class Stop(Exception):
        pass

    def extract(*args, **kwargs):
        started.append("embeddings")
        raise Stop

    monkeypatch.setattr(uniqueness, "PYNNDESCENT_FROM", 4)
    monkeypatch.setattr(uniqueness_stage, "extract_embeddings", extract)
    records = pd.DataFrame({"image_path": ["a.tif"] * 6, "row_off": range(6), "col_off": 0, "patch_size": 8})
    with pytest.raises(Stop):
        uniqueness_stage.compute_uniqueness(records, k_neighbors=2)
    assert started == ["imports", "imports", "embeddings"]


STAND_IN = """
import json, sys
import numpy as np
from balanced_sampling_plugin import nn_descent
from balanced_sampling_plugin.uniqueness import nndescent_builder
assert nndescent_builder("pynndescent") == "pynndescent"  # checks it is installed without importing it
x = np.random.default_rng(0).standard_normal((12000, 24)).astype(np.float32)  # > 1 MiB: both forest paths
x /= np.linalg.norm(x, axis=1, keepdims=True)
graph, _, _ = nn_descent.build_graph(x, 6, 4, 2, 0, 2)
after_graph = sorted(name for name in sys.modules if name.split(".")[0] in ("pynndescent", "sklearn"))
import pynndescent
import pynndescent.distances
print(json.dumps({"after_graph": after_graph, "complete": hasattr(pynndescent, "NNDescent")
                  and hasattr(pynndescent, "distances") and hasattr(pynndescent, "__version__"),
                  "graph": graph[:200].tolist()}))
"""


def test_the_kernels_load_without_pynndescents_package_init_and_leave_it_whole():
    # Its __init__ imports scikit-learn and NNDescent's modules (~1 s more per process); the kernels need neither.
    done = subprocess.run([sys.executable, "-c", STAND_IN], env={**os.environ, "PYTHONPATH": REPO},
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["after_graph"] == [], "the graph left pynndescent or scikit-learn modules imported"
    assert report["complete"], "a later import of pynndescent did not get the whole package"
    # The same neighbours as this process builds with the same seed and thread count.
    x = np.random.default_rng(0).standard_normal((12000, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert report["graph"] == nn_descent.build_graph(x, 6, 4, 2, 0, 2)[0][:200].tolist()



def test_smaller_tables_keep_every_dimension_and_their_recall(monkeypatch):
    # The benchmarks' hard family at 10 000 rows: PCA 256 held recall@5 0.974 (both builders); all dimensions 0.993.
    sys.path.insert(0, os.path.join(REPO, "bench"))
    from bench_knn import cluster_tail_embeddings

    from balanced_sampling_plugin import uniqueness

    x = cluster_tail_embeddings(10_000)
    exact_idx, exact_dist = knn_cosine(x, 5, backend="faiss")
    projections = []
    real = uniqueness.reduce_dimensions
    monkeypatch.setattr(uniqueness, "reduce_dimensions",
                        lambda rows, dim, **kw: projections.append(dim) or real(rows, dim, **kw))
    for builder in ("pynndescent", "faiss"):
        idx, dist = knn_cosine(x, 5, backend="nndescent", builder=builder)
        assert recall_at_k(idx, exact_idx) >= 0.99, builder
    assert projections == [0, 0]
    knn_cosine(x[:3000], 5, backend="nndescent", builder="pynndescent", exact_below=0, project_from=3000)
    assert projections[-1] == 256  # from project_from patches, the reduce_dim projection

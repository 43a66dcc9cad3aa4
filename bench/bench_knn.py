"""Benchmark of the uniqueness kNN step: time, recall@k and score agreement per backend.

Usage (from the repository root)::

    .venv/bin/python bench/bench_knn.py                 # the table of docs/benchmarks.md
    .venv/bin/python bench/bench_knn.py --sweep 155000  # nndescent parameter sweep used to pick defaults
    .venv/bin/python bench/bench_knn.py --sweep 155000 --backend hnsw --grid M=16,ef=64 M=24  # hnsw sweep
    .venv/bin/python bench/bench_knn.py --runs nndescent hnsw --no-doc  # a subset of the rows

Synthetic embeddings stand in for DINOv2 CLS vectors (D=768) of a segmentation dataset:
see :func:`scene_embeddings`. Ground truth = faiss exact search for a subsample of queries
against the full set. The kNN section of ``docs/benchmarks.md`` is rewritten with the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, save_log_log_plot, write_section
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from balanced_sampling_plugin.uniqueness import (  # noqa: E402
    BACKEND_DEFAULTS,
    DEFAULT_BACKEND,
    drop_self,
    knn_cosine,
    normalize_rows,
    recall_at_k,
)

K = 5
DIM = 768
N_QUERIES = 2000
PLOT = ROOT / "docs" / "benchmark_knn.png"


def scene_embeddings(n: int, d: int = DIM, patches_per_scene: int = 64, n_types: int = 40, seed: int = 0) -> np.ndarray:
    """(n, d) float32 unit vectors shaped like DINOv2 embeddings of aerial patches.

    Patches come from scenes (image tiles, ``patches_per_scene`` each); scenes belong to
    land-cover types with long-tailed (Pareto) frequencies, so a few types hold most
    patches. A vector = a mean shared by all (DINOv2 features have a large common
    component) + its type's centre + its scene's offset + the patch's own variation, both
    in the type's 64-d subspace with a power-law spectrum (a few strong directions, as in
    real embeddings) and a per-type spread (water is uniform, towns are varied) + small
    isotropic noise. Nearest-neighbour cosine similarity ranges ~0.8-0.99, random pairs ~0.4.
    """
    rng = np.random.default_rng(seed)
    n_scenes = max(1, n // patches_per_scene)
    type_freq = rng.pareto(1.0, n_types) + 1.0
    scene_type = rng.choice(n_types, size=n_scenes, p=type_freq / type_freq.sum())
    spread = np.exp(rng.normal(np.log(0.6), 0.5, size=n_types)).astype(np.float32)
    spectrum = (np.arange(1, 65) ** -0.7).astype(np.float32)
    mean = rng.standard_normal(d).astype(np.float32)
    centres = rng.standard_normal((n_types, d)).astype(np.float32)
    type_basis = (rng.standard_normal((n_types, 64, d)) * spectrum[:, None]).astype(np.float32)
    scene_offset = 0.5 * np.einsum("sr,srd->sd", rng.standard_normal((n_scenes, 64)).astype(np.float32), type_basis[scene_type])
    patch_scene = np.sort(rng.integers(0, n_scenes, size=n))
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 8192):
        stop = min(n, start + 8192)
        scene = patch_scene[start:stop]
        kind = scene_type[scene]
        z = rng.standard_normal((stop - start, 64)).astype(np.float32) * spread[kind, None]
        out[start:stop] = (
            mean
            + 0.9 * centres[kind]
            + scene_offset[scene]
            + np.einsum("nr,nrd->nd", z, type_basis[kind])
            + 0.1 * rng.standard_normal((stop - start, d)).astype(np.float32)
        )
    return normalize_rows(out)


def blob_embeddings(n: int, d: int = DIM, n_clusters: int = 300, rank: int = 24, seed: int = 0) -> np.ndarray:
    """(n, d) float32 unit vectors in Pareto-sized Gaussian clusters of intrinsic dimension ~``rank``.

    A stress test: no scene structure, so big clusters are featureless 24-d blobs in which
    nearest neighbours are barely nearer than the rest (hard for graph search).
    """
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(d).astype(np.float32)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    sizes = rng.pareto(1.2, n_clusters) + 1.0
    labels = np.sort(rng.choice(n_clusters, size=n, p=sizes / sizes.sum()))
    bases = (rng.standard_normal((n_clusters, rank, d)) / np.sqrt(rank)).astype(np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 8192):
        stop = min(n, start + 8192)
        lab = labels[start:stop]
        z = rng.standard_normal((stop - start, rank)).astype(np.float32)
        out[start:stop] = (
            mean
            + 0.8 * centres[lab]
            + 0.9 * np.einsum("nr,nrd->nd", z, bases[lab])
            + 0.25 * rng.standard_normal((stop - start, d)).astype(np.float32)
        )
    return normalize_rows(out)


def cluster_tail_embeddings(n: int, d: int = DIM, seed: int = 0, n_clusters: int = 400, rank: int = 32) -> np.ndarray:
    """(n, d) float32 unit vectors built to be hard for a PCA-projected graph, unlike the two families above.

    75 % of the rows fall in 400 anisotropic clusters of Pareto(0.8) sizes (each its own 32-d
    subspace with a 1 -> 0.02 geometric spectrum and a log-normal scale), so the union of the
    cluster subspaces (12 800 directions) far exceeds what a 256-d projection keeps; 10 % are
    near-duplicates of other rows (noise 0.01); 15 % are singletons between two cluster centres,
    spread in a shared 32-d subspace (a long tail whose neighbours are still well defined).
    """
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(d).astype(np.float32)
    n_dup, n_single = n // 10, (3 * n) // 20
    n_clust = n - n_dup - n_single
    sizes = rng.pareto(0.8, n_clusters) + 1.0
    labels = rng.choice(n_clusters, size=n_clust, p=sizes / sizes.sum())
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    spectrum = np.geomspace(1.0, 0.02, rank).astype(np.float32)
    bases = rng.standard_normal((n_clusters, rank, d)).astype(np.float32)
    scale = np.exp(rng.normal(0, 0.6, n_clusters)).astype(np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n_clust, 8192):
        e = min(n_clust, s + 8192)
        lab = labels[s:e]
        z = rng.standard_normal((e - s, rank)).astype(np.float32) * spectrum * scale[lab, None]
        out[s:e] = mean + 0.8 * centres[lab] + np.einsum("nr,nrd->nd", z, bases[lab]) + 0.05 * rng.standard_normal((e - s, d)).astype(np.float32)
    a, b = rng.integers(0, n_clusters, (2, n_single))
    t = rng.random((n_single, 1)).astype(np.float32)
    shared = rng.standard_normal((rank, d)).astype(np.float32)
    out[n_clust:n_clust + n_single] = (mean + 0.8 * (t * centres[a] + (1 - t) * centres[b])
                                       + (rng.standard_normal((n_single, rank)).astype(np.float32) * spectrum) @ shared
                                       + 0.05 * rng.standard_normal((n_single, d)).astype(np.float32))
    src = rng.integers(0, n_clust + n_single, n_dup)
    out[n_clust + n_single:] = out[src] + 0.01 * rng.standard_normal((n_dup, d)).astype(np.float32)
    return normalize_rows(out[rng.permutation(n)])


DATASETS = {"scenes": scene_embeddings, "blobs": blob_embeddings, "clusters": cluster_tail_embeddings}


def exact_subset(x: np.ndarray, queries: np.ndarray):
    """Exact (len(queries), K) neighbours and distances of rows ``queries`` against all of ``x`` (faiss)."""
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, labels = index.search(x[queries], K + 1)
    return drop_self(labels.astype(np.int64), 1.0 - sims, queries, K)


def run_backend(x, backend, queries, exact_idx, exact_dist, **params):
    """One timed full kNN run; returns seconds, recall@K and Spearman of scores on ``queries``."""
    start = time.perf_counter()
    idx, dist = knn_cosine(x, K, backend=backend, **params)
    seconds = time.perf_counter() - start
    recall = recall_at_k(idx[queries], exact_idx)
    rho = spearmanr(dist[queries].mean(axis=1), exact_dist.mean(axis=1)).statistic
    return seconds, recall, rho


def load() -> str:
    """The 1-minute load average, to read timings against (the machine may be shared)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def bench_runs():
    """name -> (row label, backend, params) of every row the main table can hold."""
    threads = os.cpu_count() or 1
    return {
        # The default: exact below its exact_below, NN-Descent graph + exact re-rank above.
        "nndescent": (f"nndescent (default), {threads} threads", "nndescent", {}),
        "nndescent-1thread": ("nndescent, 1 thread (Reproducible kNN)", "nndescent", {"num_threads": 1}),
        # The previous default: PCA + hnswlib candidates + exact re-rank.
        "hnsw": ("hnsw two-stage (PCA + hnsw + exact re-rank)", "hnsw", {}),
        "hnsw-threads": (
            f"hnsw two-stage, {threads} build threads (not deterministic)",
            "hnsw",
            {"build_threads": threads},
        ),
        # The first default: hnsw on the full 768-d vectors.
        "hnsw-768": (
            "hnsw on 768-d, M=24, ef_construction=200, ef=96 (first default)",
            "hnsw",
            {"exact_below": 0, "reduce_dim": 0, "candidates": K, "M": 24, "ef_construction": 200, "ef": 96},
        ),
        "faiss": ("faiss (exact)", "faiss", {}),
        "sklearn": ("sklearn (exact)", "sklearn", {}),
    }


DEFAULT_RUNS = ["nndescent", "nndescent-1thread", "hnsw", "faiss", "sklearn"]


def main_table(sizes, datasets, exact_max, run_names=DEFAULT_RUNS, timings=None):
    """The markdown table; ``timings`` (a dict, optional) collects (data, label) -> [(N, seconds)]."""
    timings = {} if timings is None else timings
    runs = [bench_runs()[name] for name in run_names]
    lines = [
        f"| data | N | backend | time (s) | load (1 min) | recall@{K} | Spearman of scores |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name in datasets:
        for n in sizes:
            x = DATASETS[name](n)
            queries = np.random.default_rng(1).choice(n, size=min(N_QUERIES, n), replace=False)
            exact_idx, exact_dist = exact_subset(x, queries)
            for label, backend, params in runs:
                if backend in ("sklearn", "faiss") and n > exact_max:
                    lines.append(f"| {name} | {n} | {label} | not run (N > {exact_max}: minutes) | | | |")
                    continue
                seconds, recall, rho = run_backend(x, backend, queries, exact_idx, exact_dist, **params)
                print(f"{name} N={n} {label}: {seconds:.1f} s (load {load()}), recall@{K}={recall:.4f}, "
                      f"spearman={rho:.4f}", flush=True)
                lines.append(f"| {name} | {n} | {label} | {seconds:.1f} | {load()} | {recall:.4f} | {rho:.4f} |")
                timings.setdefault((name, label), []).append((n, seconds))
    return "\n".join(lines)


def sweep_table(n, datasets, backend, grid):
    """Time/recall/Spearman of ``backend`` for each parameter set of ``grid`` (dicts) at N = ``n``."""
    lines = [
        f"| data | N | backend | parameters (others default) | time (s) | load | recall@{K} | Spearman |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for name in datasets:
        x = DATASETS[name](n)
        queries = np.random.default_rng(1).choice(n, size=min(N_QUERIES, n), replace=False)
        exact_idx, exact_dist = exact_subset(x, queries)
        for params in grid:
            seconds, recall, rho = run_backend(x, backend, queries, exact_idx, exact_dist, **params)
            shown = ", ".join(f"{key}={value}" for key, value in params.items()) or "defaults"
            print(f"{name} N={n} {backend} {shown}: {seconds:.1f} s (load {load()}), recall={recall:.4f}, "
                  f"rho={rho:.4f}", flush=True)
            lines.append(f"| {name} | {n} | {backend} | {shown} | {seconds:.1f} | {load()} | {recall:.4f} | {rho:.4f} |")
    return "\n".join(lines)


DEFAULT_GRIDS = {
    "nndescent": ["graph_k=24,pool=30", "", "graph_k=32,pool=52,reverse=64", "graph_k=40,pool=40"],
    "hnsw": ["M=16,ef_construction=128,ef=64,candidates=32", "", "reduce_dim=192,candidates=40"],
}


def parse_grid(entries):
    """``["graph_k=24,pool=30", ""]`` -> ``[{"graph_k": 24, "pool": 30}, {}]`` (integer values)."""
    return [dict((key, int(value)) for key, value in (item.split("=") for item in entry.split(",") if item))
            for entry in entries]


def plot(timings: dict) -> None:
    """kNN wall time vs N, one line per (data, backend row), log-log, to :data:`PLOT`."""
    series = [(f"{name}: {label}", *zip(*sorted(points)), "-" if name == "scenes" else "--")
              for (name, label), points in timings.items()]
    smallest_n = min(x for points in timings.values() for x, _ in points)

    def target(ax):
        ax.axhline(20, color="grey", linewidth=0.8)
        ax.annotate("target at 155k: 20 s", (smallest_n, 21), fontsize=8)

    save_log_log_plot(PLOT, series, "patches N (D = 768, k = 5)", "wall time of knn_cosine (s)",
                      f"Uniqueness kNN, {os.cpu_count()} cores", figsize=(7.5, 4.8), draw=target)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 155_000])
    parser.add_argument("--data", nargs="+", default=["scenes", "blobs", "clusters"], choices=sorted(DATASETS))
    parser.add_argument("--exact-max", type=int, default=20_000,
                        help="largest N run with the exact backends (faiss, sklearn)")
    parser.add_argument("--sweep", type=int, metavar="N", help="sweep --backend parameters at this N instead")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKEND_DEFAULTS),
                        help="backend of --sweep")
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=sorted(bench_runs()),
                        help="rows of the main table (hnsw-768 = the first default; slow at 155k)")
    parser.add_argument("--grid", nargs="+",
                        help="parameter sets for --sweep, e.g. graph_k=24,pool=30 ('' = the defaults); "
                             "default: a few around each backend's defaults")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    header = (
        f"Machine: {machine()}. D={DIM}, k={K}; recall@{K} and Spearman (of uniqueness scores) on "
        f"{N_QUERIES} random queries against faiss exact search over the full set. Time = the whole "
        "`knn_cosine` call (nndescent: PCA + graph + re-rank; hnsw: PCA + build + query + re-rank); load = 1-minute load "
        "average right after the run (the machine may be shared). Defaults: "
        + "; ".join(f"{backend} {params}" for backend, params in BACKEND_DEFAULTS.items()) + "."
    )
    if args.sweep:
        grid = parse_grid(args.grid or DEFAULT_GRIDS[args.backend])
        body = header + "\n\n" + sweep_table(args.sweep, args.data, args.backend, grid)
        title = f"kNN: {args.backend} parameter sweep"
    else:
        timings = {}
        body = header + "\n\n" + main_table(args.sizes, args.data, args.exact_max, args.runs, timings)
        if not args.no_doc and timings:
            plot(timings)
            body += f"\n\n![kNN time vs N]({PLOT.name})"
        title = "kNN"
    print(body)
    if not args.no_doc:
        write_section(title, body)


if __name__ == "__main__":
    main()

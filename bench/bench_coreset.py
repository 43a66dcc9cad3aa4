"""Coreset selection: time of each method at a budget, and the coverage measures of each method and of random
selection at budgets 10/30/50%, on a synthetic patch table (issue 15).

The table imitates the chain's output at scale without rasters: class shares of 256 px patches where background
covers most pixels and patches hold one to four classes (the rare class in few tiles), class entropy from them,
composition clusters, tiles, and embeddings drawn around a few dozen centres (so fd has clusters to find).

Usage (from the repository root)::

    .venv/bin/python bench/bench_coreset.py                       # 155 000 patches, budget 50%; docs section
    .venv/bin/python bench/bench_coreset.py --sizes 5000 --no-doc # a quick look, docs/ left alone

Writes only its own section ("Coreset selection") of docs/benchmarks.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_section  # noqa: E402

from balanced_sampling_plugin.contract import CORESET_METHODS  # noqa: E402
from balanced_sampling_plugin.selection.coreset import select_coreset  # noqa: E402
from balanced_sampling_plugin.selection.measures import RADIUS_SAMPLE, compare_with_random  # noqa: E402

CLASSES = 6  # cls_1 background, cls_2..cls_6 foreground, cls_6 the rare one
FOREGROUND_P = np.array([0.26, 0.23, 0.21, 0.21, 0.09])
TITLE = "Coreset selection"


def synthetic_table(n: int, dim: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    shares = np.zeros((n, CLASSES))
    k = rng.choice(4, size=n, p=[0.45, 0.3, 0.17, 0.08])
    tiles = rng.integers(0, max(1, n // 100), size=n)
    rare_tiles = tiles % 17 == 0
    for i in range(n):
        if k[i]:
            p = FOREGROUND_P.copy()
            p[-1] *= 6 if rare_tiles[i] else 0.2
            chosen = rng.choice(5, size=k[i], replace=False, p=p / p.sum()) + 1
            shares[i, chosen] = rng.dirichlet(np.ones(k[i])) * rng.uniform(0.05, 0.8)
        shares[i, 0] = 1 - shares[i].sum()
    shares = np.round(shares * 65536) / 65536
    logs = np.log(np.where(shares > 0, shares, 1.0))
    entropy = -(shares * logs).sum(axis=1)
    centres = rng.normal(size=(40, dim)).astype(np.float32)
    embeddings = centres[rng.integers(0, 40, size=n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    table = pd.DataFrame({f"cls_{c + 1}": shares[:, c] for c in range(CLASSES)})
    table["class_entropy"] = entropy
    table["image_path"] = [f"/data/tile_{t}.tif" for t in tiles]
    table["patch_size"] = 256
    table["freq_cluster_id"] = rng.integers(0, 12, size=n)
    table["excluded"] = rng.random(n) < 0.03
    return table, embeddings


def time_methods(table, embeddings, budget: float) -> dict:
    timings = {}
    for method in CORESET_METHODS:
        load = os.getloadavg()[0]
        start = time.perf_counter()
        select_coreset(table, method, budget, embeddings=embeddings)
        timings[method] = (time.perf_counter() - start, load)
        print(f"  {method}: {timings[method][0]:.1f} s (load {load:.2f})", flush=True)
    return timings


def coverage(table, embeddings, budgets) -> list:
    rows = []
    for budget in budgets:
        for method in CORESET_METHODS:
            result = select_coreset(table, method, budget, embeddings=embeddings)
            comparison = compare_with_random(table, result.selected, result.pool, result.pool_embeddings
                                             if result.pool_embeddings is not None else embeddings[result.pool])
            rows.append((budget, method, comparison["method"]))
        rows.append((budget, "random", comparison["random"]))
    return rows


def render(n, dim, timings, rows, budget) -> str:
    lines = [f"Machine: {machine()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}. "
             f"Synthetic table of {n} patches (embeddings D={dim}); `bench/bench_coreset.py`.", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')}. Time per method at budget {budget:.0%} (scores + "
             "selection, embeddings in memory), one after the other in one process; target <= 60 s each on 2 cores:",
             "", "| method | seconds | load avg (1 min) before |", "|---|---:|---:|"]
    lines += [f"| {m} | {t:.1f} | {load:.2f} |" for m, (t, load) in timings.items()]
    lines += ["", "Coverage at each budget (class-share L1 distance subset vs pool, lower = closer to the pool's "
              "mix; clusters and tiles covered; coverage radius = largest cosine distance from a pool patch to "
              f"the subset, from a {RADIUS_SAMPLE}-patch sample):", "",
              "| budget | method | class-share L1 | rare-class share (subset / pool) | clusters | tiles | radius |",
              "|---|---|---|---|---|---|---|"]
    rare = f"cls_{CLASSES}"
    for budget, method, m in rows:
        lines.append(f"| {budget:.0%} | {method} | {m['class_share_l1']:.3f} | "
                     f"{m['class_share_subset'][rare]:.4f} / {m['class_share_pool'][rare]:.4f} | "
                     f"{m['clusters_covered']}/{m['clusters_in_pool']} | {m['tiles_covered']}/{m['tiles_in_pool']} | "
                     f"{m['coverage_radius']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[155_000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--budget", type=float, default=0.5)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    sections = []
    for n in args.sizes:
        print(f"{n} patches", flush=True)
        table, embeddings = synthetic_table(n, args.dim)
        timings = time_methods(table, embeddings, args.budget)
        rows = coverage(table, embeddings, args.budgets)
        sections.append(render(n, args.dim, timings, rows, args.budget))
    body = "\n\n".join(sections)
    print(body)
    if not args.no_doc:
        write_section(TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

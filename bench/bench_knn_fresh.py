"""The default kNN at 155 000 x 768 as a ``qgis_process`` run meets it: each call in a new Python process.

Usage (from the repository root)::

    .venv/bin/python bench/bench_knn_fresh.py            # three families, both graph builders, two rounds
    .venv/bin/python bench/bench_knn_fresh.py --rounds 1 --data clusters --no-doc

Each timed call runs in its own process and its time counts from before the plugin is imported, so imports,
numba's cache loading and any compilation are included; only reading the embeddings from a ``.npy`` file is not.
The builders alternate (pynndescent, faiss, pynndescent, ...) so a drift of the machine hits both. One extra run
compiles the kernels ahead into an empty numba cache folder, as ``make setup`` and the package installer do once
per machine, and times the first kNN call after it (which must not compile). Recall@5
and Spearman of the scores against faiss exact search on 2 000 query rows. Rewrites the section
"kNN: first call in a fresh process" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, write_section
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_knn import DATASETS, K, N_QUERIES, exact_subset  # noqa: E402

from balanced_sampling_plugin.uniqueness import recall_at_k  # noqa: E402

CHILD = """
import time
started = time.perf_counter()
import json, sys
import numpy as np
vectors_path, queries_path, out_path, builder = sys.argv[1:5]
read = time.perf_counter()
x = np.load(vectors_path)
queries = np.load(queries_path)
read = time.perf_counter() - read
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.uniqueness import knn_cosine
messages = []
idx, dist = knn_cosine(x, {k}, backend="nndescent", builder=builder, progress=Progress(info=messages.append))
seconds = time.perf_counter() - started - read
np.savez(out_path, idx=idx[queries], dist=dist[queries])
print(json.dumps({{"seconds": seconds, "compiled": any("Compiled the NN-Descent" in m for m in messages)}}))
"""


def fresh_run(vectors: Path, queries: Path, builder: str, env: dict) -> tuple[float, bool, np.ndarray, np.ndarray]:
    """One ``knn_cosine`` call in a new process: (seconds, compiled, query rows' indices, their distances)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.npz"
        done = subprocess.run([sys.executable, "-c", CHILD.format(k=K), str(vectors), str(queries), str(out), builder],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the child process failed:\n{done.stderr}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        result = np.load(out)
        return report["seconds"], report["compiled"], result["idx"], result["dist"]


def compile_ahead(name: str, env: dict) -> str:
    """Table row: ``python -m balanced_sampling_plugin.nn_descent`` on an empty numba cache (what ``make setup`` and
    the package installer pay once per machine)."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "balanced_sampling_plugin.nn_descent"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not done.stdout.startswith("Compiled"):
        raise SystemExit(f"compiling ahead failed:\n{done.stdout}{done.stderr}")
    return (f"| {name} | pynndescent | compiling ahead, empty numba cache (`python -m "
            f"balanced_sampling_plugin.nn_descent`: make setup, the package installer; once) | {seconds:.1f} | "
            f"{load_before:.2f} / {os.getloadavg()[0]:.2f} | - | - |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=155_000)
    parser.add_argument("--data", nargs="+", default=["scenes", "blobs", "clusters"], choices=sorted(DATASETS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-cold", action="store_true", help="skip the run with an empty numba cache")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        for name in args.data:
            x = DATASETS[name](args.n)
            queries = np.random.default_rng(1).choice(args.n, size=min(N_QUERIES, args.n), replace=False)
            exact_idx, exact_dist = exact_subset(x, queries)
            vectors, query_file = Path(data_dir) / f"{name}.npy", Path(data_dir) / f"{name}_queries.npy"
            np.save(vectors, x)
            np.save(query_file, queries)
            del x
            runs = []
            if not args.no_cold and name == args.data[0]:
                cold_env = {**env, "NUMBA_CACHE_DIR": str(Path(data_dir) / "numba-cold")}
                rows.append(compile_ahead(name, cold_env))
                print(rows[-1], flush=True)
                runs.append(("pynndescent", cold_env, "the first after compiling ahead"))
            for _ in range(args.rounds):
                runs += [("pynndescent", env, "fresh process"), ("faiss", env, "fresh process")]
            for builder, run_env, note in runs:
                load_before = os.getloadavg()[0]
                seconds, compiled, idx, dist = fresh_run(vectors, query_file, builder, run_env)
                recall = recall_at_k(idx, exact_idx)
                rho = spearmanr(dist.mean(axis=1), exact_dist.mean(axis=1)).statistic
                row = (f"| {name} | {builder} | {note}{', compiled' if compiled else ''} | {seconds:.1f} | "
                       f"{load_before:.2f} / {os.getloadavg()[0]:.2f} | {recall:.4f} | {rho:.4f} |")
                print(row, flush=True)
                rows.append(row)
            vectors.unlink()
    body = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} by `bench/bench_knn_fresh.py`. Machine: {machine()}. "
        f"N = {args.n}, D = 768, k = {K}, the default `nndescent` backend (PCA 256, graph_k 32, exact re-rank), "
        "each call in a new Python process, timed from before the plugin is imported (imports, numba's cache "
        "loading and any compilation included; reading the `.npy` not), the two graph builders alternating. "
        "Recall@5 and Spearman of the scores on 2 000 query rows against faiss exact search. Load = 1-minute "
        "load average before / after the run.",
        "",
        "| data | builder | run | seconds | load | recall@5 | Spearman |",
        "|---|---|---|---:|---:|---:|---:|",
        *rows,
    ])
    print(body)
    if not args.no_doc:
        write_section("kNN: first call in a fresh process", body)


if __name__ == "__main__":
    main()

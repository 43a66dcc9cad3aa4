"""Run the benchmarks one after the other, each in its own process.

Usage (from the repository root)::

    .venv/bin/python bench/run_all.py                  # stages (10k, 50k, 155k), then kNN (in-process, then
                                                       # a new process per call)
    .venv/bin/python bench/run_all.py --quick          # stages at 10k only, then kNN
    .venv/bin/python bench/run_all.py --no-knn         # everything but kNN (stages, weights, coreset, scale-out)
    .venv/bin/python bench/run_all.py --no-stages -- --sizes 20000   # kNN only, extra args to bench_knn

Arguments after ``--`` go to ``bench_knn.py``; ``--stages-args`` passes a quoted string to
``bench_stages.py``. Both scripts rewrite only their own sections of docs/benchmarks.md.
Exit status: the first non-zero status of the benchmarks run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run(script: str, extra: list[str]) -> int:
    command = [sys.executable, str(HERE / script), *extra]
    print(f"[{time.strftime('%H:%M:%S')}] load {os.getloadavg()[0]:.2f}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT)
    print(f"[{time.strftime('%H:%M:%S')}] {script} exited {code} after {time.perf_counter() - start:.0f} s "
          f"(load {os.getloadavg()[0]:.2f})", flush=True)
    return code


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    knn_extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, knn_extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-stages", action="store_true", help="skip bench_stages.py")
    parser.add_argument("--no-knn", action="store_true", help="skip bench_knn.py and bench_knn_fresh.py")
    parser.add_argument("--no-weights", action="store_true", help="skip bench_weights.py")
    parser.add_argument("--no-coreset", action="store_true", help="skip bench_coreset.py")
    parser.add_argument("--no-scaleout", action="store_true",
                        help="skip the scale-out benchmarks: bench_scaleout.py (1 M patches, minutes), "
                             "bench_scaleout_embeddings.py (DINOv2 in-process vs LocalCluster, ~2 min) and "
                             "bench_knn_out_of_core.py (2 M patches, ~12 min)")
    parser.add_argument("--quick", action="store_true", help="bench_stages.py --quick (10k only)")
    parser.add_argument("--no-doc", action="store_true", help="pass --no-doc to both (leave docs/ alone)")
    parser.add_argument("--stages-args", default="", help="extra arguments for bench_stages.py (one quoted string)")
    args = parser.parse_args(argv)
    codes = []
    if not args.no_stages:
        extra = shlex.split(args.stages_args) + (["--quick"] if args.quick else []) + (["--no-doc"] if args.no_doc else [])
        codes.append(run("bench_stages.py", extra))
    if not args.no_weights:
        codes.append(run("bench_weights.py", ["--no-doc"] if args.no_doc else []))
    if not args.no_coreset:
        codes.append(run("bench_coreset.py", ["--no-doc"] if args.no_doc else []))
    if not args.no_scaleout:
        for script in ("bench_scaleout.py", "bench_scaleout_embeddings.py", "bench_knn_out_of_core.py"):
            codes.append(run(script, ["--no-doc"] if args.no_doc else []))
    if not args.no_knn:
        codes.append(run("bench_knn.py", knn_extra + (["--no-doc"] if args.no_doc else [])))
        # The default kNN as qgis_process meets it: a new process per call (~10 min with the cold-cache run).
        codes.append(run("bench_knn_fresh.py", ["--no-doc"] if args.no_doc else []))
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the weight methods: target_shares (three asks) beside class_balanced and the published samplers.

Usage (from the repository root)::

    .venv/bin/python bench/bench_weights.py                 # 155 000 and 10 000 000 patches, 20 classes
    .venv/bin/python bench/bench_weights.py --sizes 155000 --no-doc

Each method runs through ``combine_weights`` on a patch table (the whole cost a user pays: reading the
class fields, checks, the solve, normalisation), in one process, one after the other, with the load
average before and after. The table: one background class near 80 % of the pixels and 19 rarer classes
(geometric spread), Dirichlet-mixed per patch, 10 % of the patches half nodata. Writes the ``Weights`` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from common import machine, write_section  # noqa: E402

from balanced_sampling_plugin.weights import combine_weights, effective_sample_size  # noqa: E402
from balanced_sampling_plugin.weights.targets import pixel_class_shares  # noqa: E402

CLASSES = 20


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    """n patches x 20 class shares (float64), patch_size 256, nodata_ratio 0 or 0.5."""
    rng = np.random.default_rng(seed)
    rare = np.geomspace(0.002, 0.03, CLASSES - 1)
    global_shares = np.r_[0.8, rare / rare.sum() * 0.2]
    columns = {}
    # per patch: a few classes present, drawn with the global shares; Dirichlet amounts
    block = 1_000_000
    parts = []
    for start in range(0, n, block):
        size = min(block, n - start)
        present = rng.random((size, CLASSES)) < np.clip(global_shares * 6, 0.02, 1)
        present[:, 0] = True
        amounts = rng.gamma(0.6, 1.0, (size, CLASSES)) * present * global_shares
        parts.append(amounts / amounts.sum(axis=1, keepdims=True))
    proportions = np.vstack(parts)
    for c in range(CLASSES):
        columns[f"cls_{c + 1}"] = proportions[:, c]
    table = pd.DataFrame(columns)
    table["patch_size"] = 256
    table["nodata_ratio"] = np.where(rng.random(n) < 0.1, 0.5, 0.0)
    return table


def timed(table, method, **options):
    start = time.perf_counter()
    result = combine_weights(table, method, **options)
    seconds = time.perf_counter() - start
    weights = result.weights.to_numpy()
    return seconds, weights


def run(sizes) -> str:
    rows = []
    for n in sizes:
        table = make_table(n)
        p = table[[f"cls_{c + 1}" for c in range(CLASSES)]].to_numpy()
        valid = 256.0**2 * (1 - table["nodata_ratio"].to_numpy())
        uniform = pixel_class_shares(p, valid, np.ones(n))
        rarest = int(np.argmin(uniform))
        target = {rarest + 1: 2 * uniform[rarest], int(np.argsort(uniform)[1]) + 1: 1.5 * np.sort(uniform)[1]}
        cases = [
            ("class_balanced", {}),
            ("target_shares: rarest at 2x, second at 1.5x", {"target_shares": target}),
            ("target_shares: most balanced at ESS >= 50%", {"min_ess": 0.5}),
            (f"target_shares: lift cls_{rarest + 1} at ESS >= 50%", {"lift_class": rarest + 1, "min_ess": 0.5}),
            ("repeat_factor", {}),
            ("rare_class_sampling", {}),
        ]
        for label, options in cases:
            method = label.split(":")[0]
            load = os.getloadavg()[0]
            seconds, weights = timed(table, method, **options)
            shares = pixel_class_shares(p, valid, weights)
            rows.append((n, label, seconds, load, effective_sample_size(weights) / n,
                         shares[shares > 0].min(), shares[rarest] / uniform[rarest]))
            print(f"{n:>10,} {label:<48} {seconds:8.2f} s  load {load:.2f}  ESS/N {rows[-1][4]:.3f}  "
                  f"min share {100 * rows[-1][5]:.3f}%  rarest lift {rows[-1][6]:.2f}x", flush=True)
        del table, p
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()} by `bench/bench_weights.py` (`make bench`), "
        "one process, methods one after the other through `combine_weights` (reading the class fields, checks, "
        f"solve, normalisation), {CLASSES} classes (one near 80 % of the pixels, 19 rarer ones), 10 % of the "
        "patches half nodata. Target: `target_shares` <= 1 s at 155 000 patches and <= 30 s at 10 M on 2 cores.",
        "",
        "| patches | method | seconds | load avg (1 min) before | ESS / N | smallest class share | rarest lift |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {n:,} | {label} | {seconds:.2f} | {load:.2f} | {ess:.3f} | {100 * smallest:.2f}% | {lift:.2f}x |"
              for n, label, seconds, load, ess, smallest, lift in rows]
    lines += ["", "The exact target is one solve of the C + 1 multipliers (scipy `trust-exact`, exact Hessian): a "
              "few (n, C) matrix products. The two other asks search the share whose largest-ESS solve meets the "
              "minimum ESS (Brent's method, a handful of solves; the most balanced one adds an active set of the "
              "classes held at the smallest share)."]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[155_000, 10_000_000])
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    body = run(args.sizes)
    if not args.no_doc:
        write_section("Weights: target_shares beside class_balanced and the published samplers", body)


if __name__ == "__main__":
    main()

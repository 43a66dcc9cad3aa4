"""How a coreset covers the pool, and the same measures for a random subset of the same size.

- per-class pixel share of the subset vs the pool (``cls_<c>`` proportions weighted by patch_size²), and
  their L1 distance (0 = the subset has the pool's class mix);
- clusters covered: distinct ``freq_cluster_id`` in the subset / in the pool;
- tiles covered: distinct ``image_path`` in the subset / in the pool;
- coverage radius: the largest cosine distance from a pool patch to its nearest selected patch (0 = every
  pool patch has a selected twin). Over at most ``radius_sample`` pool patches (seeded; exact when the pool
  is smaller, else an estimate from below), so that 155 000 patches cost seconds, not minutes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..records import FREQ_CLUSTER_ID, IMAGE_PATH, PATCH_SIZE, class_columns
from .scores import DEFAULT_SEED, class_shares

#: Pool patches the coverage radius is measured from (a seeded sample; 155 000 x 77 500 would take minutes).
RADIUS_SAMPLE = 2_000
#: Rows of each block of the coverage-radius distance computation.
RADIUS_BLOCK = 2_048


def class_pixel_shares(table: pd.DataFrame, rows: np.ndarray) -> dict:
    """Class column -> share of the pixels of ``rows`` (proportions × patch_size²)."""
    columns = class_columns(map(str, table.columns))
    if not columns or len(rows) == 0:
        return {c: 0.0 for c in columns}
    shares = class_shares(table.iloc[rows][columns].apply(pd.to_numeric, errors="coerce").to_numpy())
    if PATCH_SIZE in table.columns:
        sizes = pd.to_numeric(table.iloc[rows][PATCH_SIZE], errors="coerce").fillna(0).to_numpy(dtype=float)
        pixels = shares * (sizes ** 2)[:, None]
    else:
        pixels = shares
    total = pixels.sum()
    return {c: float(pixels[:, i].sum() / total) if total > 0 else 0.0 for i, c in enumerate(columns)}


def coverage_radius(embeddings: np.ndarray, selected: np.ndarray, sample: int = RADIUS_SAMPLE,
                    seed: int = DEFAULT_SEED) -> float:
    """Largest cosine distance from a pool patch (of a seeded sample of ``sample``) to its nearest selected
    patch; ``embeddings`` (N, D) over the pool, ``selected`` (N,) bool. NaN without a selected patch."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    selected = np.asarray(selected, dtype=bool)
    if not selected.any() or len(embeddings) == 0:
        return float("nan")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
    probes = np.arange(len(unit))
    if len(probes) > sample:
        probes = np.sort(np.random.default_rng(seed).choice(len(unit), sample, replace=False))
    chosen = unit[selected]
    worst = 0.0
    for start in range(0, len(probes), RADIUS_BLOCK):
        block = unit[probes[start:start + RADIUS_BLOCK]]
        best = np.full(len(block), -np.inf, dtype=np.float32)
        for inner in range(0, len(chosen), 8 * RADIUS_BLOCK):
            np.maximum(best, (block @ chosen[inner:inner + 8 * RADIUS_BLOCK].T).max(axis=1), out=best)
        worst = max(worst, float((1.0 - best).max()))
    return max(0.0, worst)


def report_measures(table: pd.DataFrame, selected: np.ndarray, pool: np.ndarray,
                    pool_embeddings: Optional[np.ndarray] = None, radius_sample: int = RADIUS_SAMPLE,
                    seed: int = DEFAULT_SEED) -> dict:
    """The measures of one subset. ``selected`` and ``pool`` are (len(table),) bool; ``pool_embeddings`` the
    pool's embeddings in pool-row order (the radius is None without them)."""
    selected, pool = np.asarray(selected, dtype=bool), np.asarray(pool, dtype=bool)
    pool_rows, subset_rows = np.flatnonzero(pool), np.flatnonzero(selected & pool)
    subset_share = class_pixel_shares(table, subset_rows)
    pool_share = class_pixel_shares(table, pool_rows)
    measures = {
        "selected": int(len(subset_rows)),
        "pool": int(len(pool_rows)),
        "class_share_subset": subset_share,
        "class_share_pool": pool_share,
        "class_share_l1": float(sum(abs(subset_share[c] - pool_share[c]) for c in pool_share)),
        "clusters_covered": None,
        "clusters_in_pool": None,
        "tiles_covered": None,
        "tiles_in_pool": None,
        "coverage_radius": None,
    }
    for column, covered, total in ((FREQ_CLUSTER_ID, "clusters_covered", "clusters_in_pool"),
                                   (IMAGE_PATH, "tiles_covered", "tiles_in_pool")):
        if column in table.columns:
            values = table[column]
            measures[covered] = int(values.iloc[subset_rows].dropna().nunique())
            measures[total] = int(values.iloc[pool_rows].dropna().nunique())
    if pool_embeddings is not None and len(pool_rows):
        measures["coverage_radius"] = coverage_radius(pool_embeddings, selected[pool_rows], radius_sample, seed)
    return measures


def random_subset(pool: np.ndarray, size: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(len(pool),) bool: ``size`` pool rows drawn uniformly without replacement (seeded)."""
    pool = np.asarray(pool, dtype=bool)
    rows = np.flatnonzero(pool)
    chosen = np.zeros(len(pool), dtype=bool)
    size = int(min(max(size, 0), len(rows)))
    chosen[np.random.default_rng(seed).choice(rows, size, replace=False)] = True
    return chosen


def compare_with_random(table: pd.DataFrame, selected: np.ndarray, pool: np.ndarray,
                        pool_embeddings: Optional[np.ndarray] = None, radius_sample: int = RADIUS_SAMPLE,
                        seed: int = DEFAULT_SEED) -> dict:
    """{"method": measures of ``selected``, "random": measures of a seeded random subset of the same size}."""
    size = int(np.asarray(selected, dtype=bool)[np.asarray(pool, dtype=bool)].sum())
    return {
        "method": report_measures(table, selected, pool, pool_embeddings, radius_sample, seed),
        "random": report_measures(table, random_subset(pool, size, seed), pool, pool_embeddings, radius_sample,
                                  seed),
    }

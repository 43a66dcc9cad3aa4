"""The six coreset scoring methods and the selection steps.

Every method scores each patch of the *pool* (the patches that are not excluded) in [0, 1], higher =
picked earlier; the selection takes the top-budget scores, ties broken by the patch's row order. As
pytorch-smt-tools' ``select-coreset`` defines them (N = pool size):

- ``lc`` label complexity: class_entropy / max(class_entropy) over the pool (all 0 when every entropy is 0).
- ``cb`` class balance: greedy; each step adds the unpicked patch that maximises the entropy of the summed
  class distribution of the picked set; the t-th pick (t = 1, 2, ...) scores (N − t)/(N − 1), unpicked 0;
  stops at the budget. See :func:`cb_order` for how it stays fast (exact, lazy evaluation).
- ``fd`` feature diversity: KMeans on the embeddings (k by elbow over fd_k_min..fd_k_max, or by the Vendi
  score), then round-robin over the clusters in a seeded random cluster order, a seeded random order inside
  each cluster; the patch at pick position i (0-based) scores (N − 1 − i)/(N − 1).
- ``fa`` feature activation: mean μ and standard deviation σ of each embedding over its dimensions, each
  min-max scaled over the pool (a constant scales to 0); score μ̂ · σ̂.
- ``lc_fd``: the top m patches by ``fd`` (``lc_fd_cutoff_m``, default 10% of N), then the rest in ``lc``
  order; positional scores as ``fd``.
- ``fa_cb``: λ · fa + (1 − λ) · cb (``fa_cb_lambda``, default 0.5), cb run to the budget.

A pool of one patch scores 1 under the positional methods (cb, fd, lc_fd).
"""

from __future__ import annotations

import heapq
import math
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..contract import CORESET_METHODS, FILL_STEP, VECTOR_STEP
from ..errors import BalancedSamplingError
from ..i18n import _
from ..progress import Progress, as_progress

DEFAULT_FD_K_MIN = 2
DEFAULT_FD_K_MAX = 20
DEFAULT_FD_VENDI_DELTA = 0.005
DEFAULT_LC_FD_FRACTION = 0.1
DEFAULT_FA_CB_LAMBDA = 0.5
DEFAULT_SEED = 42
#: The k of fd is chosen on a seeded sample of at most this many patches (the final KMeans sees them all).
FD_K_SAMPLE = 10_000
#: cb gains are compared rounded to this many decimals, so gains equal in exact arithmetic but apart by
#: floating-point rounding (e.g. permuted share vectors) tie, and the lower index wins.
CB_TIE_DECIMALS = 9
#: The cb greedy counts, over windows of this many picks, the gains it recomputes; after a window that
#: recomputed more than 1/CB_VECTOR_RATIO of the candidates per pick, it evaluates every candidate at once in
#: numpy for the next window.
CB_WINDOW = 32
CB_VECTOR_RATIO = 32
#: The longest run of vectorised picks between two tries of the lazy evaluation.
CB_MAX_STRETCH = 8192


# --------------------------------------------------------------------------- helpers


def positional_scores(order: np.ndarray, n: int) -> np.ndarray:
    """Scores of a pick order over a pool of ``n``: the i-th pick (0-based) scores (n − 1 − i)/(n − 1);
    patches not in ``order`` score 0; a pool of one scores 1."""
    scores = np.zeros(n, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    if n == 1:
        scores[order] = 1.0
    elif n > 1:
        scores[order] = (n - 1 - np.arange(len(order), dtype=np.float64)) / (n - 1)
    return scores


def unit_scale(values: np.ndarray) -> np.ndarray:
    """Min-max scaled to [0, 1]; a constant (or empty) array scales to 0."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values.copy()
    low, span = values.min(), values.max() - values.min()
    return (values - low) / span if span > 0 else np.zeros_like(values)


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties in index order."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.lexsort((np.arange(len(scores)), -scores))


def class_shares(classes: np.ndarray) -> np.ndarray:
    """(N, C) class proportions as shares: each row divided by its sum; missing (NaN) and negative values
    count as 0; a row with no class share stays all 0."""
    shares = np.nan_to_num(np.asarray(classes, dtype=np.float64), nan=0.0)
    shares = np.where(shares > 0, shares, 0.0)
    totals = shares.sum(axis=1, keepdims=True)
    return np.divide(shares, totals, out=np.zeros_like(shares), where=totals > 0)


# --------------------------------------------------------------------------- lc


def lc_scores(entropy: np.ndarray) -> np.ndarray:
    """class_entropy / max(class_entropy) over the pool; all 0 when the largest entropy is 0."""
    entropy = np.asarray(entropy, dtype=np.float64)
    if entropy.size == 0:
        return entropy.copy()
    top = entropy.max()
    return entropy / top if top > 0 else np.zeros_like(entropy)


# --------------------------------------------------------------------------- cb


def _xlogx(x: float) -> float:
    return x * math.log(x) if x > 0 else 0.0


def cb_order(classes: np.ndarray, budget: int, progress: Optional[Progress] = None,
             start: Optional[np.ndarray] = None) -> np.ndarray:
    """The greedy class-balance picks: ``budget`` pool indices in pick order.

    ``start`` (C,): summed class shares of patches picked before (e.g. by a vector step); the greedy then
    balances the whole picked set, those patches included (None = an empty start).

    Each step adds the patch p that maximises the entropy H of the summed class distribution S + p of the
    picked set (each patch's class vector taken as shares, see :func:`class_shares`), ties to the lowest
    index. Exact, yet without evaluating every candidate at every pick:

    - Every share vector sums to 1, so H(S + p) = log(M + 1) − Σ_c f(S_c + p_c) / (M + 1) with f(x) = x log x
      and M the number of picks: maximising H is minimising the gain D_S(p) = Σ_c [f(S_c + p_c) − f(S_c)].
    - f is convex, so each term f(S_c + p_c) − f(S_c) never decreases as S_c grows, and S only grows: a gain
      computed at an earlier pick is a lower bound of the gain now. The candidates sit in a heap keyed by
      (gain when last computed, index); the top is recomputed until a freshly computed one stays on top,
      which is then the exact minimum (lazy greedy). Each pick recomputes a handful of candidates instead
      of all N, O(nnz) each (only the classes a patch holds).
    - Patches with identical share vectors form one heap entry (picked in index order), so a pool of many
      pure-background patches costs one entry.

    The picks are those of evaluating every candidate at every step with gains rounded to
    :data:`CB_TIE_DECIMALS` decimals (rounding is monotone, so stale gains stay lower bounds); gains apart by
    less than that tie and the lower index wins.

    Cost: a pick recomputes the candidates whose stale gain lies within the pick's gain increase of the top.
    When patches hold few classes (masks: mostly background plus one to three classes) that is a handful
    (155 000 patches, budget 50%: about 25 s on 2 cores). When most patches hold every class in similar
    shares the gains are nearly flat once the sums are balanced, and a pick may recompute a large part of
    the pool, one candidate at a time in Python. The greedy measures this over windows of
    :data:`CB_WINDOW` picks: after a window that recomputed more than 1/:data:`CB_VECTOR_RATIO` of the
    candidates per pick, it evaluates every remaining group at once in numpy (O(G·C) per pick, G distinct
    share vectors) for a stretch of picks that doubles while the lazy evaluation stays costly, rebuilding
    the heap from those gains before each new try. Both modes pick the same patches. Measured on 2 shared
    cores, budget 50%: sparse mixes 155 000 patches in about 30 s; dense mixes (8 classes in every patch)
    20 000 patches in 17 s, 50 000 in 65 s (roughly quadratic there: 155 000 take minutes).

    Patches without any class share (all 0 / NULL) have no
    distribution: they are picked after all others, in index order.
    """
    progress = as_progress(progress)
    shares = class_shares(classes)
    n = len(shares)
    budget = int(min(max(budget, 0), n))
    if budget == 0:
        return np.zeros(0, dtype=np.int64)
    valid = np.flatnonzero(shares.sum(axis=1) > 0)
    empty = np.flatnonzero(shares.sum(axis=1) <= 0)
    if len(valid) == 0:
        return empty[:budget]
    state = _CbState(shares[valid], valid, start)
    target = min(budget, len(valid))
    stretch = CB_WINDOW
    while len(state.picks) < target:
        window = min(CB_WINDOW, target - len(state.picks))
        recomputed = state.lazy_picks(window)
        progress.update(len(state.picks), budget)
        if recomputed * CB_VECTOR_RATIO > window * max(1, state.live_groups()):
            # flat gains: vectorised picks for a while, twice as long each time the lazy ones stay costly
            state.vectorised_picks(min(stretch, target - len(state.picks)))
            progress.update(len(state.picks), budget)
            stretch = min(2 * stretch, CB_MAX_STRETCH)
        else:
            stretch = CB_WINDOW
    picks = state.picks
    if len(picks) < budget:
        picks.extend(empty[:budget - len(picks)].tolist())
    progress.update(budget, budget)
    return np.asarray(picks, dtype=np.int64)


class _CbState:
    """The cb greedy's state: distinct share vectors (groups), their unpicked members, the summed shares, and
    a heap of (gain lower bound, first unpicked member, group, pick count when the gain was computed)."""

    def __init__(self, shares: np.ndarray, rows: np.ndarray, start: Optional[np.ndarray] = None):
        groups, inverse = np.unique(shares, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        by_group = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_group], np.arange(len(groups) + 1))
        self.groups = groups
        self.members = [rows[by_group[bounds[g]:bounds[g + 1]]].tolist() for g in range(len(groups))]
        self.sparse = [[(int(c), float(groups[g, c])) for c in np.flatnonzero(groups[g])]
                       for g in range(len(groups))]
        self.cursor = [0] * len(groups)
        totals = np.zeros(groups.shape[1]) if start is None else np.asarray(start, dtype=np.float64)
        self.totals = totals.tolist()
        self.flogs = [_xlogx(t) for t in self.totals]  # f(S_c)
        self.picks: list[int] = []
        # gain at the start: Σ_c f(S_c + p_c) − f(S_c) (at S = 0: −H(p))
        summed = totals[None, :] + groups
        terms = np.where(groups > 0, summed * np.log(np.where(summed > 0, summed, 1.0)) - np.asarray(self.flogs), 0.0)
        self._rebuild(np.arange(len(groups)), np.round(terms.sum(axis=1), CB_TIE_DECIMALS), 0)

    def _rebuild(self, live: np.ndarray, gains: np.ndarray, computed: int) -> None:
        self.heap = [(float(gain), self.members[g][self.cursor[g]], int(g), computed)
                     for g, gain in zip(live.tolist(), gains.tolist())]
        heapq.heapify(self.heap)

    def live_groups(self) -> int:
        return len(self.heap)

    def _take(self, g: int) -> None:
        self.picks.append(self.members[g][self.cursor[g]])
        for c, share in self.sparse[g]:
            self.totals[c] += share
            self.flogs[c] = _xlogx(self.totals[c])
        self.cursor[g] += 1

    def lazy_picks(self, count: int) -> int:
        """Pick ``count`` patches by lazy evaluation; return how many gains were recomputed."""
        heap, sparse, totals, flogs, picks = self.heap, self.sparse, self.totals, self.flogs, self.picks
        goal = len(picks) + count
        recomputed = 0
        while len(picks) < goal and heap:
            gain, index, g, computed = heap[0]
            if computed != len(picks):  # stale: a lower bound; recompute at the current sums
                fresh = 0.0
                for c, share in sparse[g]:
                    fresh += _xlogx(totals[c] + share) - flogs[c]
                heapq.heapreplace(heap, (round(fresh, CB_TIE_DECIMALS), index, g, len(picks)))
                recomputed += 1
                continue
            heapq.heappop(heap)
            self._take(g)
            if self.cursor[g] < len(self.members[g]):
                heapq.heappush(heap, (gain, self.members[g][self.cursor[g]], g, computed))
        return recomputed

    def vectorised_picks(self, count: int) -> None:
        """Pick ``count`` patches evaluating every remaining group at each pick; then rebuild the heap."""
        live = np.array(sorted(entry[2] for entry in self.heap), dtype=np.int64)
        next_index = np.array([self.members[g][self.cursor[g]] for g in live], dtype=np.int64)
        groups = self.groups[live]
        present = groups > 0
        keep = np.ones(len(live), dtype=bool)
        gains = np.zeros(len(live))
        goal = len(self.picks) + count
        while len(self.picks) < goal and keep.any():
            summed = np.asarray(self.totals)[None, :] + groups
            terms = np.where(present, summed * np.log(np.where(summed > 0, summed, 1.0)) - np.asarray(self.flogs),
                             0.0)
            gains = np.where(keep, np.round(terms.sum(axis=1), CB_TIE_DECIMALS), np.inf)
            tied = np.flatnonzero(gains == gains.min())
            position = int(tied[np.argmin(next_index[tied])])
            g = int(live[position])
            self._take(g)
            if self.cursor[g] < len(self.members[g]):
                next_index[position] = self.members[g][self.cursor[g]]
            else:
                keep[position] = False
        # the last gains were computed before the last pick: lower bounds now, as stale heap keys must be
        self._rebuild(live[keep], gains[keep], -1)


def cb_scores(classes: np.ndarray, budget: int, progress: Optional[Progress] = None,
              start: Optional[np.ndarray] = None) -> np.ndarray:
    """(N − t)/(N − 1) for the t-th greedy pick (:func:`cb_order`), 0 for patches not picked."""
    return positional_scores(cb_order(classes, budget, progress, start), len(classes))


# --------------------------------------------------------------------------- fd


def vendi_score(vectors: np.ndarray) -> float:
    """The Vendi score of a set of vectors under the cosine-similarity kernel: exp of the Shannon entropy
    of the eigenvalues of K / n (1 = all alike, n = all orthogonal)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) == 0:
        return 0.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    eigenvalues = np.linalg.eigvalsh(unit @ unit.T / len(vectors))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-(eigenvalues * np.log(eigenvalues)).sum()))


def _kmeans(rows: np.ndarray, k: int, seed: int, n_init: int = 3):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    # One OpenMP thread, as in composition: KMeans' barriers stall on few shared cores.
    with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("ignore")  # ConvergenceWarning on near-duplicate rows
        return KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(rows)


def fd_k(embeddings: np.ndarray, k_min: int = DEFAULT_FD_K_MIN, k_max: int = DEFAULT_FD_K_MAX,
         use_vendi: bool = False, vendi_delta: float = DEFAULT_FD_VENDI_DELTA, seed: int = DEFAULT_SEED,
         progress: Optional[Progress] = None) -> int:
    """The number of fd clusters, chosen on a seeded sample of at most :data:`FD_K_SAMPLE` patches.

    Elbow (default): KMeans inertia (one seeded k-means++ start per k) for k = k_min..k_max, the k at the elbow
    (:func:`~balanced_sampling_plugin.composition.elbow_k`). Vendi (``use_vendi``): k grows from k_min while
    the Vendi score of the k centroids still grows by at least ``vendi_delta`` (relative) at k + 1. k_max is
    capped at the number of distinct embeddings; a pool with fewer distinct embeddings than k_min gets that
    number.
    """
    from ..composition import elbow_k

    progress = as_progress(progress)
    k_min, k_max = int(k_min), int(k_max)
    if k_min < 1 or k_max < k_min:
        raise BalancedSamplingError(_("fd needs 1 <= fd_k_min <= fd_k_max; got fd_k_min={k_min}, fd_k_max={k_max}.")
                                    .format(k_min=k_min, k_max=k_max))
    rows = np.asarray(embeddings, dtype=np.float32)
    if len(rows) > FD_K_SAMPLE:
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), FD_K_SAMPLE, replace=False))]
    distinct = len(np.unique(rows, axis=0))
    top = min(k_max, distinct)
    if top <= k_min:
        return max(1, top)
    ks = list(range(k_min, top + 1))
    if use_vendi:
        previous = None
        for i, k in enumerate(ks):
            progress.update(i, len(ks))
            score = vendi_score(_kmeans(rows, k, seed, n_init=1).cluster_centers_)
            if previous is not None and score - previous[1] < vendi_delta * previous[1]:
                return previous[0]
            previous = (k, score)
        return ks[-1]
    inertias = []
    for i, k in enumerate(ks):
        progress.update(i, len(ks))
        inertias.append(_kmeans(rows, k, seed, n_init=1).inertia_)
    return elbow_k(ks, inertias)


def round_robin(labels: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Pool indices in round-robin order over the clusters of ``labels``: clusters in a seeded random order,
    each cluster's patches in a seeded random order; exhausted clusters are skipped."""
    labels = np.asarray(labels)
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    clusters, inverse = np.unique(labels, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    cluster_position = np.empty(len(clusters), dtype=np.int64)
    cluster_position[rng.permutation(len(clusters))] = np.arange(len(clusters))
    rank = np.empty(n, dtype=np.int64)
    for c in range(len(clusters)):
        members = np.flatnonzero(inverse == c)
        rank[members[rng.permutation(len(members))]] = np.arange(len(members))
    return np.lexsort((cluster_position[inverse], rank))


def fd_order(embeddings: np.ndarray, k_min: int = DEFAULT_FD_K_MIN, k_max: int = DEFAULT_FD_K_MAX,
             use_vendi: bool = False, vendi_delta: float = DEFAULT_FD_VENDI_DELTA, seed: int = DEFAULT_SEED,
             progress: Optional[Progress] = None) -> tuple[np.ndarray, int]:
    """(fd pick order over the pool, the k used)."""
    progress = as_progress(progress)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    n = len(embeddings)
    if n <= 1:
        return np.arange(n, dtype=np.int64), n
    k = fd_k(embeddings, k_min, k_max, use_vendi, vendi_delta, seed, progress.child(0.0, 0.6))
    labels = np.zeros(n, dtype=np.int64) if k <= 1 else _kmeans(embeddings, k, seed).labels_
    progress.update(1, 1)
    return round_robin(labels, seed), k


# --------------------------------------------------------------------------- fa


def fa_scores(embeddings: np.ndarray) -> np.ndarray:
    """μ̂ · σ̂: each embedding's mean and standard deviation over its dimensions, min-max scaled over the pool."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if len(embeddings) == 0:
        return np.zeros(0)
    return unit_scale(embeddings.mean(axis=1)) * unit_scale(embeddings.std(axis=1))


# --------------------------------------------------------------------------- lc_fd


def lc_fd_order(fd: np.ndarray, lc: np.ndarray, cutoff_m: Optional[int] = None) -> np.ndarray:
    """The first ``cutoff_m`` patches of the fd order ``fd``, then the rest by descending lc score (ties in
    index order). ``cutoff_m`` None: 10% of the pool (rounded, at least 1)."""
    n = len(lc)
    if cutoff_m is None:
        cutoff_m = max(1, int(math.floor(DEFAULT_LC_FD_FRACTION * n + 0.5))) if n else 0
    m = int(min(max(int(cutoff_m), 0), n))
    head = np.asarray(fd, dtype=np.int64)[:m]
    rest = np.ones(n, dtype=bool)
    rest[head] = False
    tail = rank_order(np.where(rest, lc, -np.inf))[:n - m]
    return np.concatenate([head, tail])


# --------------------------------------------------------------------------- one entry point


@dataclass
class CoresetScores:
    """Scores of one method over the pool, and what the run decided (for the log)."""

    scores: np.ndarray
    method: str
    details: dict = field(default_factory=dict)


def check_method(method: str) -> str:
    if method not in CORESET_METHODS:
        raise BalancedSamplingError(_("Unknown coreset method {value}; choose one of {choices}.").format(
            value=repr(method), choices=", ".join(CORESET_METHODS)))
    return method


def score_pool(method: str, budget: int, *, entropy: Optional[np.ndarray] = None,
               classes: Optional[np.ndarray] = None, embeddings: Optional[np.ndarray] = None,
               fd_k_min: int = DEFAULT_FD_K_MIN, fd_k_max: int = DEFAULT_FD_K_MAX, fd_use_vendi: bool = False,
               fd_vendi_delta: float = DEFAULT_FD_VENDI_DELTA, lc_fd_cutoff_m: Optional[int] = None,
               fa_cb_lambda: float = DEFAULT_FA_CB_LAMBDA, seed: int = DEFAULT_SEED,
               cb_start: Optional[np.ndarray] = None, progress: Optional[Progress] = None) -> CoresetScores:
    """Score the pool (arrays in pool order) by ``method``; ``budget`` patches (cb stops there).

    entropy : (N,) class_entropy, for lc and lc_fd. classes : (N, C) class proportions, for cb and fa_cb.
    embeddings : (N, D), for fd, fa, lc_fd and fa_cb.
    cb_start : (C,) summed class shares of patches picked before the pool (cb and fa_cb start from them).
    """
    check_method(method)
    progress = as_progress(progress)
    needs = {"lc": ("entropy",), "cb": ("classes",), "fd": ("embeddings",), "fa": ("embeddings",),
             "lc_fd": ("entropy", "embeddings"), "fa_cb": ("classes", "embeddings")}[method]
    given = {"entropy": entropy, "classes": classes, "embeddings": embeddings}
    for name in needs:
        if given[name] is None:
            raise BalancedSamplingError(_("Coreset method {method} needs the {what}.").format(
                method=method, what={"entropy": _("class entropy"), "classes": _("class proportions"),
                                     "embeddings": _("DINOv2 embeddings")}[name]))
    if not 0 <= float(fa_cb_lambda) <= 1:
        raise BalancedSamplingError(_("fa_cb_lambda must lie in [0, 1]; got {value}.").format(value=fa_cb_lambda))
    details: dict = {}
    if method == "lc":
        scores = lc_scores(entropy)
    elif method == "cb":
        scores = cb_scores(classes, budget, progress, cb_start)
    elif method == "fa":
        scores = fa_scores(embeddings)
    elif method == "fa_cb":
        cb = cb_scores(classes, budget, progress.child(0.0, 0.9), cb_start)
        scores = float(fa_cb_lambda) * fa_scores(embeddings) + (1 - float(fa_cb_lambda)) * cb
        top = np.argsort(-scores, kind="stable")[:int(budget)]
        if 0 < fa_cb_lambda < 1 and len(scores) > budget and (cb[top] > 0).all() and np.count_nonzero(cb) == len(top):
            # cb's positional scores of its picks, (N - t)/(N - 1), mostly outweigh fa's product of two scaled values
            progress.info(_("fa_cb with fa_cb_lambda {value:g} picks the same patches as cb: the fa term changed "
                            "only their order. Raise fa_cb_lambda (e.g. 0.9) to let feature activation change the "
                            "subset.").format(value=float(fa_cb_lambda)))
    else:
        order, k = fd_order(embeddings, fd_k_min, fd_k_max, fd_use_vendi, fd_vendi_delta, seed, progress)
        details["k"] = k
        if method == "lc_fd":
            order = lc_fd_order(order, lc_scores(entropy), lc_fd_cutoff_m)
        scores = positional_scores(order, len(embeddings))
    progress.update(1, 1)
    return CoresetScores(np.asarray(scores, dtype=np.float64), method, details)


# --------------------------------------------------------------------------- the steps


@dataclass
class Selection:
    """The outcome over the whole table (row order): selected rows, the step that took each ('' when not
    selected), the rows in selection order, and the budget asked for."""

    selected: np.ndarray
    step: np.ndarray
    order: np.ndarray
    budget: int

    @property
    def n_selected(self) -> int:
        return int(self.selected.sum())


def select_steps(n_rows: int, pool: np.ndarray, budget: int, method: str, scores: np.ndarray, *,
                 vector_rows: Optional[Sequence[int]] = None, method_budget: Optional[int] = None,
                 method_pool: Optional[np.ndarray] = None, fill_scores: Optional[np.ndarray] = None,
                 diversity=None, progress: Optional[Progress] = None) -> Selection:
    """Select up to ``budget`` rows of the pool in steps.

    1. ``vector``: the rows of ``vector_rows`` (e.g. footprints over mapped rare-class polygons) that are in
       the pool, by descending method score, up to the budget.
    2. the method: pool rows (of ``method_pool`` when given) by descending ``scores``, until ``method_budget``
       more rows (default: the rest of the budget).
    3. ``fill``: what is left of the budget, by descending ``fill_scores`` (class entropy) over the pool.

    Arrays are over the whole table (``n_rows``); ``scores`` / ``fill_scores`` are read on pool rows only.
    ``diversity`` (see :mod:`.spatial`) may refuse a row; a refused row is never taken by a later step
    either, so the subset may stay below the budget (the caller says so). Ties go to the lower row.
    """
    progress = as_progress(progress)
    pool = np.asarray(pool, dtype=bool)
    selected = np.zeros(n_rows, dtype=bool)
    refused = np.zeros(n_rows, dtype=bool)
    step = np.full(n_rows, "", dtype=object)
    order: list[int] = []
    budget = int(min(budget, pool.sum()))
    scores = np.where(pool, np.asarray(scores, dtype=np.float64), -np.inf)

    def take(rows, name, limit):
        taken = 0
        for row in rows:
            if len(order) >= budget or taken >= limit:
                break
            row = int(row)
            if selected[row] or refused[row] or not pool[row]:
                continue
            if diversity is not None and not diversity.try_add(row):
                refused[row] = True
                continue
            selected[row] = True
            step[row] = name
            order.append(row)
            taken += 1

    if vector_rows is not None and len(vector_rows):
        rows = np.unique(np.asarray(vector_rows, dtype=np.int64))
        rows = rows[pool[rows]]
        take(rows[rank_order(scores[rows])], VECTOR_STEP, budget)
    progress.update(1, 3)
    candidates = pool if method_pool is None else pool & np.asarray(method_pool, dtype=bool)
    rows = np.flatnonzero(candidates)
    take(rows[rank_order(scores[rows])], method, budget if method_budget is None else int(method_budget))
    progress.update(2, 3)
    if len(order) < budget and fill_scores is not None:
        rows = np.flatnonzero(pool)
        take(rows[rank_order(np.asarray(fill_scores, dtype=np.float64)[rows])], FILL_STEP, budget)
    progress.update(3, 3)
    return Selection(selected, step, np.asarray(order, dtype=np.int64), budget)

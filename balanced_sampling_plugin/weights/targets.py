"""Weights that reach the class shares a user asks for, at the largest effective sample size.

Notation (n included patches, C classes)
----------------------------------------
p : (n, C) share of each class among the valid (non-nodata) pixels of a patch.
v : (n,) valid pixels of each patch (``patch_size**2 * (1 - nodata_ratio)``, or 1 when unknown).
w : (n,) weights in mean-1 units, ``sum(w) == n``; ``ess = n**2 / sum(w**2)`` (Kish).
S_c(w) = sum_i w_i v_i p_ic / sum_i w_i v_i : the expected share of class c among the valid
pixels drawn per epoch (:func:`pixel_class_shares`).

The problem
-----------
Minimise ``sum(w**2)`` (i.e. maximise the ESS) subject to ``sum(w) = n``, ``S_c(w) = t_c`` for the
targeted classes, ``S_c(w) >= tau`` for bounded ones and ``floor <= w_i <= cap``. ``S_c(w) = t_c`` is
the linear ``sum_i w_i v_i (p_ic - t_c) = 0``, so the problem is a convex quadratic programme, and its
KKT conditions give the solution the form ``w_i = clip(a + sum_c mu_c v_i (p_ic - t_c), floor, cap)``:
only the C + 1 multipliers are unknown. They maximise the concave dual, solved here with scipy
(``trust-exact`` with the exact Hessian for equalities, ``L-BFGS-B`` where multipliers of
inequalities are bounded at 0); the cost is a few (n, C) matrix products per iteration, so ten
million patches stay cheap.

Three ways to ask (:func:`solve_target`): exact shares at the largest ESS; as balanced as the data
allows (the largest smallest-class share) at ESS >= min_ess * n; one class as high as the data
allows at ESS >= min_ess * n. A target no weighting reaches (outside the convex hull of the
patches' class vectors, or out of reach with the floor or the cap) is replaced by the nearest
reachable shares, and the outcome says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

from ..errors import BalancedSamplingError
from ..i18n import _

#: A class share counts as reached when within this of its target (fraction, i.e. 0.0001 pp).
SHARE_TOLERANCE = 1e-6
#: Default smallest ESS / n of "as balanced as the data allows" and of a class lift.
DEFAULT_MIN_ESS = 0.5
#: Rows per block of the (n, K) products: bounds the memory of ten-million-patch problems.
_BLOCK_ROWS = 1 << 20
#: Bisection steps toward the nearest reachable shares.
_BISECTION_STEPS = 24


@dataclass(frozen=True)
class TargetSolution:
    """The outcome of :func:`solve_target`.

    Attributes
    ----------
    weights : (n,) float, mean 1, every value in ``[floor, cap]``.
    shares : (C,) the pixel shares the weights draw (:func:`pixel_class_shares`).
    ess_ratio : ESS / n of the weights.
    requested : class index -> share asked for (exact targets); empty for the other two asks.
    reached : class index -> share reached for the requested classes (the nearest reachable
        shares when ``reachable`` is False).
    reachable : False when the request was out of reach and the nearest reachable one was used.
    """

    weights: np.ndarray
    shares: np.ndarray
    ess_ratio: float
    requested: dict = field(default_factory=dict)
    reached: dict = field(default_factory=dict)
    reachable: bool = True


def pixel_class_shares(proportions, valid_pixels, weights) -> np.ndarray:
    """(C,) expected share of each class among the valid pixels drawn: ``S_c(w)``.

    ``proportions`` (n, C), ``valid_pixels`` (n,) and ``weights`` (n,) non-negative; patches with a
    weight of 0 are ignored (their proportions may be NaN).
    """
    p, v, w = _as_arrays(proportions, valid_pixels, weights)
    drawn = w > 0
    mass = w[drawn] * v[drawn]
    if not mass.sum() > 0:
        raise BalancedSamplingError(_("The drawn patches have no valid pixel, so class shares are undefined."))
    return mass @ p[drawn] / mass.sum()


def solve_target(
    proportions,
    valid_pixels=None,
    *,
    targets: Optional[Mapping[int, float]] = None,
    lift_class: Optional[int] = None,
    min_ess: float = DEFAULT_MIN_ESS,
    floor: float = 1e-3,
    cap: Optional[float] = None,
) -> TargetSolution:
    """Weights for one of the three asks; see the module docstring.

    Parameters
    ----------
    proportions : (n, C) class shares per patch (rows sum to 1, or are all 0 for patches without
        valid pixels).
    valid_pixels : (n,) valid pixels per patch; None = all equal.
    targets : column index -> target share in [0, 1]; the classes not named are free. Exact shares
        at the largest ESS (``min_ess`` is not used).
    lift_class : column index of the class to raise as far as ESS >= ``min_ess * n`` allows.
    min_ess : fraction of n in (0, 1]; with neither ``targets`` nor ``lift_class``, the smallest
        share of the present classes is raised as far as this allows.
    floor : smallest weight, in mean-1 units (> 0 keeps every patch drawable).
    cap : largest weight in mean-1 units (>= 1), or None.
    """
    p, v, _w = _as_arrays(proportions, valid_pixels, None)
    cap = np.inf if cap is None else float(cap)
    if not 0 < floor <= 1 or not cap >= 1:
        raise BalancedSamplingError(_("The weight floor must be in (0, 1] and the cap at least 1 (mean-1 units); "
                                      "got floor {floor} and cap {cap}.").format(floor=floor, cap=cap))
    if targets is not None and lift_class is not None:
        raise BalancedSamplingError(_("Give target shares or a class to lift, not both."))
    if not 0 < min_ess <= 1:
        raise BalancedSamplingError(_("The smallest effective sample size must be a fraction in (0, 1], got "
                                      "{value}.").format(value=min_ess))
    problem = _Problem(p, v, floor, cap)
    if targets is not None:
        return problem.exact(dict(targets))
    if lift_class is not None:
        return problem.lift(int(lift_class), min_ess)
    return problem.balanced(min_ess)


def frontier(
    proportions,
    valid_pixels=None,
    *,
    points: int = 10,
    lowest_ess: float = 0.1,
    lift_class: Optional[int] = None,
    floor: float = 1e-3,
    cap: Optional[float] = None,
) -> dict:
    """What any weighting can give this dataset, as curves of (ESS / n, share), ESS / n from 1 down to ``lowest_ess``.

    Returns a dict with ``"balanced"``: (k, 2) array of (ESS / n, largest reachable smallest share of
    the present classes), ``"lift"``: (k, 2) array of (ESS / n, largest reachable share of ``lift_class``,
    default the present class with the smallest uniform share), each sorted by ESS, and
    ``"lift_class"``: the column index lifted. Each curve takes one search for its share at
    ``lowest_ess`` and one solve per point at evenly spaced shares below it.
    """
    p, v, _w = _as_arrays(proportions, valid_pixels, None)
    problem = _Problem(p, v, floor, np.inf if cap is None else float(cap))
    present = problem.present
    if lift_class is None:
        lift_class = int(present[np.argmin(problem.uniform_shares[present])])
    curves = {"lift_class": lift_class}
    for name, start, bound, solve, share in (
        ("balanced", problem.uniform_shares[present].min(), problem.top_balanced(), problem.min_norm_balanced,
         lambda solution: solution.shares[present].min()),
        ("lift", problem.uniform_shares[lift_class], problem.top_single(lift_class),
         lambda tau, x0: problem.min_norm_single(lift_class, tau, x0), lambda solution: solution.shares[lift_class]),
    ):
        top = share(problem._bisect(start, bound, lowest_ess, solve))
        rows, x0 = [(1.0, start)], None
        for tau in np.linspace(start, top, points + 1)[1:]:
            solution, x0 = solve(tau, x0)
            if solution is None:
                break
            rows.append((solution.ess_ratio, tau))
        curves[name] = np.array(sorted(rows))
    return curves


def parse_targets(text: str, class_values: Sequence[int]) -> dict:
    """``"1:0.5, 2:0.1"`` -> {column index: share}; empty text -> {} (as balanced as the data allows).

    Shares may be fractions or percentages ("2:8%"). Raises naming the bad item and the classes known.
    """
    values = [int(c) for c in class_values]
    targets = {}
    for item in filter(None, (part.strip() for part in str(text or "").replace(";", ",").split(","))):
        key, sep, share = item.partition(":")
        try:
            value = int(key.strip())
            percent = share.strip().endswith("%")
            number = float(share.strip().rstrip("%")) / (100 if percent else 1)
        except ValueError:
            number, sep = None, ""
        if not sep or number is None:
            raise BalancedSamplingError(_("Target share '{item}' is not of the form class:share (e.g. 5:0.08 or "
                                          "5:8%).").format(item=item))
        targets[value] = number
    return target_indices(targets, values)


def target_indices(targets: Mapping, class_values: Sequence[int]) -> dict:
    """Class value -> share, checked, as column index -> share."""
    values = [int(c) for c in class_values]
    checked = {}
    for value, share in targets.items():
        if int(value) not in values:
            raise BalancedSamplingError(_("Target class {value} has no proportion field; the classes found are "
                                          "{values}.").format(value=value, values=values))
        share = float(share)
        if not 0 <= share <= 1:
            raise BalancedSamplingError(_("Target share of class {value} is {share}; a share is between 0 and 1 "
                                          "(or 0% and 100%).").format(value=value, share=share))
        checked[values.index(int(value))] = share
    total = sum(checked.values())
    if total > 1 + 1e-9 or (len(checked) == len(values) and abs(total - 1) > 1e-3):
        raise BalancedSamplingError(_("The target shares add up to {total:.4g}; they must add up to 1 when every "
                                      "class is named, and to at most 1 otherwise.").format(total=total))
    return checked


# --------------------------------------------------------------------------- internals


def _as_arrays(proportions, valid_pixels, weights):
    p = np.asarray(proportions, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0:
        raise BalancedSamplingError(_("Class proportions must be a non-empty (patches, classes) array, got shape "
                                      "{shape}.").format(shape=p.shape))
    v = np.ones(p.shape[0]) if valid_pixels is None else np.asarray(valid_pixels, dtype=float)
    if v.shape != (p.shape[0],) or not (np.isfinite(v) & (v >= 0)).all():
        raise BalancedSamplingError(_("Valid pixel counts must be (patches,) numbers >= 0."))
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and w.shape != v.shape:
        raise BalancedSamplingError(_("Got {n} patches but {w} weights.").format(n=v.size, w=w.size))
    return np.nan_to_num(p), v, w


class _Problem:
    """One dataset's minimum-norm problems; see the module docstring."""

    def __init__(self, p, v, floor, cap):
        self.p, self.floor, self.cap = p, float(floor), float(cap)
        self.n = p.shape[0]
        if not v.sum() > 0:
            raise BalancedSamplingError(_("No included patch has a valid pixel: class shares cannot be balanced."))
        self.v = v / v[v > 0].mean()  # scaled: the constraint rows stay O(1)
        self.uniform_shares = self.v @ p / self.v.sum()
        self.present = np.flatnonzero(self.uniform_shares > 0)

    # ---- the three asks

    def exact(self, targets: dict) -> TargetSolution:
        t = dict(targets)
        solution, _x = self._min_norm_exact(t, None)
        if solution is not None:
            return self._with_request(solution, targets, t, True)
        # Out of reach: the nearest shares the convex hull of the patches holds, then moved toward
        # the uniform shares (always reachable) until the floor and cap allow them.
        nearest = self._nearest_in_hull(targets)

        def toward_uniform(fraction):
            return {c: (1 - fraction) * nearest[c] + fraction * self.uniform_shares[c] for c in targets}

        best, _x = self._min_norm_exact(toward_uniform(0.0), None)
        if best is None:
            # the uniform shares are always reached (w = 1): bisect for the smallest move toward them
            best, _x = self._min_norm_exact(toward_uniform(1.0), None)
            low, high = 0.0, 1.0
            for _step in range(_BISECTION_STEPS):
                middle = (low + high) / 2
                solution, _x = self._min_norm_exact(toward_uniform(middle), None)
                if solution is None:
                    low = middle
                else:
                    best, high = solution, middle
                if high - low < 1e-6:
                    break
        if best is None:  # not even the uniform shares converged: uniform weights
            best, _x = self._min_norm_exact({}, None)
        return self._with_request(best, targets, {c: best.shares[c] for c in targets}, False)

    def balanced(self, min_ess: float) -> TargetSolution:
        return self._bisect(self.uniform_shares[self.present].min(), self.top_balanced(), min_ess,
                            self.min_norm_balanced)

    def lift(self, column: int, min_ess: float) -> TargetSolution:
        if not 0 <= column < self.p.shape[1]:
            raise BalancedSamplingError(_("The class to lift is not one of the proportion fields."))
        return self._bisect(self.uniform_shares[column], self.top_single(column), min_ess,
                            lambda tau, x0: self.min_norm_single(column, tau, x0))

    # ---- one minimum-norm solve each

    def min_norm_single(self, column: int, tau: float, x0):
        return self._min_norm_exact({column: tau}, x0)

    def min_norm_balanced(self, tau: float, x0):
        """Largest ESS with every present class's share >= tau.

        An active-set loop over exact solves: the classes held at tau are those below it under
        uniform sampling, plus any that a solve pushes below it, minus any whose multiplier turns
        negative (the share would rather be lower: the inequality is slack). Each step is one fast
        equality solve; a handful of steps suffices because rare classes are the active ones.
        """
        active = [int(c) for c in self.present if self.uniform_shares[c] < tau]
        solution = None
        for _step in range(2 * len(self.present) + 1):
            if not active:
                solution, x0 = self._min_norm_exact({}, None)
            else:
                solution, x0 = self._min_norm_exact({c: tau for c in active}, x0)
            if solution is None:
                return None, x0
            multipliers = dict(zip(sorted(active), x0[1:])) if len(active) < self.p.shape[1] else {}
            slack = [c for c, mu in multipliers.items() if mu < -1e-12]
            below = [int(c) for c in self.present
                     if c not in active and solution.shares[c] < tau - SHARE_TOLERANCE]
            if not slack and not below:
                return solution, x0
            active = sorted(set(active) - set(slack[:1]) | set(below))
        return solution, x0

    def _min_norm_exact(self, targets: dict, x0):
        columns = sorted(targets)
        if len(columns) == self.p.shape[1]:  # every class named: one row is implied by the others
            columns = columns[:-1]
        t = np.array([targets[c] for c in columns])
        rows = self.v[:, None] * (self.p[:, columns] - t)
        solution, x = self._solve(rows, n_equalities=len(columns), x0=x0)
        if solution is None or any(abs(solution.shares[c] - share) > SHARE_TOLERANCE for c, share in targets.items()):
            return None, x
        return solution, x

    # ---- bounds of the reachable shares

    def top_single(self, column: int) -> float:
        """An upper bound of the share of ``column``: its largest share in a patch with valid pixels."""
        return float(self.p[self.v > 0, column].max())

    def top_balanced(self) -> float:
        """An upper bound of the smallest present share: the shares of the present classes add up to 1."""
        return 1.0 / len(self.present)

    def _nearest_in_hull(self, targets: dict) -> dict:
        """The shares of the target classes nearest to the targets inside the hull of the patches' vectors."""
        from scipy.optimize import nnls

        columns = sorted(targets)
        rows = np.unique(np.round(self.p[self.v > 0][:, columns], 9), axis=0)
        penalty = 1e3  # weight of the "u sums to 1" row
        matrix = np.vstack([rows.T, penalty * np.ones(rows.shape[0])])
        goal = np.r_[[targets[c] for c in columns], penalty]
        u, _residual = nnls(matrix, goal, maxiter=50 * matrix.shape[1])
        u /= u.sum()
        return dict(zip(columns, u @ rows))

    # ---- the dual solve

    def _solve(self, rows: np.ndarray, n_equalities: int, x0):
        """Minimise sum(w^2) s.t. sum(w) = n, rows[:, :n_eq]^T w = 0, rows[:, n_eq:]^T w >= 0, floor <= w <= cap."""
        from scipy.optimize import minimize

        n, k = self.n, rows.shape[1] + 1
        cache = {}

        def state(lam):
            key = lam.tobytes()
            if key not in cache:
                cache.clear()
                s = lam[0] + _block_dot(rows, lam[1:])
                cache[key] = (s, np.clip(s, self.floor, self.cap))
            return cache[key]

        def dual(lam):  # the negated dual, per patch
            s, w = state(lam)
            value = (s @ w - 0.5 * (w @ w)) / n - lam[0]
            gradient = np.r_[w.sum() / n - 1, _block_tdot(rows, w) / n]
            return value, gradient

        grams = {}

        def hessian(lam):
            s, _w = state(lam)
            free = (s > self.floor) & (s < self.cap)
            h = np.empty((k, k))
            h[0, 0] = free.sum()
            h[0, 1:] = h[1:, 0] = _block_tdot(rows, free.astype(float))
            if free.sum() > n // 2:  # most patches free: the full Gram matrix (once) less the clipped rows'
                if "all" not in grams:
                    grams["all"] = _block_gram(rows, np.ones(n, dtype=bool))
                h[1:, 1:] = grams["all"] - _block_gram(rows, ~free)
            else:
                h[1:, 1:] = _block_gram(rows, free)
            return h / n + 1e-12 * np.eye(k)

        start = np.r_[1.0, np.zeros(k - 1)] if x0 is None or len(x0) != k else x0
        if n_equalities == k - 1:
            result = minimize(dual, start, jac=True, hess=hessian, method="trust-exact",
                              options={"gtol": 1e-10, "maxiter": 80})
        else:
            bounds = [(None, None)] * (1 + n_equalities) + [(0, None)] * (k - 1 - n_equalities)
            result = minimize(dual, np.maximum(start, [b[0] if b[0] is not None else -np.inf for b in bounds]),
                              jac=True, method="L-BFGS-B", bounds=bounds,
                              options={"gtol": 1e-11, "ftol": 1e-15, "maxiter": 3000, "maxcor": 30})
        _s, w = state(result.x)
        if abs(w.sum() / n - 1) > 1e-6:
            return None, result.x
        w = np.clip(w * (n / w.sum()), self.floor, self.cap)
        shares = self.v * w @ self.p / (self.v @ w)
        return TargetSolution(weights=w, shares=shares, ess_ratio=float(n / (w @ w))), result.x

    # ---- assembling answers

    def _bisect(self, low: float, high: float, min_ess: float, solve) -> TargetSolution:
        """The largest share in [low, high] whose minimum-norm solve keeps ESS >= min_ess * n.

        The ESS of the minimum-norm solve falls continuously as the share rises, so Brent's method
        on ``ess_ratio(share) - min_ess`` finds it in a few solves (an unreachable share counts as
        ESS 0).
        """
        from scipy.optimize import brentq

        found = {}

        def excess(tau):
            solution, x = solve(tau, found.get("x"))
            if solution is None:
                return -min_ess
            if solution.ess_ratio >= min_ess and tau >= found.get("tau", -1):
                found.update(solution=solution, tau=tau, x=x)
            return solution.ess_ratio - min_ess

        if excess(low) < 0 and "solution" not in found:
            return self._min_norm_exact({}, None)[0]
        if excess(high) < 0:
            brentq(excess, low, high, xtol=SHARE_TOLERANCE / 10, rtol=1e-10, maxiter=100)
        return found["solution"]

    def _with_request(self, solution, requested, reached, reachable) -> TargetSolution:
        return TargetSolution(weights=solution.weights, shares=solution.shares, ess_ratio=solution.ess_ratio,
                              requested=dict(requested), reached={c: float(s) for c, s in reached.items()},
                              reachable=reachable)


def _block_dot(matrix, vector):
    """matrix @ vector, computed in row blocks."""
    if matrix.shape[1] == 0:
        return np.zeros(matrix.shape[0])
    return np.concatenate([matrix[i:i + _BLOCK_ROWS] @ vector for i in range(0, matrix.shape[0], _BLOCK_ROWS)])


def _block_tdot(matrix, vector):
    """matrix.T @ vector, computed in row blocks."""
    total = np.zeros(matrix.shape[1])
    for i in range(0, matrix.shape[0], _BLOCK_ROWS):
        total += matrix[i:i + _BLOCK_ROWS].T @ vector[i:i + _BLOCK_ROWS]
    return total


def _block_gram(matrix, mask):
    """matrix[mask].T @ matrix[mask], computed in row blocks."""
    total = np.zeros((matrix.shape[1], matrix.shape[1]))
    for i in range(0, matrix.shape[0], _BLOCK_ROWS):
        chosen = mask[i:i + _BLOCK_ROWS]
        block = matrix[i:i + _BLOCK_ROWS]
        if not chosen.all():
            block = block[chosen]
        total += block.T @ block
    return total

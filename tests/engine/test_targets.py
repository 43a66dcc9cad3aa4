"""Balance to a target (target_shares) and the published samplers (repeat_factor, rare_class_sampling).

The minimum-norm solves are checked against scipy's generic SLSQP on the full (n-variable) problem,
which knows nothing of the closed form the engine solves through.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.weights import combine_weights, effective_sample_size, expected_class_shares
from balanced_sampling_plugin.weights.published import (
    default_min_pixels,
    rare_class_sampling_weights,
    repeat_factor_weights,
)
from balanced_sampling_plugin.weights.targets import frontier, parse_targets, pixel_class_shares, solve_target

FLOOR = 1e-3


def random_problem(seed, n=40, concentrations=(4, 1, 0.3)):
    rng = np.random.default_rng(seed)
    proportions = rng.dirichlet(concentrations, size=n)
    valid = rng.uniform(0.3, 1.0, n) * 64 * 64
    return proportions, valid


def generic_solve(objective, n, constraints, extra=0, starts=4, seed=0):
    """SLSQP over all n weights (plus ``extra`` scalars), best of a few starts."""
    rng = np.random.default_rng(seed)
    best = None
    for start in range(starts):
        x0 = np.r_[np.ones(n) + (rng.uniform(0, 0.2, n) if start else 0), np.full(extra, 0.01)]
        bounds = [(FLOOR, None)] * n + [(0, 1)] * extra
        result = minimize(objective, x0, bounds=bounds, constraints=constraints, method="SLSQP",
                          options={"maxiter": 3000, "ftol": 1e-14})
        feasible = all(np.all(abs(c["fun"](result.x)) < 1e-6) if c["type"] == "eq"
                       else np.all(c["fun"](result.x) > -1e-6) for c in constraints)
        if feasible and (best is None or result.fun < best.fun):
            best = result
    assert best is not None
    return best.x


def shares(proportions, valid, w):
    return (w * valid) @ proportions / (w * valid).sum()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_target_is_met_at_the_generic_solvers_largest_ess(seed):
    p, v = random_problem(seed)
    n = len(v)
    target = 0.15
    solution = solve_target(p, v, targets={2: target}, floor=FLOOR)
    assert solution.reachable and solution.reached == {2: pytest.approx(target, abs=1e-9)}
    assert abs(solution.shares[2] - target) < 0.002  # 0.2 percentage points (here: to 1e-6)
    assert solution.weights.min() >= FLOOR - 1e-12 and solution.weights.mean() == pytest.approx(1)
    generic = generic_solve(lambda w: w @ w, n, [
        {"type": "eq", "fun": lambda w: w.sum() - n},
        {"type": "eq", "fun": lambda w: (w * v) @ (p[:, 2] - target)},
    ])
    assert shares(p, v, generic)[2] == pytest.approx(target, abs=1e-6)
    generic_ess = n / (generic @ generic)
    assert solution.ess_ratio >= generic_ess * 0.995
    assert solution.ess_ratio == pytest.approx(generic_ess, rel=0.005)


@pytest.mark.parametrize("min_ess", [0.4, 0.7])
def test_as_balanced_as_the_data_allows_matches_the_generic_optimum(min_ess):
    p, v = random_problem(4)
    n = len(v)
    solution = solve_target(p, v, min_ess=min_ess, floor=FLOOR)
    assert solution.ess_ratio >= min_ess - 1e-6
    # generic: maximise tau over (w, tau) with every share >= tau and sum(w^2) <= n / min_ess
    z = generic_solve(lambda z: -z[-1], n, [
        {"type": "eq", "fun": lambda z: z[:-1].sum() - n},
        {"type": "ineq", "fun": lambda z: (z[:-1] * v) @ (p - z[-1])},
        {"type": "ineq", "fun": lambda z: n / min_ess - z[:-1] @ z[:-1]},
    ], extra=1)
    generic_min = shares(p, v, z[:-1]).min()
    assert solution.shares.min() == pytest.approx(generic_min, abs=2e-4)
    assert solution.shares.min() > shares(p, v, np.ones(n)).min()


def test_lift_one_class_matches_the_generic_optimum_and_the_cap_holds():
    p, v = random_problem(5)
    n = len(v)
    for cap in (None, 2.0):
        solution = solve_target(p, v, lift_class=1, min_ess=0.5, floor=FLOOR, cap=cap)
        bounds_cap = np.inf if cap is None else cap
        assert solution.weights.max() <= bounds_cap * (1 + 1e-6)
        constraints = [{"type": "eq", "fun": lambda w: w.sum() - n},
                       {"type": "ineq", "fun": lambda w: n / 0.5 - w @ w}]
        if cap is not None:
            constraints.append({"type": "ineq", "fun": lambda w, cap=cap: cap - w})
        generic = generic_solve(lambda w: -shares(p, v, w)[1], n, constraints)
        assert solution.shares[1] == pytest.approx(shares(p, v, generic)[1], abs=2e-4)
        assert solution.ess_ratio >= 0.5 - 1e-6


def test_unreachable_target_uses_the_nearest_reachable_shares():
    p, v = random_problem(6)
    top = p[:, 2].max()
    solution = solve_target(p, v, targets={2: 0.9}, floor=FLOOR)
    assert not solution.reachable
    assert solution.requested == {2: 0.9}
    # the nearest reachable share of one class is its largest share in one patch, less the floor's pull
    assert solution.reached[2] == pytest.approx(top, abs=0.002)
    assert solution.shares[2] == pytest.approx(solution.reached[2], abs=1e-6)
    # every class named: the nearest point of the hull of the patches' class vectors
    target = np.array([0.2, 0.3, 0.5])
    full = solve_target(p, v, targets=dict(enumerate(target)), floor=FLOOR)
    u = minimize(lambda u: np.square(u @ p - target).sum(), np.ones(len(v)) / len(v), bounds=[(0, None)] * len(v),
                 constraints=[{"type": "eq", "fun": lambda u: u.sum() - 1}], method="SLSQP",
                 options={"ftol": 1e-15, "maxiter": 2000}).x
    assert not full.reachable
    np.testing.assert_allclose(full.shares, u @ p, atol=0.002)


def test_combine_weights_target_shares_meets_targets_floor_and_exclusions():
    rng = np.random.default_rng(7)
    n = 60
    p = rng.dirichlet([6, 1, 0.4], size=n)
    table = pd.DataFrame({f"cls_{c}": p[:, i] for i, c in enumerate((1, 4, 6))})
    table["patch_size"] = 64
    table["nodata_ratio"] = rng.choice([0.0, 0.0, 0.5], n)
    table["excluded"] = np.arange(n) % 10 == 0
    infos = []
    result = combine_weights(table, "target_shares", target_shares="6:8%, 4:0.2",
                             progress=Progress(info=infos.append, warning=infos.append))
    weights = result.weights.to_numpy()
    included = ~table["excluded"].to_numpy()
    assert (weights[~included] == 0).all() and (weights[included] >= FLOOR - 1e-12).all()
    assert weights[included].mean() == pytest.approx(1)
    valid = 64 * 64 * (1 - table["nodata_ratio"].to_numpy())
    reached = expected_class_shares(p, weights, valid)
    assert reached[2] == pytest.approx(0.08, abs=0.002) and reached[1] == pytest.approx(0.2, abs=0.002)
    assert any("Target shares reached: cls_4 20.00%, cls_6 8.00%" in m for m in infos)
    # unreachable: said, with the shares used
    infos.clear()
    combine_weights(table, "target_shares", target_shares={6: 0.95},
                    progress=Progress(info=infos.append, warning=infos.append))
    assert any("No weighting reaches the target shares (cls_6 95.00%)" in m and "nearest reachable" in m
               for m in infos)
    assert not any("No included patch holds" in m for m in infos)
    # a class held only by excluded patches: the cause is named
    infos.clear()
    only_excluded = table.assign(cls_6=np.where(table["excluded"], table["cls_6"], 0.0))
    combine_weights(only_excluded, "target_shares", target_shares={6: 0.05},
                    progress=Progress(info=infos.append, warning=infos.append))
    assert any(m.startswith("No included patch holds cls_6, so no weighting can draw it") for m in infos), infos
    # the two other asks, through the same parameters
    lifted = combine_weights(table, "target_shares", lift_class=6, min_ess=0.5).weights.to_numpy()
    assert effective_sample_size(lifted[included]) >= 0.5 * included.sum() - 1e-6
    assert expected_class_shares(p, lifted, valid)[2] > expected_class_shares(p, included * 1.0, valid)[2] * 1.5
    capped = combine_weights(table, "target_shares", max_weight=2.5).weights.to_numpy()
    assert capped.max() <= 2.5 + 1e-9


@pytest.mark.parametrize("bad, message", [
    ({"target_shares": "6=0.1"}, "not of the form class:share"),
    ({"target_shares": "9:0.1"}, "Target class 9 has no proportion field"),
    ({"target_shares": "6:1.5"}, "a share is between 0 and 1"),
    ({"target_shares": "1:0.6,4:0.3,6:0.3"}, "add up to 1.2"),
    ({"target_shares": "6:0.1", "lift_class": 4}, "not both"),
    ({"lift_class": 9}, "Class 9 to lift has no proportion field"),
    ({"min_ess": 0}, "min_ess must be a fraction"),
    ({"max_weight": 0.5}, "max_weight must be at least 1"),
])
def test_bad_target_options_name_what_to_fix(bad, message):
    table = pd.DataFrame({"cls_1": [0.9, 0.5, 1.0], "cls_4": [0.1, 0.3, 0.0], "cls_6": [0.0, 0.2, 0.0]})
    with pytest.raises(BalancedSamplingError, match=message):
        combine_weights(table, "target_shares", **bad)


def test_parse_targets_accepts_fractions_percentages_and_empty():
    assert parse_targets("1:0.5, 6:8%", [1, 4, 6]) == {0: 0.5, 2: pytest.approx(0.08)}
    assert parse_targets("", [1, 4, 6]) == {}
    assert parse_targets(" 4 : 0.25 ; 6:0.05", [1, 4, 6]) == {1: 0.25, 2: 0.05}


def test_frontier_rises_as_the_ess_falls_and_bounds_every_method():
    p, v = random_problem(8, n=80)
    curves = frontier(p, v, points=6)
    balanced = curves["balanced"]
    assert balanced[-1, 0] == pytest.approx(1.0) and len(balanced) >= 4
    # as ESS falls (first column ascending), the reachable smallest share rises (second descending)
    assert (np.diff(balanced[:, 1]) <= 1e-9).all()
    for ess, share in balanced[1:-1]:  # each point is the optimum at its ESS
        assert solve_target(p, v, min_ess=ess).shares.min() == pytest.approx(share, abs=1e-4)
    table = pd.DataFrame({f"cls_{c}": p[:, c] for c in range(3)})
    weights = combine_weights(table, "class_balanced").weights.to_numpy()
    ess = effective_sample_size(weights) / len(weights)
    assert pixel_class_shares(p, v, weights).min() <= solve_target(p, v, min_ess=ess).shares.min()
    lift = curves["lift"]
    assert curves["lift_class"] == int(np.argmin(shares(p, v, np.ones(len(v)))))
    assert (np.diff(lift[:, 1]) <= 1e-9).all()


# ------------------------------------------------------------------ the published samplers

def test_repeat_factor_matches_its_formula_with_min_pixels():
    # 4 patches of 10 x 10 = 100 valid pixels; min_pixels 10: class 2 at 5% of d does not count
    p = np.array([[1.0, 0.0, 0.0], [0.8, 0.2, 0.0], [0.6, 0.2, 0.2], [0.95, 0.0, 0.05]])
    v = np.full(4, 100.0)
    weights, threshold = repeat_factor_weights(p, v, min_pixels=10)
    # f = (4/4, 2/4, 1/4); t = median = 0.5; r = (1, 1, sqrt(2))
    assert threshold == 0.5
    np.testing.assert_allclose(weights, [1, 1, math.sqrt(2), 1])
    weights, threshold = repeat_factor_weights(p, v, min_pixels=10, threshold=0.001)
    np.testing.assert_allclose(weights, 1)  # LVIS's t on a handful of classes repeats nothing


def test_rare_class_sampling_matches_its_formula():
    p = np.array([[1.0, 0.0, 0.0], [0.8, 0.2, 0.0], [0.6, 0.2, 0.2], [0.95, 0.0, 0.05]])
    v = np.array([100.0, 100.0, 50.0, 100.0])
    weights, probability = rare_class_sampling_weights(p, v, min_pixels=10, temperature=0.1)
    f = v @ p / v.sum()  # pixel frequencies
    logits = (1 - f) / 0.1
    expected_p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(probability, expected_p)
    n_c = np.array([4, 2, 1])  # class 2: 10 px in patch c (>= 10), 5 px in d (< 10)
    expected = [expected_p[0] / 4,
                expected_p[0] / 4 + expected_p[1] / 2,
                expected_p[0] / 4 + expected_p[1] / 2 + expected_p[2] / 1,
                expected_p[0] / 4]
    np.testing.assert_allclose(weights, expected)
    assert weights.sum() == pytest.approx(1.0)  # a distribution over patches, as DAFormer draws
    assert n_c.sum() == 7


def test_published_methods_through_combine_weights_scale_min_pixels_by_patch_area():
    assert default_min_pixels(512) == 3000 and default_min_pixels(256) == 750
    # 32 px patches: 3000 * (32/512)^2 = 11.7 px; cls_6 at 1% of 1024 px = 10 px is not "contained"
    table = pd.DataFrame({"cls_1": [1.0, 0.99, 0.9, 0.97], "cls_6": [0.0, 0.01, 0.1, 0.03],
                          "patch_size": 32, "excluded": [False, False, False, True]})
    infos = []
    result = combine_weights(table, "repeat_factor", progress=Progress(info=infos.append, warning=infos.append))
    # included a, b, c: cls_6 contained only by c: f = (1, 1/3), t = median = 2/3, r_6 = sqrt(2)
    np.testing.assert_allclose(result.weights.to_numpy()[:3] * (2 + math.sqrt(2)) / 3, [1, 1, math.sqrt(2)])
    assert result.weights.iloc[3] == 0
    assert any("from 12 of its pixels" in m for m in infos) and any("t = 0.6667" in m for m in infos)
    rcs = combine_weights(table, "rare_class_sampling").weights.to_numpy()
    assert rcs[2] > rcs[0] == rcs[1] and rcs[3] == 0


def test_sqrt_inverse_freq_is_class_balanced_at_alpha_half():
    p = np.random.default_rng(9).dirichlet([3, 1, 0.5], size=20)
    table = pd.DataFrame({f"cls_{c}": p[:, c] for c in range(3)})
    alias = combine_weights(table, "sqrt_inverse_freq", class_alpha=1.0)
    assert alias.method == "class_balanced" and alias.params["class_alpha"] == 0.5
    np.testing.assert_allclose(alias.weights, combine_weights(table, "class_balanced", class_alpha=0.5).weights)


def test_on_the_demo_data_balanced_beats_class_balanced_at_its_ess(synthetic_dataset):
    from balanced_sampling_plugin.footprints import raster_windows
    from balanced_sampling_plugin.composition import compute_composition

    records = pd.DataFrame([
        {"image_path": image, "mask_path": mask, "row_off": r, "col_off": c, "patch_size": 64}
        for image, mask in zip(synthetic_dataset.images, synthetic_dataset.masks)
        for r, c in raster_windows(512, 512, 64, 64)
    ])
    table = compute_composition(records, k_selection="fixed", k=4, workers=1).table
    reference = combine_weights(table, "class_balanced")
    included = reference.included
    ess = effective_sample_size(reference.weights.to_numpy()[included]) / included.sum()
    balanced = combine_weights(table, "target_shares", min_ess=ess)
    fields = [c for c in table.columns if c.startswith("cls_")]
    p = table[fields].to_numpy(dtype=float)
    valid = 64 * 64 * (1 - table["nodata_ratio"].to_numpy(dtype=float))

    def smallest(weights):
        shares = expected_class_shares(p, weights, valid)
        return shares[shares > 0].min()

    assert effective_sample_size(balanced.weights.to_numpy()[included]) / included.sum() >= ess - 1e-6
    assert smallest(balanced.weights.to_numpy()) >= smallest(reference.weights.to_numpy()) - 1e-9


def test_target_options_with_another_method_are_said_to_be_ignored_and_low_ess_advice_fits_the_method():
    p = np.random.default_rng(10).dirichlet([5, 1, 0.3], size=40)
    table = pd.DataFrame({f"cls_{c}": p[:, c] for c in range(3)})
    messages = []
    combine_weights(table, "class_balanced", target_shares="2:0.3", max_weight=3,
                    progress=Progress(info=messages.append, warning=messages.append))
    assert "target_shares, max_weight ignored by 'class_balanced' (they apply to target_shares)." in messages
    messages.clear()
    combine_weights(table, "target_shares", target_shares="2:0.6",
                    progress=Progress(info=messages.append, warning=messages.append))
    low = [m for m in messages if "has an effective sample size of" in m]
    assert low and low[0].endswith("Ask for lower target shares, raise the minimum ESS, or cap the largest weight.")

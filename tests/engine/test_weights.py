"""Sampler weights: hand-computed values for every method, errors, properties, and the imbalance goal."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.weights import (
    SAMPLING_METHODS,
    apply_floor,
    available_methods,
    combine_weights,
    compare_methods,
    effective_sample_size,
    expected_class_shares,
    included_mask,
    percentile_rank,
)

CLASSES = ["cls_0", "cls_1", "cls_2", "cls_3"]


def small_table():
    """Six patches, patch e excluded; ties in both signals among the included ones.

    Included ranks (average rank / 5):
      comp a=1 b=2 c=2 d=4 f=3  -> a .2, b .5, c .5, d 1.0, f .8
      uniq a=.1 b=.5 c=.3 d=.3 f=.2 -> a .2, b 1.0, c .7, d .7, f .4
    Class means over included: f0 = 4/5 = .8, f1 = .5/5 = .1, f2 = .5/5 = .1, f3 = 0 (only in e).
    """
    return pd.DataFrame(
        {
            "patch_id": list("abcdef"),
            "freq_cluster_weight": [1.0, 2.0, 2.0, 4.0, 8.0, 3.0],
            "uniqueness_score": [0.1, 0.5, 0.3, 0.3, 0.9, 0.2],
            "excluded": [False, False, False, False, True, False],
            "cls_0": [1.0, 0.5, 0.8, 1.0, 0.0, 0.7],
            "cls_1": [0.0, 0.5, 0.0, 0.0, 0.5, 0.0],
            "cls_2": [0.0, 0.0, 0.2, 0.0, 0.0, 0.3],
            "cls_3": [0.0, 0.0, 0.0, 0.0, 0.5, 0.0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )


def mean_one(included_raw):
    """Expected weights: raw values of a, b, c, d, f scaled to mean 1, e = 0."""
    raw = np.asarray(included_raw, dtype=float)
    w = raw / raw.mean()
    return np.array([w[0], w[1], w[2], w[3], 0.0, w[4]])


SQ = math.sqrt
HAND = {
    "rank_max": [0.2, 1.0, 0.7, 1.0, 0.8],
    "rank_multiply": [0.04, 0.5, 0.35, 0.7, 0.32],
    "rank_add": [0.2, 0.75, 0.6, 0.85, 0.6],
    "multiplicative": [0.1, 1.0, 0.6, 1.2, 0.6],
    "composition_only": [0.2, 0.5, 0.5, 1.0, 0.8],
    "uniqueness_only": [0.2, 1.0, 0.7, 0.7, 0.4],
    # alpha = 0.5: sum_c sqrt(p_c / f_c), cls_3 skipped (f3 = 0)
    "class_balanced": [SQ(1 / 0.8), SQ(0.5 / 0.8) + SQ(5), 1 + SQ(2), SQ(1 / 0.8), SQ(0.7 / 0.8) + SQ(3)],
    # no patch_size field: a patch contains a class when it holds any of it. Fractions of patches
    # containing each class: 1, 0.2, 0.4 (cls_3 only in the excluded e); t = their median 0.4;
    # r = max(1, sqrt(0.4 / f)) = 1, sqrt(2), 1: only b (the one patch with cls_1) is repeated.
    "repeat_factor": [1, SQ(2), 1, 1, 1],
}


def test_methods_are_the_public_enum_order():
    assert SAMPLING_METHODS == (
        "rank_max", "rank_multiply", "rank_add", "multiplicative",
        "composition_only", "uniqueness_only", "class_balanced",
        "target_shares", "repeat_factor", "rare_class_sampling",
    )


@pytest.mark.parametrize("method", list(HAND))
def test_every_method_matches_hand_computed_weights(method):
    table = small_table()
    result = combine_weights(table, method)
    assert list(result.weights.index) == list(table.index)
    np.testing.assert_allclose(result.weights.to_numpy(), mean_one(HAND[method]), rtol=1e-12)
    assert result.n_included == 5 and result.n_excluded == 1 and result.n_floored == 0


def test_percentile_rank_averages_ties_and_is_rank_over_n():
    np.testing.assert_allclose(percentile_rank([3.0, 1.0, 3.0, 2.0]), [3.5 / 4, 1 / 4, 3.5 / 4, 2 / 4])
    np.testing.assert_allclose(percentile_rank([5.0, 5.0, 5.0]), [2 / 3] * 3)
    assert percentile_rank([7.0]).tolist() == [1.0]


def test_strength_powers_the_combined_rank():
    result = combine_weights(small_table(), "rank_max", strength=2.0)
    np.testing.assert_allclose(result.weights.to_numpy(), mean_one([0.04, 1.0, 0.49, 1.0, 0.64]))


def test_class_balanced_alpha_one():
    result = combine_weights(small_table(), "class_balanced", class_alpha=1.0)
    # sum_i omega_i = sum over present classes of n = 15: mean 3
    np.testing.assert_allclose(result.weights.to_numpy(), mean_one([1.25, 5.625, 3.0, 1.25, 3.875]))


def test_class_balanced_uniqueness_mix():
    result = combine_weights(small_table(), "class_balanced", class_alpha=1.0, uniqueness_mix=0.5)
    # omega * (0.5 + 0.5 * rank_uniq)
    expected = [1.25 * 0.6, 5.625 * 1.0, 3.0 * 0.85, 1.25 * 0.85, 3.875 * 0.7]
    np.testing.assert_allclose(result.weights.to_numpy(), mean_one(expected))


def test_rare_boost_with_explicit_and_automatic_classes():
    table = small_table()
    explicit = combine_weights(table, "class_balanced", class_alpha=1.0, rare_boost=3.0, rare_classes=[1])
    np.testing.assert_allclose(explicit.weights.to_numpy(), mean_one([1.25, 5.625 * 2, 3.0, 1.25, 3.875]))
    assert explicit.rare_classes == ("cls_1",)
    # automatic: present classes below their mean frequency (.8, .1, .1 -> mean 1/3): cls_1 and cls_2
    auto = combine_weights(table, "composition_only", rare_boost=3.0)
    np.testing.assert_allclose(auto.weights.to_numpy(), mean_one([0.2, 0.5 * 2, 0.5 * 1.4, 1.0, 0.8 * 1.6]))
    assert auto.rare_classes == ("cls_1", "cls_2")


def test_floor_lifts_zero_scores():
    table = small_table()
    table.loc[10, "uniqueness_score"] = 0.0
    result = combine_weights(table, "multiplicative", floor=0.01)
    raw = [0.012, 1.0, 0.6, 1.2, 0.6]  # a: 0 raised to 0.01 x max (1.2)
    np.testing.assert_allclose(result.weights.to_numpy(), mean_one(raw))
    assert result.n_floored == 1
    assert apply_floor([0.0, 0.5, 2.0], 0.1)[1] == 1


def test_excluded_field_is_optional_and_parsed_from_text():
    table = small_table().drop(columns="excluded")
    assert combine_weights(table, "rank_max").n_excluded == 0
    words = pd.DataFrame({"excluded": ["true", "False", None, "1", 0, np.nan]})
    assert included_mask(words).tolist() == [False, True, True, False, True, True]
    with pytest.raises(BalancedSamplingError, match="row 1"):
        included_mask(pd.DataFrame({"excluded": ["no", "maybe"]}))


@pytest.mark.parametrize(
    "method, dropped, algorithm",
    [
        ("rank_max", "uniqueness_score", "Compute DINOv2 uniqueness"),
        ("uniqueness_only", "uniqueness_score", "Compute DINOv2 uniqueness"),
        ("multiplicative", "freq_cluster_weight", "Compute composition clusters"),
        ("composition_only", "freq_cluster_weight", "Compute composition clusters"),
        ("class_balanced", CLASSES, "Compute composition clusters"),
    ],
)
def test_missing_signal_names_the_algorithm_to_run(method, dropped, algorithm):
    with pytest.raises(BalancedSamplingError, match=algorithm):
        combine_weights(small_table().drop(columns=dropped), method)


def test_uniqueness_mix_needs_uniqueness():
    with pytest.raises(BalancedSamplingError, match="Compute DINOv2 uniqueness"):
        combine_weights(small_table().drop(columns="uniqueness_score"), "class_balanced", uniqueness_mix=0.3)


def test_all_excluded_is_an_error():
    table = small_table().assign(excluded=True)
    with pytest.raises(BalancedSamplingError, match="All 6 patches are excluded"):
        combine_weights(table, "rank_max")


def test_nan_in_an_included_patch_names_it():
    table = small_table()
    table.loc[12, "uniqueness_score"] = np.nan
    with pytest.raises(BalancedSamplingError, match="patch c"):
        combine_weights(table, "rank_max")
    table = table.drop(columns="patch_id")
    with pytest.raises(BalancedSamplingError, match="row 12"):
        combine_weights(table, "uniqueness_only")
    table.loc[12, "cls_1"] = np.nan
    with pytest.raises(BalancedSamplingError, match="cls_1.*row 12"):
        combine_weights(table, "class_balanced")


def test_null_uniqueness_is_reported_as_null_with_what_to_do():
    table = small_table()
    table["uniqueness_score"] = table["uniqueness_score"].astype(object)
    table.loc[12, "uniqueness_score"] = None  # a NULL from a QGIS layer
    table.loc[15, "uniqueness_score"] = np.nan  # an empty CSV cell
    with pytest.raises(BalancedSamplingError) as error:
        combine_weights(table, "rank_max")
    assert str(error.value) == (
        "Field 'uniqueness_score' of patch c (and 1 other included patch) is NULL (empty); expected a number. "
        "Run 'Compute DINOv2 uniqueness' on these patches, exclude them, or pick a sampling method that does "
        "not need 'uniqueness_score' (e.g. composition_only)."
    )
    assert "nan" not in str(error.value).lower()
    np.testing.assert_allclose(combine_weights(table, "composition_only").weights.to_numpy(),
                               mean_one(HAND["composition_only"]))


def test_null_composition_and_proportion_are_reported_as_null():
    table = small_table().drop(columns="patch_id")
    table.loc[11, "freq_cluster_weight"] = np.nan
    with pytest.raises(BalancedSamplingError) as error:
        combine_weights(table, "composition_only")
    assert str(error.value) == (
        "Field 'freq_cluster_weight' of the patch at row 11 is NULL (empty); expected a number. "
        "Run 'Compute composition clusters' on these patches, exclude them, or pick a sampling method that "
        "does not need 'freq_cluster_weight' (e.g. uniqueness_only)."
    )
    table.loc[13, "cls_2"] = None
    with pytest.raises(BalancedSamplingError, match=r"^Field 'cls_2' of the patch at row 13 is NULL \(empty\); "
                                                    r"expected a proportion in \[0, 1\]"):
        combine_weights(table, "class_balanced")
    table["freq_cluster_weight"] = table["freq_cluster_weight"].astype(object)
    table.loc[11, "freq_cluster_weight"] = "abc"  # a real value is still shown as it is
    with pytest.raises(BalancedSamplingError, match=r"row 11 is 'abc'; expected a number"):
        combine_weights(table, "composition_only")


def test_nan_in_an_excluded_patch_is_fine():
    table = small_table()
    table.loc[14, ["uniqueness_score", "cls_0"]] = np.nan
    for method in SAMPLING_METHODS:
        assert combine_weights(table, method).weights.loc[14] == 0


def test_ignored_options_are_reported():
    progress = Progress()
    result = combine_weights(small_table(), "multiplicative", strength=2.0, progress=progress)
    np.testing.assert_allclose(result.weights.to_numpy(), mean_one(HAND["multiplicative"]))
    assert progress.warnings == list(result.notes) and "strength 2 is ignored" in progress.warnings[0]


@pytest.mark.parametrize(
    "options",
    [dict(method="best"), dict(strength=-1), dict(uniqueness_mix=1.5), dict(rare_boost=0.5), dict(floor=0)],
)
def test_bad_options(options):
    with pytest.raises(BalancedSamplingError):
        combine_weights(small_table(), **options)


def test_diagnostics():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [np.nan, np.nan]])
    np.testing.assert_allclose(expected_class_shares(p, [1.0, 3.0, 0.0]), [0.625, 0.375])
    assert effective_sample_size([1.0, 1.0, 1.0, 0.0]) == pytest.approx(3.0)
    assert effective_sample_size([1.0, 3.0]) == pytest.approx(16 / 10)


def test_compare_methods_lists_what_the_signals_allow():
    table = small_table()
    full = compare_methods(table)
    assert list(full.index) == ["uniform", *SAMPLING_METHODS]
    assert list(full.columns) == [f"share_{c}" for c in CLASSES] + ["ess", "ess_ratio", "max_ratio"]
    uniform = full.loc["uniform"]
    assert uniform["share_cls_1"] == pytest.approx(0.1) and uniform["ess"] == pytest.approx(5)
    w = mean_one(HAND["rank_max"])
    assert full.loc["rank_max", "ess"] == pytest.approx(effective_sample_size(w))
    assert full.loc["rank_max", "max_ratio"] == pytest.approx(w.max())
    no_uniq = table.drop(columns="uniqueness_score")
    class_methods = ("class_balanced", "target_shares", "repeat_factor", "rare_class_sampling")
    assert available_methods(no_uniq) == ("composition_only", *class_methods)
    assert list(compare_methods(no_uniq).index) == ["uniform", "composition_only", *class_methods]


# ---------------------------------------------------------------- properties

@st.composite
def tables(draw):
    n = draw(st.integers(2, 25))
    # small value sets make ties common; a tied rank is the case argsort(argsort()) got wrong
    comp = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 7.5]), min_size=n, max_size=n))
    uniq = draw(st.lists(st.sampled_from([0.01, 0.2, 0.3, 1.9]), min_size=n, max_size=n))
    excluded = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    excluded[draw(st.integers(0, n - 1))] = False
    counts = np.array(draw(st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=n, max_size=n)))
    counts[:, 0] += 1  # every patch has some valid pixels
    proportions = counts / counts.sum(axis=1, keepdims=True)
    table = pd.DataFrame(proportions, columns=["cls_0", "cls_1", "cls_2"])
    return table.assign(
        patch_id=[f"p{i}" for i in range(n)], freq_cluster_weight=comp, uniqueness_score=uniq, excluded=excluded
    )


@settings(max_examples=40, deadline=None)
@given(
    table=tables(),
    method=st.sampled_from(SAMPLING_METHODS),
    strength=st.sampled_from([0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_weight_properties(table, method, strength, seed):
    result = combine_weights(table, method, strength=strength, uniqueness_mix=0.3)
    w = result.weights.to_numpy()
    included = ~table["excluded"].to_numpy()
    assert np.isfinite(w).all() and (w >= 0).all()
    assert (w[included] > 0).all() and (w[~included] == 0).all()
    assert w[included].mean() == pytest.approx(1.0)
    shuffled = table.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**32))
    again = combine_weights(shuffled, method, strength=strength, uniqueness_mix=0.3).weights
    by_patch = pd.Series(w, index=table["patch_id"])
    np.testing.assert_allclose(again.to_numpy(), by_patch.loc[shuffled["patch_id"]].to_numpy(), rtol=1e-9)


# ---------------------------------------------------------------- the imbalance goal

def imbalanced_table(n=4000, seed=0):
    """A realistic imbalanced dataset: ~90% background, two ~4% classes, a ~2% rare class.

    Most patches are nearly all background; the rare class (cls_3) appears in ~5% of
    the patches, where it covers 20-60% of the pixels. Clusters mimic the composition
    KMeans (background / class 1 / class 2 / rare) with ``freq_cluster_weight`` = inverse
    cluster frequency; uniqueness is noise, a little higher for rare patches.
    """
    rng = np.random.default_rng(seed)
    p = np.zeros((n, 4))
    p[:, 0] = rng.beta(12, 1, n)
    p[:, 1:3] = (1 - p[:, 0])[:, None] * rng.dirichlet([1.0, 1.0], n)
    rare = rng.random(n) < 0.05
    share = rng.uniform(0.2, 0.6, rare.sum())
    p[rare] *= (1 - share)[:, None]
    p[rare, 3] = share
    cluster = np.where(p[:, 0] > 0.95, 0, 1 + np.argmax(p[:, 1:3], axis=1))
    cluster[rare] = 3
    sizes = np.bincount(cluster)
    table = pd.DataFrame(p, columns=CLASSES)
    return table.assign(
        freq_cluster_id=cluster,
        freq_cluster_weight=n / (len(sizes) * sizes[cluster]),
        uniqueness_score=rng.uniform(0, 1, n) + 0.2 * rare,
        excluded=rng.random(n) < 0.03,
    )


def lift_of_rarest(table, weights):
    included = ~table["excluded"].to_numpy()
    p = table[CLASSES].to_numpy()
    uniform = expected_class_shares(p, included.astype(float))
    rarest = np.argmin(uniform)
    return expected_class_shares(p, weights)[rarest] / uniform[rarest], CLASSES[rarest], included.sum()


def test_class_balanced_doubles_the_rarest_class_and_keeps_ess():
    table = imbalanced_table()
    w = combine_weights(table, "class_balanced").weights.to_numpy()
    lift, rarest, n = lift_of_rarest(table, w)
    assert rarest == "cls_3"
    assert lift >= 2.0
    assert effective_sample_size(w) >= 0.4 * n


def test_rank_max_raises_the_rarest_class_a_little():
    table = imbalanced_table()
    w = combine_weights(table, "rank_max").weights.to_numpy()
    lift, _, _ = lift_of_rarest(table, w)
    # weak by construction: no share can grow more than the largest weight (mean 1), about 1.5
    assert 1.0 < lift <= w.max() < 1.6


def skewed_clusters_table(n_big=90, n_rare=10):
    """One big composition cluster and a few singletons, as on the demo data: 1/size spans two orders of
    magnitude, so ``multiplicative`` (raw product, no ranks) lets the singletons dominate."""
    rng = np.random.default_rng(3)
    n = n_big + n_rare
    return pd.DataFrame({
        "freq_cluster_weight": [1.0 / n_big] * n_big + [1.0] * n_rare,
        "uniqueness_score": rng.uniform(0.5, 1.0, n),
        "excluded": [False] * n,
    })


def test_low_effective_sample_size_is_warned_about():
    from balanced_sampling_plugin.weights import LOW_ESS_RATIO, low_ess_warning

    table = skewed_clusters_table()
    progress = Progress()
    result = combine_weights(table, "multiplicative", progress=progress)
    ess = effective_sample_size(result.weights.to_numpy())
    assert ess < LOW_ESS_RATIO * 100 and LOW_ESS_RATIO == 0.3
    expected = (f"Method 'multiplicative' has an effective sample size of {ess:.0f}, {ess / 100:.0%} of the 100 "
                "included patches (below 30%): a few patches dominate the draws and an epoch sees little variety. "
                "Consider a rank method, class_balanced, or a lower strength.")
    assert progress.warnings == [expected] and result.notes == (expected,)
    assert low_ess_warning("multiplicative", ess, 100) == expected
    # the formula is kept: raw product scaled to mean 1
    raw = table["freq_cluster_weight"] * table["uniqueness_score"]
    np.testing.assert_allclose(result.weights, raw / raw.mean())


@pytest.mark.parametrize("method", ["rank_max", "rank_multiply", "rank_add", "composition_only", "uniqueness_only"])
def test_rank_methods_keep_a_high_effective_sample_size_without_warning(method):
    progress = Progress()
    result = combine_weights(skewed_clusters_table(), method, progress=progress)
    assert effective_sample_size(result.weights.to_numpy()) >= 30
    assert progress.warnings == [] and result.notes == ()


def test_low_ess_threshold_is_strict():
    from balanced_sampling_plugin.weights import low_ess_warning

    assert low_ess_warning("rank_max", 30.0, 100) is None
    assert low_ess_warning("rank_max", 29.9, 100).startswith("Method 'rank_max' has an effective sample size of 30,")

"""Coreset selection (issue 15): the six methods on hand-computed small tables, the budget, the steps, spatial
diversity, the embeddings join, the coverage measures, seeded reproducibility."""

import math

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.contract import (
    CORESET_METHODS,
    CORESET_SCORE,
    CORESET_SELECTED,
    SELECTION_RANK,
    SELECTION_STEP,
)
from balanced_sampling_plugin.embedding_cache import EmbeddingCache
from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import patch_ids, validate_records
from balanced_sampling_plugin.selection.budget import budget_size, check_budget
from balanced_sampling_plugin.selection.coreset import select_coreset, subset_weights
from balanced_sampling_plugin.selection.embeddings import load_embeddings
from balanced_sampling_plugin.selection.measures import compare_with_random, coverage_radius, report_measures
from balanced_sampling_plugin.selection.scores import (
    cb_order,
    cb_scores,
    class_shares,
    fa_scores,
    fd_order,
    lc_fd_order,
    lc_scores,
    positional_scores,
    round_robin,
    score_pool,
    select_steps,
    vendi_score,
)
from balanced_sampling_plugin.selection.spatial import GridCellLimit, MinDistance, diversity_rule


def table(n=4, **columns):
    """n patches of one image, 256 px windows side by side; extra columns as given."""
    frame = pd.DataFrame({
        "image_path": ["/data/tile_a.tif"] * n, "mask_path": ["/data/mask_a.tif"] * n,
        "row_off": [0] * n, "col_off": [256 * i for i in range(n)], "patch_size": [256] * n})
    for name, values in columns.items():
        frame[name] = values
    return frame


# --------------------------------------------------------------------------- budget


def test_budget_fraction_rounds_and_keeps_one():
    assert budget_size(0.5, "fraction", 5) == 3  # 2.5 rounds half up
    assert budget_size(0.3, "fraction", 10) == 3
    assert budget_size(0.01, "fraction", 10) == 1  # at least one patch of a non-empty pool
    assert budget_size(1.0, "fraction", 7) == 7
    assert budget_size(0.5, "fraction", 0) == 0


def test_budget_count_caps_at_the_pool():
    assert budget_size(3, "count", 10) == 3
    assert budget_size(50, "count", 10) == 10


@pytest.mark.parametrize("budget, mode", [(0, "fraction"), (1.5, "fraction"), (0.5, "count"), (0, "count"),
                                          ("x", "fraction"), (math.nan, "fraction"), (0.5, "percent")])
def test_bad_budgets_are_refused(budget, mode):
    with pytest.raises(BalancedSamplingError):
        check_budget(budget, mode)


# --------------------------------------------------------------------------- lc


def test_lc_is_entropy_over_its_maximum_and_ties_go_to_the_lower_row():
    frame = table(class_entropy=[0.5, 1.0, 0.0, 1.0])
    result = select_coreset(frame, "lc", 1, "count")
    np.testing.assert_allclose(result.scores, [0.5, 1.0, 0.0, 1.0])
    assert result.selected.tolist() == [False, True, False, False]
    assert result.step.tolist() == ["", "lc", "", ""]
    assert select_coreset(frame, "lc", 0.5).selected.tolist() == [False, True, False, True]


def test_lc_with_every_entropy_zero_scores_zero():
    np.testing.assert_array_equal(lc_scores(np.zeros(3)), np.zeros(3))


def test_lc_names_the_patch_without_entropy():
    frame = table(class_entropy=[0.5, np.nan, 0.2, 0.1])
    with pytest.raises(BalancedSamplingError, match="class_entropy.*256"):
        select_coreset(frame, "lc", 0.5)


# --------------------------------------------------------------------------- cb


def test_cb_hand_computed_greedy():
    """Two classes. At S = 0 the mixed patch 2 has the largest entropy. Then S = (.5, .5): adding a pure patch of
    either class gives the same entropy, so the lower row 0 wins the tie. Then S = (1.5, .5): patch 1 (class 1)
    balances, patch 3 (class 0) does not. Order 2, 0, 1, 3; the t-th pick scores (4 - t) / 3."""
    classes = np.array([[1, 0], [0, 1], [0.5, 0.5], [1, 0]], dtype=float)
    assert cb_order(classes, 4).tolist() == [2, 0, 1, 3]
    np.testing.assert_allclose(cb_scores(classes, 4), [2 / 3, 1 / 3, 1.0, 0.0])
    np.testing.assert_allclose(cb_scores(classes, 2), [2 / 3, 0.0, 1.0, 0.0])  # stops at the budget


def test_cb_through_select_coreset_reads_the_class_fields_and_skips_excluded():
    frame = table(cls_1=[1, 0, 0.5, 1], cls_2=[0, 1, 0.5, 0], excluded=[False, False, True, False])
    result = select_coreset(frame, "cb", 2, "count")
    # pool rows 0, 1, 3: S=0 all pure (gain 0) -> row 0; then class 1 balances -> row 1
    assert result.selected.tolist() == [True, True, False, False]
    assert np.isnan(result.scores[2])
    np.testing.assert_allclose(result.scores[[0, 1, 3]], [1.0, 0.5, 0.0])


def naive_cb(classes, budget, start=None):
    """Every candidate evaluated at every pick: the entropy of the normalised S + p, ties to the lower index
    (gains rounded as the engine rounds them); S starts at ``start`` (default 0)."""
    shares = class_shares(classes)
    total = np.zeros(shares.shape[1]) if start is None else np.array(start, dtype=float)
    left = np.ones(len(shares), dtype=bool)
    picks = []
    for _ in range(budget):
        summed = total + shares
        def xlogx(x):
            return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)
        gains = np.round((xlogx(summed) - xlogx(total)).sum(axis=1), 9)
        gains[~left] = np.inf
        pick = int(np.argmin(gains))
        picks.append(pick)
        left[pick] = False
        total += shares[pick]
    return picks


@pytest.mark.parametrize("seed", range(12))
def test_cb_lazy_greedy_matches_evaluating_every_candidate(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 60)), int(rng.integers(2, 6))
    classes = np.round(rng.dirichlet(np.full(c, 0.4), size=n), 2)
    classes[rng.random(n) < 0.3] = np.eye(c)[0]  # many identical pure patches: ties
    classes[classes.sum(axis=1) == 0, 0] = 1
    budget = int(rng.integers(1, n + 1))
    assert cb_order(classes, budget).tolist() == naive_cb(classes, budget)


@pytest.mark.parametrize("seed", range(6))
def test_cb_from_a_start_matches_evaluating_every_candidate(seed):
    rng = np.random.default_rng(50 + seed)
    n, c = int(rng.integers(5, 40)), int(rng.integers(2, 5))
    classes = np.round(rng.dirichlet(np.full(c, 0.4), size=n), 2)
    classes[classes.sum(axis=1) == 0, 0] = 1
    start = rng.uniform(0, 5, c)
    budget = int(rng.integers(1, n + 1))
    assert cb_order(classes, budget, start=start).tolist() == naive_cb(classes, budget, start)


def test_cb_after_a_vector_step_balances_the_whole_subset():
    # rows 0-1 (class 1 only) come from the vector step; cb then starts from S = (2, 0) and prefers the class-2
    # patches 3 and 4 over the mixed row 2, which it would take first from an empty start
    frame = table(6, cls_1=[1, 1, 0.5, 0, 0, 1], cls_2=[0, 0, 0.5, 1, 1, 0])
    alone = select_coreset(frame, "cb", 3, "count")
    assert alone.selection.order[0] == 2
    stepped = select_coreset(frame, "cb", 4, "count", vector_rows=[0, 1])
    assert stepped.selection.order[:2].tolist() == [0, 1] and set(stepped.selection.order[2:].tolist()) == {3, 4}
    assert list(stepped.selection.step[[0, 1, 3, 4]]) == ["vector", "vector", "cb", "cb"]
    assert np.isnan(stepped.scores[[0, 1]]).all()  # taken by the vector step, not scored by cb


@pytest.mark.parametrize("method", ["cb", "fa_cb"])
def test_cb_orders_vector_rows_that_fill_the_budget_by_balancing_among_them(method):
    """More priority rows than the budget: cb picks among them by its balance, not in table order (over the whole
    pool it scores only its own first picks, which left every priority row at 0)."""
    # rows 0-5 (background only) and 6-9 (one rare class each) are the priority rows; rows 10-19 (even mixtures,
    # cb's first picks over the whole pool) are outside
    cls_1 = [1.0] * 6 + [0.0] * 4 + [1 / 3] * 10
    cls_2 = [0.0] * 6 + [1.0, 0.0, 1.0, 0.0] + [1 / 3] * 10
    cls_3 = [0.0] * 6 + [0.0, 1.0, 0.0, 1.0] + [1 / 3] * 10
    frame = table(20, cls_1=cls_1, cls_2=cls_2, cls_3=cls_3)
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((20, 8)).astype(np.float32)
    result = select_coreset(frame, method, 4, "count", vector_rows=list(range(10)), embeddings=embeddings)
    picked = result.selection.order
    assert (result.selection.step[picked] == "vector").all() and len(picked) == 4
    assert {6, 8} & set(picked.tolist()) and {7, 9} & set(picked.tolist()), picked  # classes 2 and 3, not rows 0-3
    alone = select_coreset(frame.iloc[:10].reset_index(drop=True), method, 4, "count", embeddings=embeddings[:10])
    assert sorted(picked.tolist()) == sorted(alone.selection.order.tolist()), "as cb on those rows alone"


@pytest.mark.parametrize("seed", range(8))
def test_cb_vectorised_evaluation_picks_the_same(seed, monkeypatch):
    """Forced to alternate with evaluating every group in numpy: still the plain greedy's picks."""
    from balanced_sampling_plugin.selection import scores

    monkeypatch.setattr(scores, "CB_WINDOW", 1)  # one lazy pick, then 1, 2, 4 ... vectorised picks
    monkeypatch.setattr(scores, "CB_MAX_STRETCH", 4)
    monkeypatch.setattr(scores, "CB_VECTOR_RATIO", 10 ** 9)
    rng = np.random.default_rng(100 + seed)
    n, c = int(rng.integers(5, 60)), int(rng.integers(2, 6))
    classes = np.round(rng.dirichlet(np.full(c, 0.4), size=n), 2)
    classes[rng.random(n) < 0.3] = np.eye(c)[1]
    classes[classes.sum(axis=1) == 0, 0] = 1
    budget = int(rng.integers(2, n + 1))
    assert cb_order(classes, budget).tolist() == naive_cb(classes, budget)


def test_cb_patches_without_classes_come_last():
    classes = np.array([[0, 0], [1, 0], [np.nan, np.nan], [0, 1]], dtype=float)
    assert cb_order(classes, 4).tolist() == [1, 3, 0, 2]


def test_cb_reports_progress_and_can_be_canceled():
    classes = np.eye(3)[np.arange(5000) % 3]
    with pytest.raises(BalancedSamplingError, match="Canceled"):
        cb_order(classes, 5000, Progress(is_canceled=lambda: True))


# --------------------------------------------------------------------------- fd, fa, lc_fd, fa_cb


def blobs(seed=0):
    """Three tight, far apart groups of 3, 2 and 2 embeddings (rows 0-2, 3-4, 5-6)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0]], dtype=float)
    rows = np.repeat(centres, [3, 2, 2], axis=0)
    return (rows + rng.normal(scale=0.01, size=rows.shape)).astype(np.float32)


def test_round_robin_visits_every_cluster_before_a_second_patch_of_any():
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    order = round_robin(labels, seed=3)
    assert sorted(order.tolist()) == list(range(7))
    assert sorted(labels[order[:3]].tolist()) == [0, 1, 2]
    assert len(set(labels[order[3:6]].tolist())) == 3  # second round: each cluster again
    assert labels[order[6]] == 0  # only the biggest cluster has a third patch
    # the cluster order is the same in every round
    assert labels[order[:3]].tolist() == labels[order[3:6]].tolist()


def test_fd_finds_the_three_groups_and_covers_them_first():
    embeddings = blobs()
    order, k = fd_order(embeddings, k_min=2, k_max=5, seed=1)
    assert k == 3
    group = np.repeat([0, 1, 2], [3, 2, 2])
    assert sorted(group[order[:3]].tolist()) == [0, 1, 2]
    scores = positional_scores(order, 7)
    np.testing.assert_allclose(sorted(scores), np.arange(7) / 6)


def test_fd_with_vendi_is_seeded_and_stops_growing_k():
    embeddings = blobs()
    first, k = fd_order(embeddings, k_min=2, k_max=6, use_vendi=True, seed=4)
    again, k_again = fd_order(embeddings, k_min=2, k_max=6, use_vendi=True, seed=4)
    assert first.tolist() == again.tolist() and k == k_again
    assert 2 <= k <= 6


def test_vendi_score_counts_distinct_directions():
    assert vendi_score(np.eye(3)) == pytest.approx(3.0)
    assert vendi_score(np.ones((4, 2))) == pytest.approx(1.0)


def test_fd_is_reproducible_with_a_seed_and_changes_with_it():
    embeddings = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    a, _ = fd_order(embeddings, 2, 6, seed=7)
    b, _ = fd_order(embeddings, 2, 6, seed=7)
    c, _ = fd_order(embeddings, 2, 6, seed=8)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_fa_hand_computed():
    # mu = 0, 2, 2, 2 -> 0, 1, 1, 1; sigma = 0, 1, 0, 2 -> 0, .5, 0, 1
    embeddings = np.array([[0, 0], [1, 3], [2, 2], [0, 4]], dtype=float)
    np.testing.assert_allclose(fa_scores(embeddings), [0.0, 0.5, 0.0, 1.0])


def test_lc_fd_takes_m_by_fd_then_the_rest_by_lc():
    fd = np.array([3, 1, 0, 2])
    lc = np.array([0.9, 0.1, 0.5, 0.3])
    assert lc_fd_order(fd, lc, 1).tolist() == [3, 0, 2, 1]
    assert lc_fd_order(fd, lc, 2).tolist() == [3, 1, 0, 2]
    assert lc_fd_order(fd, lc, 0).tolist() == [0, 2, 3, 1]
    assert lc_fd_order(fd, lc, None).tolist() == [3, 0, 2, 1]  # 10% of 4 rounds to at least 1


def test_fa_cb_blends_the_two_scores():
    classes = np.array([[1, 0], [0, 1], [0.5, 0.5], [1, 0]], dtype=float)
    embeddings = np.array([[0, 0], [1, 3], [2, 2], [0, 4]], dtype=float)
    blended = score_pool("fa_cb", 2, classes=classes, embeddings=embeddings, fa_cb_lambda=0.25).scores
    np.testing.assert_allclose(blended, 0.25 * np.array([0, 0.5, 0, 1]) + 0.75 * np.array([2 / 3, 0, 1, 0]))
    # At 0.25 the picks are cb's (patches 0 and 2): said, with the way to give fa a say; at 0.9 fa changes them.
    infos = []
    score_pool("fa_cb", 2, classes=classes, embeddings=embeddings, fa_cb_lambda=0.25,
               progress=Progress(info=infos.append))
    assert any("fa_cb with fa_cb_lambda 0.25 picks the same patches as cb" in m for m in infos), infos
    infos.clear()
    changed = score_pool("fa_cb", 2, classes=classes, embeddings=embeddings, fa_cb_lambda=0.9,
                         progress=Progress(info=infos.append)).scores
    assert set(np.argsort(-changed)[:2]) != {0, 2} and not any("same patches as cb" in m for m in infos)


@pytest.mark.parametrize("method", CORESET_METHODS)
def test_one_patch_is_selected_by_every_method(method):
    frame = table(1, class_entropy=[0.7], cls_1=[0.4], cls_2=[0.6])
    result = select_coreset(frame, method, 0.5, embeddings=np.array([[1.0, 2.0, 3.0]]))
    assert result.selected.tolist() == [True]
    expected = 0.5 * 0.0 + 0.5 * 1.0 if method == "fa_cb" else (0.0 if method == "fa" else 1.0)
    assert result.scores[0] == pytest.approx(expected)


@pytest.mark.parametrize("method", CORESET_METHODS)
def test_budget_above_the_pool_selects_every_patch_not_excluded(method):
    frame = table(5, class_entropy=[0.1, 0.2, 0.3, 0.4, 0.5], cls_1=[1, 0.5, 0.2, 0, 1], cls_2=[0, 0.5, 0.8, 1, 0],
                  excluded=[False, True, False, False, False])
    embeddings = np.random.default_rng(1).normal(size=(5, 4))
    result = select_coreset(frame, method, 10, "count", embeddings=embeddings, fd_k_min=2, fd_k_max=3)
    assert result.selected.tolist() == [True, False, True, True, True]
    assert result.budget == 4
    pool_scores = result.scores[[0, 2, 3, 4]]
    assert np.all((pool_scores >= 0) & (pool_scores <= 1))


@pytest.mark.parametrize("method", CORESET_METHODS)
def test_every_patch_excluded_selects_nothing_and_warns(method):
    frame = table(3, class_entropy=[0.1, 0.2, 0.3], cls_1=[1, 0, 1], excluded=[True, True, True])
    progress = Progress()
    result = select_coreset(frame, method, 0.5, parquet_path="/nowhere.parquet", progress=progress)
    assert not result.selected.any()
    assert np.isnan(result.scores).all()
    assert any("excluded" in w for w in progress.warnings)


def test_excluded_patch_with_the_best_score_is_never_selected():
    frame = table(3, class_entropy=[0.9, 0.2, 0.3], excluded=["true", "false", ""])
    assert select_coreset(frame, "lc", 1, "count").selected.tolist() == [False, False, True]


@pytest.mark.parametrize("method", ["fd", "lc_fd", "fa_cb"])
def test_seeded_runs_give_the_same_selection(method):
    rng = np.random.default_rng(5)
    frame = table(40, class_entropy=rng.random(40), cls_1=rng.random(40), cls_2=rng.random(40))
    embeddings = rng.normal(size=(40, 6))
    runs = [select_coreset(frame, method, 0.3, embeddings=embeddings, seed=11, fd_k_min=2, fd_k_max=5)
            for _ in range(2)]
    assert runs[0].selected.tolist() == runs[1].selected.tolist()
    np.testing.assert_array_equal(runs[0].scores, runs[1].scores)


def test_result_fields_use_the_public_names():
    result = select_coreset(table(class_entropy=[0.5, 1.0, 0.0, 1.0]), "lc", 0.5)
    fields = result.fields("my_score")
    assert list(fields.columns) == ["my_score", CORESET_SELECTED, SELECTION_STEP, SELECTION_RANK]
    assert list(result.fields().columns)[0] == CORESET_SCORE
    assert fields[SELECTION_RANK].tolist() == [0, 1, 0, 2]  # ties to the lower row


def test_selection_rank_orders_every_step_where_the_method_score_cannot():
    """Vector and fill picks have no method score (cb scores only its own picks): the rank gives the pick order
    across the steps, the order the training CSV lists them in."""
    frame = table(6, class_entropy=[0.1, 0.9, 0.5, 0.2, 0.8, 0.3], cls_1=[1, 0.5, 0.5, 1, 0, 1],
                  cls_2=[0, 0.5, 0.5, 0, 1, 0])
    result = select_coreset(frame, "cb", 5, "count", vector_rows=[3], method_pool=np.array([0, 1, 1, 1, 1, 0], bool),
                            method_budget=2)
    fields = result.fields()
    assert fields[SELECTION_STEP][3] == "vector" and fields[SELECTION_RANK][3] == 1
    assert np.isnan(fields[CORESET_SCORE][3])
    picked = fields[fields[SELECTION_RANK] > 0].sort_values(SELECTION_RANK)
    assert picked[SELECTION_STEP].tolist() == ["vector", "cb", "cb", "fill", "fill"]
    assert picked.index.tolist() == result.selection.order.tolist()
    assert (fields[SELECTION_RANK][~result.selected] == 0).all()


def test_unknown_method_and_missing_inputs_are_named():
    with pytest.raises(BalancedSamplingError, match="lc, cb, fd, fa, lc_fd, fa_cb"):
        select_coreset(table(class_entropy=[1, 1, 1, 1]), "kcenter", 0.5)
    with pytest.raises(BalancedSamplingError, match="cls_"):
        select_coreset(table(class_entropy=[1, 1, 1, 1]), "cb", 0.5)
    with pytest.raises(BalancedSamplingError, match="class_entropy"):
        select_coreset(table(), "lc", 0.5)


# --------------------------------------------------------------------------- the embedding cache join


def write_cache(path, frame, rows, model="facebook/dinov2-small|weights=abc|bands=1,2,3|stretch=2-98", dim=3):
    keys = patch_ids(validate_records(frame)).to_numpy()[rows]
    vectors = np.arange(len(rows) * dim, dtype=np.float32).reshape(len(rows), dim) + 1
    EmbeddingCache(str(path)).save(keys, model, vectors)
    return vectors


def test_embeddings_join_by_patch_in_row_order(tmp_path):
    frame = table(4)
    vectors = write_cache(tmp_path / "e.parquet", frame, [2, 0, 3, 1])
    loaded = load_embeddings(frame, tmp_path / "e.parquet")
    np.testing.assert_array_equal(loaded[[2, 0, 3, 1]], vectors)


def test_missing_embeddings_name_the_patches(tmp_path):
    frame = table(4)
    write_cache(tmp_path / "e.parquet", frame, [0, 1, 3])
    with pytest.raises(BalancedSamplingError, match=r"1 of 4 patches have no embedding.*col_off=512"):
        load_embeddings(frame, tmp_path / "e.parquet")
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        load_embeddings(frame, tmp_path / "none.parquet")


def test_several_models_need_a_model_name(tmp_path):
    frame = table(2)
    write_cache(tmp_path / "e.parquet", frame, [0, 1], model="small|weights=a")
    write_cache(tmp_path / "e.parquet", frame, [0, 1], model="base|weights=b", dim=5)
    with pytest.raises(BalancedSamplingError, match="several models"):
        load_embeddings(frame, tmp_path / "e.parquet")
    assert load_embeddings(frame, tmp_path / "e.parquet", model="base").shape == (2, 5)
    with pytest.raises(BalancedSamplingError, match="no embedding of model 'large'"):
        load_embeddings(frame, tmp_path / "e.parquet", model="large")


def test_embedding_method_reads_only_the_pool_from_the_cache(tmp_path):
    frame = table(3, excluded=[False, True, False])
    write_cache(tmp_path / "e.parquet", frame, [0, 2])  # the excluded patch has none, and needs none
    result = select_coreset(frame, "fa", 1, "count", parquet_path=tmp_path / "e.parquet")
    assert result.selected.sum() == 1 and not result.selected[1]


def test_embeddings_of_an_image_changed_since_are_refused_where_the_image_is(tmp_path):
    """A row's image state (file size and time when its pixels were read) must be the image's state now where the
    image is on this machine; where it is not, or for a row without a state (an older cache), the vector is taken."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from balanced_sampling_plugin.embedding_cache import image_state

    here, away = str(tmp_path / "here.tif"), str(tmp_path / "elsewhere" / "away.tif")
    with open(here, "wb") as handle:
        handle.write(b"pixels")
    frame = pd.DataFrame({"image_path": [here, here, away], "row_off": [0, 0, 0], "col_off": [0, 256, 0],
                          "patch_size": [256] * 3})
    keys = patch_ids(frame).to_numpy()
    vectors = np.arange(9, dtype=np.float32).reshape(3, 3)
    cache = tmp_path / "e.parquet"
    EmbeddingCache(str(cache)).save(keys, "m|weights=a", vectors,
                                    states=[image_state(here), image_state(here), "123:456"])
    np.testing.assert_array_equal(load_embeddings(frame, cache), vectors)  # 'away' is not here: taken

    stat, stat_state = os.stat(here), image_state(here)
    os.utime(here, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # the image changed since
    with pytest.raises(BalancedSamplingError, match=r"The image of 2 of 3 patches changed after its embedding was "
                                                    r"computed.*here\.tif.*col_off=256.*Compute DINOv2 uniqueness"):
        load_embeddings(frame, cache)

    # Stored with the bytes' digest (as extract_embeddings stores it): a new time alone is no change, new bytes are.
    from balanced_sampling_plugin.embedding_cache import with_digests

    EmbeddingCache(str(cache)).save(keys[:2], "m|weights=a", vectors[:2], states=with_digests([stat_state] * 2,
                                                                                             [here] * 2))
    os.utime(here, ns=(stat.st_atime_ns, stat.st_mtime_ns + 7_000_000_000))
    np.testing.assert_array_equal(load_embeddings(frame, cache), vectors)
    with open(here, "wb") as handle:
        handle.write(b"pixelz")  # the same size, other bytes
    with pytest.raises(BalancedSamplingError, match=r"The image of 2 of 3 patches changed after its embedding"):
        load_embeddings(frame, cache)

    # Recomputed for the new state (a partitioned cache keeps the old row in an older part): accepted again.
    folder = str(tmp_path / "parts") + os.sep
    EmbeddingCache(folder).save(keys, "m|weights=a", vectors, states=["1:1", "1:1", None])
    EmbeddingCache(folder).save(keys[:2], "m|weights=a", vectors[:2] + 10, states=[image_state(here)] * 2)
    np.testing.assert_array_equal(load_embeddings(frame, folder), np.vstack([vectors[:2] + 10, vectors[2:]]))

    # A cache written before the image_state column: accepted as before, also beside newer parts.
    old = pa.table({"patch_key": list(keys), "model": ["m|weights=a"] * 3,
                    "embedding": pa.array(list(vectors), pa.list_(pa.float32()))})
    pq.write_table(old, tmp_path / "old.parquet")
    np.testing.assert_array_equal(load_embeddings(frame, tmp_path / "old.parquet"), vectors)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(old, mixed / "part-00000000000000000001-old.parquet")
    EmbeddingCache(str(mixed)).save(keys[:1], "m|weights=a", vectors[:1] + 20, states=["1:1"])
    with pytest.raises(BalancedSamplingError, match=r"The image of 1 of 3 patches changed"):
        load_embeddings(frame, mixed)


# --------------------------------------------------------------------------- steps and spatial diversity


def test_steps_vector_then_method_then_fill():
    pool = np.array([True, True, True, True, True, False])
    scores = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 1.0])
    fill = np.array([0.0, 0.0, 1.0, 0.5, 0.0, 1.0])
    selection = select_steps(6, pool, 4, "fd", scores, vector_rows=[5, 4, 3], method_budget=1, fill_scores=fill)
    # vector: rows 4 (0.3) and 3 (0.2) in score order, 5 is excluded; fd: its best, row 0; fill: row 2 by entropy
    assert selection.order.tolist() == [4, 3, 0, 2]
    assert selection.step.tolist() == ["fd", "", "fill", "vector", "vector", ""]


def test_vector_rows_beyond_the_budget_keep_the_best_scores():
    pool = np.ones(4, dtype=bool)
    selection = select_steps(4, pool, 2, "lc", np.array([0.1, 0.2, 0.9, 0.5]), vector_rows=[0, 1, 2, 3])
    assert selection.order.tolist() == [2, 3]
    assert set(selection.step.tolist()) == {"vector", ""}


def test_method_pool_restricts_the_method_step():
    pool = np.ones(4, dtype=bool)
    selection = select_steps(4, pool, 2, "fd", np.array([0.9, 0.8, 0.7, 0.1]),
                             method_pool=np.array([False, False, True, True]), method_budget=1,
                             fill_scores=np.array([0.0, 1.0, 0.0, 0.0]))
    assert selection.order.tolist() == [2, 1]


def test_grid_cell_limit_keeps_n_per_cell():
    rule = GridCellLimit(x=[1, 2, 12, 3, 14], y=[1, 1, 1, 2, 2], cell_size=10, max_per_cell=1)
    selection = select_steps(5, np.ones(5, bool), 3, "lc", np.array([0.9, 0.8, 0.7, 0.6, 0.5]), diversity=rule)
    assert selection.order.tolist() == [0, 2]  # cell (0, 0) full after row 0, cell (1, 0) after row 2


def test_min_distance_between_selected_centroids():
    rule = MinDistance(x=[0, 3, 6, 100, 0], y=[0, 3, 0, 0, 5], distance=5)
    order = [i for i in range(5) if rule.try_add(i)]
    assert order == [0, 2, 3, 4]  # row 1 is 4.24 from row 0; row 4 is exactly 5 from row 0: allowed
    assert MinDistance([0, math.nan], [0, 0], 1).try_add(1)


def test_one_diversity_rule_at_a_time():
    assert diversity_rule([0], [0]) is None
    with pytest.raises(BalancedSamplingError, match="not both"):
        diversity_rule([0], [0], cell_size=1, max_per_cell=1, min_distance=2)
    with pytest.raises(BalancedSamplingError):
        GridCellLimit([0], [0], cell_size=0, max_per_cell=1)


def test_spatial_rule_leaves_the_subset_short_and_warns():
    frame = table(4, class_entropy=[0.4, 0.3, 0.2, 0.1])
    progress = Progress()
    rule = GridCellLimit([0, 1, 2, 30], [0, 0, 0, 0], cell_size=10, max_per_cell=1)
    result = select_coreset(frame, "lc", 3, "count", diversity=rule, progress=progress)
    assert result.selected.tolist() == [True, False, False, True]
    assert ("2 patches selected, fewer than the budget of 3: the spatial diversity rule refused the others (at "
            "most 1 patches per grid cell of 10 map units: the patches lie in 2 cells, so at most 2 can be selected; "
            "use smaller cells or a larger n).") in progress.warnings


# --------------------------------------------------------------------------- measures and weights


def test_measures_hand_computed():
    frame = pd.DataFrame({
        "image_path": ["a", "a", "b", "c"], "patch_size": [10, 10, 10, 20], "freq_cluster_id": [0, 1, 1, 2],
        "cls_1": [1.0, 0.5, 0.0, 1.0], "cls_2": [0.0, 0.5, 1.0, 0.0]})
    pool = np.ones(4, dtype=bool)
    selected = np.array([False, True, True, False])
    measures = report_measures(frame, selected, pool)
    # pixels: pool cls_1 = 100 + 50 + 0 + 400 = 550 of 700; subset cls_1 = 50 of 200
    assert measures["class_share_pool"] == pytest.approx({"cls_1": 550 / 700, "cls_2": 150 / 700})
    assert measures["class_share_subset"] == pytest.approx({"cls_1": 0.25, "cls_2": 0.75})
    assert measures["class_share_l1"] == pytest.approx(2 * (550 / 700 - 0.25))
    assert (measures["clusters_covered"], measures["clusters_in_pool"]) == (1, 3)
    assert (measures["tiles_covered"], measures["tiles_in_pool"]) == (2, 3)
    assert measures["coverage_radius"] is None


def test_coverage_radius_is_the_farthest_pool_patch_from_the_subset():
    embeddings = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=float)
    # selected: rows 0 and 1; row 3 is opposite row 0 (cosine distance 2) and orthogonal to row 1 (1)
    assert coverage_radius(embeddings, np.array([True, True, False, False])) == pytest.approx(1.0)
    assert coverage_radius(embeddings, np.ones(4, bool)) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(coverage_radius(embeddings, np.zeros(4, bool)))


def test_comparison_with_random_has_the_same_size():
    rng = np.random.default_rng(2)
    excluded = np.zeros(30, dtype=bool)
    excluded[:10] = True
    frame = table(30, class_entropy=rng.random(30), cls_1=rng.random(30), cls_2=rng.random(30), excluded=excluded)
    result = select_coreset(frame, "cb", 0.3)
    embeddings = rng.normal(size=(20, 4))
    comparison = compare_with_random(frame, result.selected, result.pool, embeddings, seed=3)
    assert comparison["method"]["selected"] == comparison["random"]["selected"] == 6
    assert comparison["method"]["pool"] == 20
    again = compare_with_random(frame, result.selected, result.pool, embeddings, seed=3)
    assert again["random"] == comparison["random"]  # seeded
    assert 0 < comparison["random"]["coverage_radius"] <= 2


def test_subset_weights_have_mean_one():
    frame = table(4, sampler_weight=[1.0, 3.0, 5.0, 0.0])
    np.testing.assert_allclose(subset_weights(frame, np.array([False, True, True, False])), [0.75, 1.25])
    assert subset_weights(table(2), np.array([True, True])).tolist() == [1.0, 1.0]
    with pytest.raises(BalancedSamplingError, match="weight 0"):
        subset_weights(frame, np.array([False, False, False, True]))


def test_method_on_a_class_filtered_sub_pool_with_its_own_budget_then_fill():
    frame = table(6, class_entropy=[0.9, 0.8, 0.1, 0.2, 0.3, 0.7], cls_4=[0.0, 0.1, 0.9, 0.6, 0.8, 0.2])
    sub_pool = (frame["cls_4"] > 0.5).to_numpy()  # rows 2, 3, 4
    embeddings = np.array([[1, 0], [1, 0], [0, 1], [0, 2], [5, 5], [1, 1]], dtype=float)
    result = select_coreset(frame, "fa", 4, "count", embeddings=embeddings, method_pool=sub_pool, method_budget=2)
    # fa over rows 2, 3, 4 only: mu .5, 1, 5 -> 0, 1/9, 1; sigma .5, 1, 0 -> 0, 1, 0 -> scores 0, 1/9, 0
    np.testing.assert_allclose(result.scores[[2, 3, 4]], [0.0, 1 / 9, 0.0])
    assert np.isnan(result.scores[[0, 1, 5]]).all()
    # fa takes row 3, then row 2 (tie with row 4 at 0, lower row); fill by entropy: rows 0 and 1
    assert result.selection.order.tolist() == [3, 2, 0, 1]
    assert result.step.tolist() == ["fill", "fill", "fa", "fa", "", ""]


def test_report_page_shows_both_subsets(tmp_path):
    from balanced_sampling_plugin.selection.report import write_coreset_report

    rng = np.random.default_rng(4)
    frame = table(20, class_entropy=rng.random(20), cls_1=rng.random(20), cls_2=rng.random(20),
                  freq_cluster_id=np.arange(20) % 3)
    result = select_coreset(frame, "lc", 0.25)
    comparison = compare_with_random(frame, result.selected, result.pool, rng.normal(size=(20, 3)))
    path = write_coreset_report(tmp_path / "r.html", comparison, "lc", result.budget,
                                list(result.step[result.selection.order]))
    page = open(path, encoding="utf-8").read()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "Coreset report: lc" in page and "5 of 20 patches" in page
    shares = comparison["method"]["class_share_subset"]
    assert f"{shares['cls_1']:.2%}" in page and f"{comparison['random']['class_share_subset']['cls_2']:.2%}" in page
    assert f"{comparison['method']['clusters_covered']} / 3" in page
    assert "<td>lc</td><td class=\"number\">5</td>" in page  # the steps table
    page = open(write_coreset_report(tmp_path / "r2.html", comparison, "lc", result.budget,
                                     ["vector", "vector", "lc", "fill"]), encoding="utf-8").read()
    assert page.index("<td>vector</td>") < page.index("<td>lc</td>") < page.index("<td>fill</td>"), "pick order"


def test_a_count_budget_above_the_pool_is_said(tmp_path):
    from balanced_sampling_plugin.selection.coreset import select_coreset

    table = pd.DataFrame({"image_path": [f"/d/t{i}.tif" for i in range(6)],
                          "mask_path": [f"/d/m{i}.tif" for i in range(6)],
                          "row_off": [0] * 6, "col_off": [0] * 6, "patch_size": [64] * 6,
                          "class_entropy": np.linspace(0.1, 0.6, 6), "cls_1": np.linspace(0, 1, 6),
                          "cls_2": np.linspace(1, 0, 6), "excluded": [False] * 5 + [True]})
    infos = []
    result = select_coreset(table, "lc", 5000, "count", progress=Progress(info=infos.append))
    assert result.selection.n_selected == 5
    assert "The budget asks for 5000 patches, but the pool holds 5 (included patches): all 5 are selected." in infos

"""Select coreset on a patch table: the pool, the method's scores, the steps, the fields written.

:func:`select_coreset` is what the QGIS algorithm and :func:`.config.run_coreset_config` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..contract import CORESET_EMBEDDING_METHODS, CORESET_SCORE, CORESET_SELECTED, SELECTION_RANK, SELECTION_STEP
from ..errors import BalancedSamplingError
from ..i18n import _
from ..progress import Progress, as_progress
from ..records import CLASS_ENTROPY, EXCLUDED, SAMPLER_WEIGHT, class_column, class_columns, describe_patch
from ..weights import included_mask
from .budget import DEFAULT_BUDGET, DEFAULT_BUDGET_MODE, budget_size
from .embeddings import EMBEDDING, load_embeddings
from .scores import (
    DEFAULT_FA_CB_LAMBDA,
    DEFAULT_FD_K_MAX,
    DEFAULT_FD_K_MIN,
    DEFAULT_FD_VENDI_DELTA,
    DEFAULT_SEED,
    Selection,
    check_method,
    class_shares,
    lc_scores,
    score_pool,
    select_steps,
)


@dataclass
class CoresetResult:
    """Fields over the whole table (row order) and what the run decided.

    scores : method score of each pool patch, NaN for excluded patches (not in the pool).
    """

    scores: np.ndarray
    selection: Selection
    pool: np.ndarray
    method: str
    budget: int
    details: dict = field(default_factory=dict)
    pool_embeddings: Optional[np.ndarray] = None

    @property
    def selected(self) -> np.ndarray:
        return self.selection.selected

    @property
    def step(self) -> np.ndarray:
        return self.selection.step

    def fields(self, score_column: str = CORESET_SCORE) -> pd.DataFrame:
        """The fields the run writes, one row per table row (index 0..n-1). The method's score covers the patches
        it scored; ``selection_rank`` is the pick order across the steps (vector, method, fill; 0 = not picked)."""
        rank = np.zeros(len(self.selected), dtype=np.int64)
        rank[self.selection.order] = np.arange(1, len(self.selection.order) + 1)
        return pd.DataFrame({score_column: self.scores, CORESET_SELECTED: self.selected,
                             SELECTION_STEP: self.step, SELECTION_RANK: rank})


def _finite_column(table: pd.DataFrame, rows: np.ndarray, column: str, method: str) -> np.ndarray:
    if column not in table.columns:
        raise BalancedSamplingError(
            _("Coreset method {method} needs the field '{field}'; run '{algorithm}' first.").format(
                method=method, field=column, algorithm=_("Compute composition clusters")))
    values = pd.to_numeric(table[column].iloc[rows], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise BalancedSamplingError(
            _("Field '{field}' of {patch} is empty or not a number; coreset method {method} needs it for every patch "
              "that is not excluded.").format(field=column, patch=describe_patch(table, table.index[rows[bad[0]]]),
                                              method=method))
    return values


def pool_classes(table: pd.DataFrame, rows: np.ndarray, method: str, nodata_class: Optional[int] = None):
    columns = [c for c in class_columns(map(str, table.columns))
               if nodata_class is None or c != class_column(nodata_class)]
    if not columns:
        raise BalancedSamplingError(
            _("Coreset method {method} needs the class proportion fields (cls_<value>); run '{algorithm}' first.")
            .format(method=method, algorithm=_("Compute composition clusters")))
    return table.iloc[rows][columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def select_coreset(table: pd.DataFrame, method: str = "lc", budget=DEFAULT_BUDGET,
                   budget_mode: str = DEFAULT_BUDGET_MODE, *, parquet_path=None,
                   embeddings: Optional[np.ndarray] = None, model: Optional[str] = None,
                   embedding_column: str = EMBEDDING, fd_k_min: int = DEFAULT_FD_K_MIN,
                   fd_k_max: int = DEFAULT_FD_K_MAX, fd_use_vendi: bool = False,
                   fd_vendi_delta: float = DEFAULT_FD_VENDI_DELTA, lc_fd_cutoff_m: Optional[int] = None,
                   fa_cb_lambda: float = DEFAULT_FA_CB_LAMBDA, seed: int = DEFAULT_SEED,
                   nodata_class: Optional[int] = None, excluded_field: str = EXCLUDED,
                   vector_rows: Optional[Sequence[int]] = None, method_budget: Optional[int] = None,
                   method_pool: Optional[np.ndarray] = None, diversity=None,
                   progress: Optional[Progress] = None) -> CoresetResult:
    """Score the pool (patches not excluded) by ``method`` and select ``budget`` of it.

    Parameters
    ----------
    table : the patch table (fields of the chain: class_entropy, cls_<c>, excluded, image_path + window).
    method : one of lc, cb, fd, fa, lc_fd, fa_cb (:mod:`.scores`).
    budget, budget_mode : a fraction of the pool (0 < budget <= 1) or a count (:mod:`.budget`).
    parquet_path, model, embedding_column : the embedding cache the embedding methods read
        (:func:`.embeddings.load_embeddings`), unless ``embeddings`` (len(table), D) are given.
    vector_rows, method_budget, method_pool, diversity : the selection steps (:func:`.scores.select_steps`):
        rows taken first; the method's own budget (a count) and sub-pool (bool over the table, e.g. the
        patches with cls_4 > 0.5: the method then scores only those, the others keep no score); a spatial
        rule. What the method leaves of the budget is filled by class entropy when the table has it.
        cb and fa_cb start from the class sums of the vector rows (when they leave room in the budget), so the
        whole subset is balanced; those rows then keep no method score.
    nodata_class : a class left out of cb's class distributions.
    """
    progress = as_progress(progress)
    check_method(method)
    pool = included_mask(table, excluded_field) if excluded_field in table.columns else np.ones(len(table), bool)
    rows = np.flatnonzero(pool)
    size = budget_size(budget, budget_mode, len(rows))
    scores = np.full(len(table), np.nan)
    details: dict = {}
    pool_embeddings = None
    if budget_mode != "fraction" and len(rows) and float(budget) > len(rows):
        progress.info(_("The budget asks for {budget} patches, but the pool holds {n} (included patches): all {n} "
                        "are selected.").format(budget=int(float(budget)), n=len(rows)))
    if len(rows) == 0:
        progress.warning(_("Every patch is excluded; no patch can be selected."))
        selection = Selection(np.zeros(len(table), bool), np.full(len(table), "", dtype=object),
                              np.zeros(0, np.int64), 0)
        return CoresetResult(scores, selection, pool, method, 0, details)

    # The method scores the pool, or only its sub-pool (method_pool), up to its own budget.
    in_scored = np.ones(len(rows), bool) if method_pool is None else np.asarray(method_pool, bool)[rows]
    cb_start = first_only = None
    if method in ("cb", "fa_cb") and vector_rows is not None and len(vector_rows):
        # The vector step takes these first: cb balances the whole subset, so it starts from their class sums
        # and does not pick them again. When they fill the budget, cb orders them by balancing among them alone:
        # over the whole pool it scores only its own first picks, and the others would go in table order.
        first = np.intersect1d(np.asarray(vector_rows, dtype=np.int64), rows)
        if 0 < len(first) < size:
            in_scored &= ~np.isin(rows, first)
            cb_start = class_shares(pool_classes(table, first, method, nodata_class)).sum(axis=0)
        elif len(first):
            first_only = first
    scored = rows[in_scored]
    score_budget = size if method_budget is None else int(min(size, max(int(method_budget), 0)))
    entropy = classes = scored_embeddings = None
    if method in ("lc", "lc_fd") and len(scored):
        entropy = _finite_column(table, scored, CLASS_ENTROPY, method)
    if method in ("cb", "fa_cb") and len(scored):
        classes = pool_classes(table, scored, method, nodata_class)
    if method in CORESET_EMBEDDING_METHODS:
        if embeddings is not None:
            pool_embeddings = np.asarray(embeddings, dtype=np.float32)[rows]
        else:
            progress.info(_("Reading the embeddings of {n} patches from '{path}'.").format(n=len(rows),
                                                                                        path=parquet_path))
            pool_embeddings = load_embeddings(table.iloc[rows], parquet_path, model, embedding_column)
        scored_embeddings = pool_embeddings[in_scored]
    if len(scored):
        result = score_pool(method, score_budget, entropy=entropy, classes=classes, embeddings=scored_embeddings,
                            fd_k_min=fd_k_min, fd_k_max=fd_k_max, fd_use_vendi=fd_use_vendi,
                            fd_vendi_delta=fd_vendi_delta, lc_fd_cutoff_m=lc_fd_cutoff_m,
                            fa_cb_lambda=fa_cb_lambda, seed=seed, cb_start=cb_start,
                            progress=progress.child(0.0, 0.9))
        details.update(result.details)
        scores[scored] = result.scores
    if first_only is not None:
        in_first = np.isin(rows, first_only)
        ordered = score_pool(method, size, classes=pool_classes(table, first_only, method, nodata_class),
                             embeddings=None if pool_embeddings is None else pool_embeddings[in_first],
                             fa_cb_lambda=fa_cb_lambda, seed=seed)
        scores[first_only] = ordered.scores
    else:
        progress.warning(_("No patch that is not excluded is in the sub-pool of method {method}; the budget is "
                           "filled by class entropy.").format(method=method))
    fill = None
    if CLASS_ENTROPY in table.columns:
        values = pd.to_numeric(table[CLASS_ENTROPY], errors="coerce").to_numpy(dtype=np.float64)
        fill = np.full(len(table), -np.inf)
        finite = np.isfinite(values[rows])
        fill[rows[finite]] = lc_scores(values[rows[finite]]) if finite.any() else 0.0
    selection = select_steps(len(table), pool, size, method, np.nan_to_num(scores, nan=-np.inf),
                             vector_rows=vector_rows, method_budget=method_budget, method_pool=method_pool,
                             fill_scores=fill, diversity=diversity, progress=progress.child(0.9, 1.0))
    if selection.n_selected < size:
        if diversity is not None and hasattr(diversity, "describe"):
            progress.warning(_("{selected} patches selected, fewer than the budget of {budget}: the spatial diversity "
                               "rule refused the others ({rule}).").format(
                                   selected=selection.n_selected, budget=size, rule=diversity.describe()))
        else:
            progress.warning(_("{selected} patches selected, fewer than the budget of {budget}: the steps left no "
                               "other candidate.").format(selected=selection.n_selected, budget=size))
    return CoresetResult(scores, selection, pool, method, size, details, pool_embeddings)


def subset_weights(table: pd.DataFrame, selected: np.ndarray) -> np.ndarray:
    """The selected rows' sampler weights re-normalised to mean 1 over the subset (1 when the table has no
    ``sampler_weight``)."""
    selected = np.asarray(selected, dtype=bool)
    if SAMPLER_WEIGHT not in table.columns:
        return np.ones(int(selected.sum()))
    weights = pd.to_numeric(table[SAMPLER_WEIGHT], errors="coerce").to_numpy(dtype=np.float64)[selected]
    bad = ~(np.isfinite(weights) & (weights >= 0))
    if bad.any():
        row = np.flatnonzero(selected)[np.flatnonzero(bad)[0]]
        raise BalancedSamplingError(
            _("Field '{field}' of {patch} is not a number >= 0; re-run '{algorithm}'.").format(
                field=SAMPLER_WEIGHT, patch=describe_patch(table, table.index[row]),
                algorithm=_("Combine sampler weights")))
    mean = weights.mean() if len(weights) else 0.0
    if not mean > 0:
        raise BalancedSamplingError(_("Every selected patch has sampler weight 0; the training sampler could draw "
                                      "nothing from the subset."))
    return weights / mean

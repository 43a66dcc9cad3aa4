"""Sampler weights: turn the per-patch signals into one ``sampler_weight`` per patch.

Inputs are plain table fields: ``freq_cluster_weight`` (composition rarity, from
*Compute composition clusters*), ``uniqueness_score`` (visual uniqueness, from
*Compute DINOv2 uniqueness*), the class-proportion fields ``cls_<value>`` (share of
each class among the non-nodata pixels of a patch) and ``excluded``.

Definitions (the report and the tests rely on them)
---------------------------------------------------
Included patches
    Rows whose ``excluded`` field is false (every row when the field is absent).
    Ranks, class frequencies, the floor and the normalisation are computed over
    included patches only; excluded patches keep their row and get weight 0.
Percentile rank
    ``scipy.stats.rankdata(values, "average") / n`` over the ``n`` included patches:
    the lowest distinct value gets ``1/n``, the highest ``1``, and tied values share
    the mean of their ranks, so the patches of one composition cluster always get
    the same composition rank. Ranks lie in ``[1/n, 1]``: never 0, so no rank
    method can silence a patch, and their mean is ``(n + 1) / (2n)``, about 0.5.
Strength
    Rank methods raise their combined rank to the power ``strength`` (default 1).
    With untied ranks, ``rank**s`` has mean about ``1/(s+1)``: a single-rank method
    draws no patch more than about ``s+1`` times as often as uniform sampling, and
    no class share can grow by more than that factor either.
Floor
    After combining, weights below ``floor * max(weight)`` are raised to that value
    (default ``1e-3``). Every included patch keeps a chance to be drawn (no data is
    discarded), even with a raw score of 0 or a high strength.
    The target methods (``target_shares``) solve for weights >= ``floor`` in mean-1
    units instead (an absolute floor keeps their problem convex), and are not floored again.
Normalisation
    Included weights are scaled to mean 1, so a weight reads as "times as often as
    uniform sampling". ``WeightedRandomSampler`` only uses the ratios.
Valid pixels
    ``patch_size**2 * (1 - nodata_ratio)`` per patch (:func:`valid_pixel_counts`). Class
    shares per epoch count pixels: a patch that is half nodata adds half as many pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..contract import METHOD_ALIASES, METHOD_SIGNALS, NODATA_RATIO, PATCH_SIZE
from ..contract import SAMPLING_METHODS  # noqa: F401  (re-exported)
from ..errors import BalancedSamplingError
from ..i18n import N_, _
from ..progress import Progress, as_progress
from . import published, targets
from ..records import (
    CLASS_PREFIX,
    EXCLUDED,
    FREQ_CLUSTER_WEIGHT,
    PATCH_ID,
    SAMPLER_WEIGHT,
    UNIQUENESS_SCORE,
    class_columns,
    shown_value,
)

RANK_METHODS = ("rank_max", "rank_multiply", "rank_add", "composition_only", "uniqueness_only")
#: Methods that reach class shares by solving for the weights (absolute floor, no boost).
TARGET_METHODS = ("target_shares",)
DEFAULT_FLOOR = 1e-3
#: Below this effective sample size / included patches, a method is warned about (log and report):
#: an epoch then draws mostly the same few patches.
LOW_ESS_RATIO = 0.3

# Algorithm names as the Processing toolbox shows them (translated where shown: _(COMPOSITION_ALGORITHM)).
COMPOSITION_ALGORITHM = N_("Compute composition clusters")
UNIQUENESS_ALGORITHM = N_("Compute DINOv2 uniqueness")

# The signals a method reads; "classes" are the cls_<value> proportion fields.
_COMPOSITION, _UNIQUENESS, _CLASSES = "composition", "uniqueness", "classes"
_METHOD_SIGNALS = {method: set(signals) for method, signals in METHOD_SIGNALS.items()}

#: One sentence per method, for help texts and the report (English; translated where shown:
#: ``_(METHOD_DESCRIPTIONS[method])``).
METHOD_DESCRIPTIONS = {
    "rank_max": N_(
        "max(rank_comp, rank_uniq): a patch is favoured when either signal is high. The mean of the max "
        "of two independent ranks is 2/3, so at strength 1 no patch is drawn more than about 1.5x as often "
        "as under uniform sampling (ties shift this a little): it reorders the dataset more than it "
        "rebalances classes."
    ),
    "rank_multiply": N_(
        "rank_comp x rank_uniq: penalises patches low on both signals. The product of two independent "
        "ranks has mean 1/4, so a patch is drawn at most about 4x as often as under uniform sampling."
    ),
    "rank_add": N_(
        "(rank_comp + rank_uniq) / 2: a smooth blend. Mean rank 0.5 means at most 2x uniform at "
        "strength 1, and averaging two signals makes extreme weights rarer still."
    ),
    "multiplicative": N_(
        "freq_cluster_weight x uniqueness_score on their raw scales: unbounded, so a few extreme patches "
        "can dominate the draws; check the effective sample size."
    ),
    "composition_only": N_(
        "rank of freq_cluster_weight: rare composition clusters are favoured, every patch of a cluster "
        "shares one (tied) rank. Mean rank 0.5 means at most 2x uniform at strength 1."
    ),
    "uniqueness_only": N_(
        "rank of uniqueness_score: visually unusual patches are favoured. Mean rank 0.5 means at most "
        "2x uniform at strength 1."
    ),
    "class_balanced": N_(
        "sum over classes of (patch share / mean share)^alpha: targets class pixel shares directly. "
        "alpha 0.5 lifts rare classes while keeping the effective sample size high; alpha 1 equalises "
        "harder at a lower effective sample size; optionally mixed with the uniqueness rank."
    ),
    "target_shares": N_(
        "the weights with the largest effective sample size that reach the class shares asked for; with no "
        "target, the most balanced shares (largest smallest-class share) the data allows at the minimum "
        "effective sample size, or one class lifted as far as it allows. An unreachable target is replaced by "
        "the nearest reachable shares."
    ),
    "repeat_factor": N_(
        "LVIS repeat factor (detectron2, mmengine): r_c = max(1, sqrt(t / f_c)) with f_c the fraction of "
        "patches containing class c; a patch's weight is the largest r_c of its classes."
    ),
    "rare_class_sampling": N_(
        "DAFormer rare-class sampling: a class is drawn with probability softmax((1 - f_c) / T) of its pixel "
        "frequency f_c, then a patch uniformly among those containing it."
    ),
}


@dataclass(frozen=True)
class WeightResult:
    """The outcome of :func:`combine_weights`.

    Attributes
    ----------
    weights : pandas.Series
        float64, indexed like the input table: mean 1 over included patches, 0 for excluded ones.
    method : str
    included : numpy.ndarray
        (n,) bool, True for the patches that can be drawn.
    n_floored : int
        Included patches raised to the floor.
    rare_classes : tuple of str
        Class fields boosted by the rare-class boost (empty when it is off).
    params : dict
        The keyword options used besides ``method``; ``compare_methods(table, **params)``
        reproduces this run for every method.
    notes : tuple of str
        Messages also sent to the progress log.
    """

    weights: pd.Series
    method: str
    included: np.ndarray
    n_floored: int
    rare_classes: tuple
    params: dict
    notes: tuple

    @property
    def n_included(self) -> int:
        return int(self.included.sum())

    @property
    def n_excluded(self) -> int:
        return int(self.included.size - self.included.sum())


def percentile_rank(values) -> np.ndarray:
    """Average rank divided by n: (n,) float in ``[1/n, 1]``, ties share the mean of their ranks.

    Invariant to the order of ``values``; raises on NaN or infinite values.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise BalancedSamplingError(_("percentile_rank expects a 1-D array, got shape {shape}.").format(
            shape=values.shape))
    if not np.isfinite(values).all():
        raise BalancedSamplingError(_("percentile_rank got NaN or infinite values."))
    if values.size == 0:
        return values
    return rankdata(values, method="average") / values.size


def effective_sample_size(weights) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` of (n,) non-negative weights.

    Equals n for equal weights and 1 when a single patch holds all the weight;
    zero weights (excluded patches) do not change it.
    """
    w = np.asarray(weights, dtype=float)
    total = w.sum()
    if not total > 0:
        raise BalancedSamplingError(_("The effective sample size needs at least one positive weight."))
    return float(total * total / np.square(w).sum())


def low_ess_warning(method: str, ess: float, n_included: int) -> Optional[str]:
    """The warning (translated) when ``ess`` is below :data:`LOW_ESS_RATIO` of ``n_included``, else None."""
    if not n_included > 0 or ess >= LOW_ESS_RATIO * n_included:
        return None
    if method == "target_shares":
        advice = _("Ask for lower target shares, raise the minimum ESS, or cap the largest weight.")
    elif method == "rare_class_sampling":
        advice = _("Raise the temperature T, or consider class_balanced or target_shares with a minimum ESS.")
    else:
        advice = _("Consider a rank method, class_balanced, or a lower strength.")
    return _("Method '{method}' has an effective sample size of {ess:.0f}, {share:.0%} of the {n} included "
             "patches (below {limit:.0%}): a few patches dominate the draws and an epoch sees little variety. "
             "{advice}").format(method=method, ess=ess, share=ess / n_included, n=n_included, limit=LOW_ESS_RATIO,
                                advice=advice)


def expected_class_shares(proportions, weights, valid_pixels=None) -> np.ndarray:
    """Expected share of each class among the valid pixels drawn per epoch, (C,).

    ``sum_i w_i v_i p_ic / sum_i w_i v_i`` for proportions (n, C), weights (n,) and
    valid pixels v (n,) (None = equal, each patch counting once). Rows with weight 0
    are ignored, so their proportions may be NaN. Uniform sampling is ``weights = 1``
    on included patches.
    """
    if valid_pixels is not None:
        return targets.pixel_class_shares(proportions, valid_pixels, weights)
    p = np.asarray(proportions, dtype=float)
    w = np.asarray(weights, dtype=float)
    if p.ndim != 2 or w.shape != (p.shape[0],):
        raise BalancedSamplingError(_("expected_class_shares needs (n, C) and (n,) arrays, got {p} and {w}.").format(
            p=p.shape, w=w.shape))
    drawn = w > 0
    if not drawn.any():
        raise BalancedSamplingError(_("expected_class_shares needs at least one positive weight."))
    return w[drawn] @ p[drawn] / w[drawn].sum()


def class_balanced_weights(proportions, alpha: float = 0.5) -> np.ndarray:
    """``omega_i = sum_c (p_ic / f_c)^alpha`` for proportions (n, C), (n,) float.

    ``f_c`` is the mean share of class c over the given (included) patches; classes
    with ``f_c == 0`` are skipped. ``alpha = 1`` makes every present class contribute
    equally in expectation; smaller alpha tempers it.
    """
    p = np.asarray(proportions, dtype=float)
    frequencies = p.mean(axis=0)
    present = frequencies > 0
    return ((p[:, present] / frequencies[present]) ** alpha).sum(axis=1)


def valid_pixel_counts(table: pd.DataFrame) -> Optional[np.ndarray]:
    """(n,) valid pixels per patch, ``patch_size**2 * (1 - nodata_ratio)``; None without ``patch_size``.

    A missing ``nodata_ratio`` (field or value) counts as 0; values are clipped to [0, 1].
    """
    if PATCH_SIZE not in table.columns:
        return None
    size = pd.to_numeric(table[PATCH_SIZE], errors="coerce").to_numpy(dtype=float)
    nodata = (pd.to_numeric(table[NODATA_RATIO], errors="coerce").to_numpy(dtype=float)
              if NODATA_RATIO in table.columns else np.zeros(len(table)))
    counts = np.square(size) * (1 - np.clip(np.nan_to_num(nodata), 0, 1))
    return np.where(np.isfinite(counts), counts, 0.0)


def rare_class_mask(frequencies, rare_classes: Optional[Sequence[int]] = None, class_values=None) -> np.ndarray:
    """Which classes are rare, (C,) bool.

    Parameters
    ----------
    frequencies : (C,) share of each class over the included patches (pixel share, or mean share).
    rare_classes : class values, or None for "present and below the mean frequency of present classes".
    class_values : (C,) the class value of each column; needed with explicit ``rare_classes``.
    """
    frequencies = np.asarray(frequencies, dtype=float)
    if rare_classes is None:
        present = frequencies > 0
        return present & (frequencies < frequencies[present].mean()) if present.any() else present
    values = list(class_values)
    unknown = sorted({int(c) for c in rare_classes} - set(values))
    if unknown:
        raise BalancedSamplingError(
            _("Rare classes {unknown} have no proportion field ({prefix}<value>); the classes found are "
              "{values}.").format(unknown=unknown, prefix=CLASS_PREFIX, values=values)
        )
    return np.isin(values, [int(c) for c in rare_classes])


def rare_class_boost(proportions, multiplier: float, rare) -> np.ndarray:
    """Boost factor ``1 + (multiplier - 1) * share of rare classes in the patch``, (n,) float."""
    p = np.asarray(proportions, dtype=float)
    return 1.0 + (multiplier - 1.0) * p[:, np.asarray(rare, dtype=bool)].sum(axis=1)


def apply_floor(weights, floor: float = DEFAULT_FLOOR) -> tuple[np.ndarray, int]:
    """Raise (n,) weights below ``floor * max`` to that value; return them and how many were raised."""
    w = np.asarray(weights, dtype=float)
    minimum = floor * w.max()
    low = w < minimum
    return np.where(low, minimum, w), int(low.sum())


def included_mask(table: pd.DataFrame, excluded_field: str = EXCLUDED) -> np.ndarray:
    """(n,) bool, True for patches that are not excluded; all True when the field is absent.

    Accepts booleans, numbers (non-zero = excluded), strings such as "true"/"false"/"1"/"0",
    and empty values (= not excluded), as QGIS layers and CSV files deliver them.
    """
    if excluded_field not in table.columns:
        return np.ones(len(table), dtype=bool)
    column = table[excluded_field]
    if pd.api.types.is_bool_dtype(column) and not column.isna().any():
        return ~column.to_numpy(dtype=bool)
    return ~np.array([_as_flag(v, excluded_field, i) for i, v in zip(table.index, column)], dtype=bool)


_TRUE_WORDS = {"true", "t", "yes", "y", "1"}
_FALSE_WORDS = {"false", "f", "no", "n", "0", ""}


def _as_flag(value, field: str, index) -> bool:
    if value is None or pd.isna(value):
        return False
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)):
        return bool(value)
    word = str(value).strip().lower()
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return word in _TRUE_WORDS
    raise BalancedSamplingError(_("Field '{field}' of the patch at row {row} is {value}; expected true or false.")
                                .format(field=field, row=index, value=repr(value)))


def method_signals(method: str, uniqueness_mix: float = 0.0, rare_boost: Optional[float] = None) -> set:
    """The signals ``method`` reads with these options: a subset of {"composition", "uniqueness", "classes"}."""
    _check_method(method)
    needed = set(_METHOD_SIGNALS[method])
    if method == "class_balanced" and uniqueness_mix > 0:
        needed.add(_UNIQUENESS)
    if rare_boost is not None and rare_boost != 1:
        needed.add(_CLASSES)
    return needed


def available_methods(
    table: pd.DataFrame,
    comp_field: str = FREQ_CLUSTER_WEIGHT,
    uniq_field: str = UNIQUENESS_SCORE,
    class_fields: Optional[Sequence[str]] = None,
    uniqueness_mix: float = 0.0,
    rare_boost: Optional[float] = None,
) -> tuple:
    """The methods of :data:`SAMPLING_METHODS` whose signals are fields of ``table``, in enum order."""
    present = set()
    if comp_field in table.columns:
        present.add(_COMPOSITION)
    if uniq_field in table.columns:
        present.add(_UNIQUENESS)
    if _class_fields(table, class_fields):
        present.add(_CLASSES)
    return tuple(m for m in SAMPLING_METHODS if method_signals(m, uniqueness_mix, rare_boost) <= present)


def combine_weights(
    table: pd.DataFrame,
    method: str = "rank_max",
    *,
    strength: float = 1.0,
    class_alpha: float = 0.5,
    uniqueness_mix: float = 0.0,
    rare_boost: Optional[float] = None,
    rare_classes: Optional[Sequence[int]] = None,
    floor: float = DEFAULT_FLOOR,
    target_shares: Union[None, str, Mapping[int, float]] = None,
    min_ess: float = targets.DEFAULT_MIN_ESS,
    lift_class: Optional[int] = None,
    max_weight: Optional[float] = None,
    min_pixels: Optional[float] = None,
    repeat_threshold: Optional[float] = None,
    temperature: float = published.DEFAULT_TEMPERATURE,
    comp_field: str = FREQ_CLUSTER_WEIGHT,
    uniq_field: str = UNIQUENESS_SCORE,
    excluded_field: str = EXCLUDED,
    class_fields: Optional[Sequence[str]] = None,
    progress: Optional[Progress] = None,
) -> WeightResult:
    """One sampler weight per patch (see the module docstring for ranks, floor and normalisation).

    Parameters
    ----------
    table : DataFrame, one row per patch.
    method : one of :data:`SAMPLING_METHODS`.
    strength : power (>= 0) applied to the combined rank of rank methods; ignored otherwise.
    class_alpha : alpha (> 0) of ``class_balanced``.
    uniqueness_mix : m in [0, 1]; ``class_balanced`` weights become
        ``omega * ((1 - m) + m * rank_uniq)``; 0 turns it off. Ignored by other methods.
    rare_boost : multiplier (>= 1) of the optional rare-class boost, any method;
        None or 1 turns it off. Weights are multiplied by
        ``1 + (rare_boost - 1) * share of rare classes in the patch``.
    rare_classes : class values treated as rare by the boost; None = classes whose
        pixel share over the included patches is below the mean share of the classes present.
    floor : fraction in (0, 1] of the largest weight that every included patch gets at least
        (``target_shares``: of the mean weight).
    target_shares : ``target_shares`` only: class value -> share of the valid pixels drawn
        (or text ``"1:0.5, 2:8%"``); None or empty = as balanced as the data allows.
    min_ess : ``target_shares`` without targets: smallest effective sample size, a fraction of the
        included patches in (0, 1].
    lift_class : ``target_shares`` only: raise this class value's share as far as ``min_ess`` allows.
    max_weight : ``target_shares`` only: largest weight in mean-1 units (>= 1), or None.
    min_pixels : ``repeat_factor`` and ``rare_class_sampling``: valid pixels of a class that make a
        patch contain it; None = DAFormer's 3000 px per 512 x 512 px scaled by patch area.
    repeat_threshold : ``repeat_factor``'s t; None = the median fraction of patches containing a class.
    temperature : ``rare_class_sampling``'s T (> 0).
    comp_field, uniq_field, excluded_field : field names of the signals.
    class_fields : class-proportion fields; None = every ``cls_<value>`` field.
    progress : receives notes (ignored options, floored patches).

    Returns
    -------
    WeightResult

    Raises
    ------
    BalancedSamplingError
        Unknown method or bad option, a needed field missing (naming the algorithm to
        run first), every patch excluded, or a NULL/invalid value in an included patch.
    """
    if method in METHOD_ALIASES:
        method, implied = METHOD_ALIASES[method]
        class_alpha = implied.get("class_alpha", class_alpha)
    _check_options(method, strength, class_alpha, uniqueness_mix, rare_boost, floor)
    _check_target_options(min_ess, max_weight, min_pixels, repeat_threshold, temperature)
    progress = as_progress(progress)
    params = dict(
        strength=strength, class_alpha=class_alpha, uniqueness_mix=uniqueness_mix, rare_boost=rare_boost,
        rare_classes=None if rare_classes is None else tuple(rare_classes), floor=floor,
        target_shares=target_shares if isinstance(target_shares, (str, type(None))) else dict(target_shares),
        min_ess=min_ess, lift_class=lift_class, max_weight=max_weight, min_pixels=min_pixels,
        repeat_threshold=repeat_threshold, temperature=temperature, comp_field=comp_field,
        uniq_field=uniq_field, excluded_field=excluded_field,
        class_fields=None if class_fields is None else tuple(class_fields),
    )
    included = included_mask(table, excluded_field)
    if not included.any():
        raise BalancedSamplingError(
            _("All {n} patches are excluded, so none can be drawn. Loosen the exclusion options of '{algorithm}' "
              "or check the '{field}' field.").format(n=len(table), algorithm=_(COMPOSITION_ALGORITHM),
                                                     field=excluded_field)
        )
    drawable = table.iloc[np.flatnonzero(included)]
    needed = method_signals(method, uniqueness_mix, rare_boost)
    notes = []

    def note(message: str, warn: bool = False) -> None:
        notes.append(message)
        (progress.warning if warn else progress.info)(message)

    if method not in RANK_METHODS and strength != 1:
        note(_("strength {strength} is ignored by '{method}' (it applies to rank methods).").format(
            strength=f"{strength:g}", method=method), warn=True)
    if method != "class_balanced" and uniqueness_mix > 0:
        note(_("uniqueness_mix {mix} is ignored by '{method}' (it applies to class_balanced).").format(
            mix=f"{uniqueness_mix:g}", method=method), warn=True)
    target_options = [name for name, value in (("target_shares", target_shares), ("lift_class", lift_class),
                                               ("max_weight", max_weight)) if value not in (None, "", {})]
    if method not in TARGET_METHODS and target_options:
        note(_("{options} ignored by '{method}' (they apply to target_shares).").format(
            options=", ".join(target_options), method=method), warn=True)

    signals = {}
    if _COMPOSITION in needed:
        signals[_COMPOSITION] = _signal(
            drawable, comp_field, method, COMPOSITION_ALGORITHM, method == "multiplicative", "uniqueness_only"
        )
    if _UNIQUENESS in needed:
        signals[_UNIQUENESS] = _signal(
            drawable, uniq_field, method, UNIQUENESS_ALGORITHM, method == "multiplicative", "composition_only"
        )
    fields = _class_fields(table, class_fields)
    proportions = _class_matrix(drawable, fields, method) if _CLASSES in needed else None
    valid = valid_pixel_counts(drawable)
    if method in TARGET_METHODS:
        return _target_result(table, included, proportions, valid, fields, params, note, notes)
    if method in ("repeat_factor", "rare_class_sampling"):
        raw = _published_weights(method, proportions, valid, drawable, params, note)
    else:
        raw = _method_weights(method, signals, proportions, strength, class_alpha, uniqueness_mix)

    boosted = ()
    if rare_boost is not None and rare_boost != 1:
        values = [int(f[len(CLASS_PREFIX):]) if f[len(CLASS_PREFIX):].isdigit() else None for f in fields]
        # pytorch-smt-tools' default: classes whose global pixel share is below the mean share
        frequencies = expected_class_shares(proportions, np.ones(len(proportions)), valid)
        rare = rare_class_mask(frequencies, rare_classes, values)
        boosted = tuple(f for f, r in zip(fields, rare) if r)
        raw = raw * rare_class_boost(proportions, rare_boost, rare)
        if boosted:
            note(_("Rare-class boost x{boost} on {classes}.").format(
                boost=f"{rare_boost:g}", classes=", ".join(boosted)))
        else:
            note(_("Rare-class boost x{boost} on no class.").format(boost=f"{rare_boost:g}"))

    if not np.isfinite(raw).all():
        raise BalancedSamplingError(
            _("Method '{method}' produced infinite weights; the input signals are too large.").format(method=method))
    if not raw.max() > 0:
        raise BalancedSamplingError(
            _("Method '{method}' gives every included patch a weight of 0 (all signals are 0); check the input "
              "fields or pick another method.").format(method=method)
        )
    raw, n_floored = apply_floor(raw, floor)
    if n_floored:
        note(_("{n} patches were raised to the floor ({floor} x the largest weight).").format(
            n=n_floored, floor=f"{floor:g}"))

    weights = np.zeros(len(table))
    weights[included] = raw / raw.mean()
    warning = low_ess_warning(method, effective_sample_size(weights[included]), int(included.sum()))
    if warning:
        note(warning, warn=True)
    return WeightResult(
        weights=pd.Series(weights, index=table.index, name=SAMPLER_WEIGHT),
        method=method,
        included=included,
        n_floored=n_floored,
        rare_classes=boosted,
        params=params,
        notes=tuple(notes),
    )


def compare_methods(table: pd.DataFrame, methods: Optional[Sequence[str]] = None, **options) -> pd.DataFrame:
    """Class shares and weight statistics of uniform sampling and of every usable method.

    Parameters
    ----------
    table : DataFrame, one row per patch.
    methods : methods to compare; None = every method the table's fields allow
        (:func:`available_methods`).
    **options : keyword options of :func:`combine_weights` (e.g. ``result.params``).

    Returns
    -------
    DataFrame indexed by ``"uniform"`` then each method, with columns
    ``share_<class field>`` (:func:`expected_class_shares`, one per class field),
    ``ess`` (:func:`effective_sample_size`), ``ess_ratio`` (ess / included patches)
    and ``max_ratio`` (largest weight / mean weight over included patches, i.e. the
    most any patch is over-sampled relative to uniform sampling).
    """
    if methods is None:
        methods = available_methods(
            table, options.get("comp_field", FREQ_CLUSTER_WEIGHT), options.get("uniq_field", UNIQUENESS_SCORE),
            options.get("class_fields"), options.get("uniqueness_mix", 0.0), options.get("rare_boost"),
        )
    included = included_mask(table, options.get("excluded_field", EXCLUDED))
    fields = _class_fields(table, options.get("class_fields"))
    proportions = table[fields].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    valid = valid_pixel_counts(table)
    runs = [("uniform", included.astype(float))]
    runs += [(m, combine_weights(table, m, **options).weights.to_numpy()) for m in methods]
    rows = {}
    for name, w in runs:
        shares = expected_class_shares(proportions, w, valid) if fields else ()
        row = {f"share_{f}": s for f, s in zip(fields, shares)}
        ess = effective_sample_size(w)
        row.update(ess=ess, ess_ratio=ess / included.sum(), max_ratio=w.max() / w[included].mean())
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _method_weights(method, signals, proportions, strength, class_alpha, uniqueness_mix) -> np.ndarray:
    """Raw (n_included,) weights of ``method`` before boost, floor and normalisation."""
    if method == "multiplicative":
        return signals[_COMPOSITION] * signals[_UNIQUENESS]
    ranks = {name: percentile_rank(values) for name, values in signals.items()}
    if method == "class_balanced":
        omega = class_balanced_weights(proportions, class_alpha)
        if uniqueness_mix > 0:
            omega = omega * ((1 - uniqueness_mix) + uniqueness_mix * ranks[_UNIQUENESS])
        return omega
    if method == "composition_only":
        combined = ranks[_COMPOSITION]
    elif method == "uniqueness_only":
        combined = ranks[_UNIQUENESS]
    elif method == "rank_max":
        combined = np.maximum(ranks[_COMPOSITION], ranks[_UNIQUENESS])
    elif method == "rank_multiply":
        combined = ranks[_COMPOSITION] * ranks[_UNIQUENESS]
    else:  # rank_add: the mean keeps the combined rank in (0, 1] like the others
        combined = (ranks[_COMPOSITION] + ranks[_UNIQUENESS]) / 2
    return combined**strength


def _published_weights(method, proportions, valid, drawable, params, note) -> np.ndarray:
    """Raw weights of ``repeat_factor`` or ``rare_class_sampling`` over the included patches."""
    min_pixels = params["min_pixels"]
    if valid is None:
        valid = np.ones(len(proportions))
        if min_pixels is None:
            min_pixels = 1e-9
            note(_("The input has no '{field}' field, so a patch contains a class when it holds any of it.").format(
                field=PATCH_SIZE))
    elif min_pixels is None:
        sizes = pd.to_numeric(drawable[PATCH_SIZE], errors="coerce")
        min_pixels = published.default_min_pixels(float(np.nanmedian(sizes)))
        note(_("A patch contains a class from {pixels:.0f} of its pixels (DAFormer's 3000 px per 512 x 512 px, "
               "scaled to the patch size).").format(pixels=min_pixels))
    if method == "repeat_factor":
        raw, threshold = published.repeat_factor_weights(proportions, valid, min_pixels, params["repeat_threshold"])
        note(published.describe_threshold(threshold, params["repeat_threshold"] is not None))
        return raw
    raw, probability = published.rare_class_sampling_weights(proportions, valid, min_pixels, params["temperature"])
    empty = int((raw == 0).sum())
    if empty:
        note(_("{n} patches contain no class with enough pixels: rare-class sampling never draws them, the floor "
               "keeps them drawable.").format(n=empty))
    return raw


def _target_result(table, included, proportions, valid, fields, params, note, notes) -> WeightResult:
    """``target_shares``: solve for the weights (see :mod:`.targets`) and wrap them as a WeightResult."""
    if params["rare_boost"] not in (None, 1):
        note(_("The rare-class boost is ignored by 'target_shares' (it would move the shares off their target)."),
             warn=True)
    values = [int(f[len(CLASS_PREFIX):]) if f[len(CLASS_PREFIX):].lstrip("-").isdigit() else f for f in fields]
    requested = params["target_shares"]
    if isinstance(requested, str) or requested is None:
        wanted = targets.parse_targets(requested or "", values)
    else:
        wanted = targets.target_indices(requested, values)
    lift = params["lift_class"]
    if lift is not None and int(lift) not in values:
        raise BalancedSamplingError(_("Class {value} to lift has no proportion field; the classes found are "
                                      "{values}.").format(value=lift, values=values))
    solution = targets.solve_target(
        proportions, valid, targets=wanted or None, lift_class=None if lift is None else values.index(int(lift)),
        min_ess=params["min_ess"], floor=params["floor"], cap=params["max_weight"],
    )
    shares = ", ".join(f"{fields[c]} {100 * solution.shares[c]:.2f}%" for c in sorted(wanted or range(len(fields))))
    absent = [fields[c] for c, t in sorted((wanted or {}).items())
              if t > 0 and not (np.asarray(proportions)[:, c] > 0).any()]  # proportions: the included rows
    if absent:
        note(_("No included patch holds {classes}, so no weighting can draw it: every patch with it is excluded or "
               "has no weight (see the exclusions in the composition log).").format(classes=", ".join(absent)),
             warn=True)
    if wanted and not solution.reachable:
        asked = ", ".join(f"{fields[c]} {100 * t:.2f}%" for c, t in sorted(wanted.items()))
        note(_("No weighting reaches the target shares ({asked}): classes co-occur in the patches, or the floor or "
               "the largest weight forbid it. Using the nearest reachable shares: {shares}.").format(
            asked=asked, shares=shares), warn=True)
    elif wanted:
        note(_("Target shares reached: {shares}, at an effective sample size of {ess:.0%}.").format(
            shares=shares, ess=solution.ess_ratio))
    elif lift is not None:
        note(_("Class {value} lifted to {share:.2f}% of the valid pixels drawn (largest share at an effective sample "
               "size of at least {ess:.0%}).").format(value=lift, share=100 * solution.shares[values.index(int(lift))],
                                                     ess=params["min_ess"]))
    else:
        note(_("Most balanced shares at an effective sample size of at least {ess:.0%}: the smallest class share is "
               "{share:.2f}%.").format(ess=params["min_ess"], share=100 * solution.shares[solution.shares > 0].min()))
    weights = np.zeros(len(table))
    weights[included] = solution.weights
    warning = low_ess_warning("target_shares", effective_sample_size(solution.weights), int(included.sum()))
    if warning:
        note(warning, warn=True)
    return WeightResult(
        weights=pd.Series(weights, index=table.index, name=SAMPLER_WEIGHT), method="target_shares",
        included=included, n_floored=int(np.isclose(solution.weights, params["floor"]).sum()), rare_classes=(),
        params=params, notes=tuple(notes),
    )


def _check_target_options(min_ess, max_weight, min_pixels, repeat_threshold, temperature) -> None:
    checks = (
        (0 < min_ess <= 1, _("min_ess must be a fraction in (0, 1], got {value}."), min_ess),
        (max_weight is None or max_weight >= 1,
         _("max_weight must be at least 1 (the mean weight), or None for no cap; got {value}."), max_weight),
        (min_pixels is None or min_pixels > 0, _("min_pixels must be > 0, got {value}."), min_pixels),
        (repeat_threshold is None or 0 < repeat_threshold <= 1,
         _("The repeat-factor threshold must be in (0, 1], got {value}."), repeat_threshold),
        (temperature > 0, _("The rare-class sampling temperature must be > 0, got {value}."), temperature),
    )
    for ok, message, value in checks:
        if not ok:
            raise BalancedSamplingError(message.format(value=repr(value)))


def _check_method(method: str) -> None:
    if method not in SAMPLING_METHODS:
        raise BalancedSamplingError(_("Unknown sampling method {method}; choose one of {choices}.").format(
            method=repr(method), choices=", ".join(SAMPLING_METHODS)))


def _check_options(method, strength, class_alpha, uniqueness_mix, rare_boost, floor) -> None:
    _check_method(method)
    checks = (
        (np.isfinite(strength) and strength >= 0, _("strength must be a finite number >= 0, got {value}."),
         strength),
        (np.isfinite(class_alpha) and class_alpha > 0, _("class_alpha must be a finite number > 0, got {value}"),
         class_alpha),
        (0 <= uniqueness_mix <= 1, _("uniqueness_mix must be between 0 and 1, got {value}."), uniqueness_mix),
        (rare_boost is None or (np.isfinite(rare_boost) and rare_boost >= 1),
         _("rare_boost must be a multiplier >= 1 (or None for off), got {value}."), rare_boost),
        (0 < floor <= 1, _("floor must be in (0, 1], got {value}."), floor),
    )
    for ok, message, value in checks:
        if not ok:
            raise BalancedSamplingError(message.format(value=repr(value)))


def _class_fields(table: pd.DataFrame, class_fields: Optional[Sequence[str]]) -> list:
    return list(class_fields) if class_fields is not None else class_columns(map(str, table.columns))


def _describe(table: pd.DataFrame, position: int) -> str:
    """'patch <patch_id>' when the table has one, else 'the patch at row <index>'."""
    if PATCH_ID in table.columns and pd.notna(table[PATCH_ID].iloc[position]):
        return _("patch {id}").format(id=table[PATCH_ID].iloc[position])
    return _("the patch at row {row}").format(row=table.index[position])


def _first_bad(table: pd.DataFrame, bad: np.ndarray, field: str, what: str, todo: str = "") -> BalancedSamplingError:
    """``what`` (the expected value) and ``todo`` (a sentence saying what to do) are already translated."""
    positions = np.flatnonzero(bad)
    extra = positions.size - 1
    if extra == 0:
        message = _("Field '{field}' of {patch} is {value}; expected {what}.")
    elif extra == 1:
        message = _("Field '{field}' of {patch} (and 1 other included patch) is {value}; expected {what}.")
    else:
        message = _("Field '{field}' of {patch} (and {others} other included patches) is {value}; expected {what}.")
    message = message.format(field=field, patch=_describe(table, positions[0]), others=extra,
                             value=shown_value(table[field].iloc[positions[0]]), what=what)
    return BalancedSamplingError(f"{message} {todo}" if todo else message)


def _signal(drawable, field, method, algorithm, nonnegative, alternative) -> np.ndarray:
    """(n_included,) float values of a signal field, with the errors a user can act on."""
    if field not in drawable.columns:
        raise BalancedSamplingError(
            _("Sampling method '{method}' needs the field '{field}', which the input does not have. Run "
              "'{algorithm}' first, or pick a method that does not need it.").format(
                method=method, field=field, algorithm=_(algorithm))
        )
    values = pd.to_numeric(drawable[field], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise _first_bad(
            drawable, bad, field, _("a number"),
            _("Run '{algorithm}' on these patches, exclude them, or pick a sampling method that does not need "
              "'{field}' (e.g. {alternative}).").format(algorithm=_(algorithm), field=field, alternative=alternative),
        )
    if nonnegative and (values < 0).any():
        raise _first_bad(drawable, values < 0, field, _("a value >= 0 for '{method}'").format(method=method))
    return values


def _class_matrix(drawable, fields, method) -> np.ndarray:
    """(n_included, C) class proportions, checked to be numbers in [0, 1]."""
    if not fields:
        raise BalancedSamplingError(
            _("Sampling method '{method}' (or the rare-class boost) needs class proportion fields ({prefix}<class "
              "value>), which the input does not have. Run '{algorithm}' first.").format(
                method=method, prefix=CLASS_PREFIX, algorithm=_(COMPOSITION_ALGORITHM))
        )
    missing = [f for f in fields if f not in drawable.columns]
    if missing:
        raise BalancedSamplingError(_("Class proportion fields {fields} are not in the input.").format(fields=missing))
    matrix = drawable[fields].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    for j, field in enumerate(fields):
        bad = ~((matrix[:, j] >= 0) & (matrix[:, j] <= 1))  # also catches NaN
        if bad.any():
            raise _first_bad(drawable, bad, field, _("a proportion in [0, 1] (re-run '{algorithm}')").format(
                algorithm=_(COMPOSITION_ALGORITHM)))
    return matrix

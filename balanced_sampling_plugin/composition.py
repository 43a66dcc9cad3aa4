"""Semantic composition clusters: class proportions -> CLR -> KMeans -> cluster weights.

Patches whose class mix is common land in big clusters and get a small
``freq_cluster_weight`` (1 / cluster size); rare mixes get a large one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from .compute import Executor, executor_for
from .contract import K_SELECTIONS
from .errors import BalancedSamplingError
from .i18n import _
from .mask_stats import BLACK_BORDER, BORDER_NODATA, compute_mask_stats, proportions_from_counts, shannon_entropy
from .progress import Progress, as_progress
from .records import (
    CLASS_ENTROPY,
    CLASS_PREFIX,
    EXCLUDED,
    EXCLUSION_REASON,
    FREQ_CLUSTER_ID,
    FREQ_CLUSTER_SIZE,
    FREQ_CLUSTER_WEIGHT,
    MASK_PATH,
    NODATA_RATIO,
    class_column,
    class_columns,
    describe_patch,
    shown_value,
)
from .weights import included_mask

#: The exclusion reason (and the training CSV's flag) of patches whose class entropy is below
#: ``min_entropy_threshold``, as pytorch-smt-tools names it.
LOW_ENTROPY = "has_low_entropy"
#: Exclusion reasons, in the order they are joined in ``exclusion_reason``.
EXCLUSION_REASONS = (BORDER_NODATA, BLACK_BORDER, NODATA_RATIO, LOW_ENTROPY)
#: KMeans restarts per k; the best of them (lowest inertia) is kept. On 155k synthetic
#: compositions 3 restarts found the same optimum as 10 in a third of the time.
KMEANS_N_INIT = 3


# --------------------------------------------------------------------------- pure functions


def clr(proportions: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Centred log-ratio transform of compositions.

    Rows are scaled to sum to 1, zeros (log undefined) and shares below ``eps`` are
    raised to ``eps``, then each row's mean log is subtracted. Renormalising after the
    replacement would shift a row's logs by a constant, which the centring removes.

    Parameters
    ----------
    proportions : (n, C) non-negative array (class shares or pixel counts)
    eps : float > 0, the stand-in for a zero share

    Returns
    -------
    (n, C) float64; every row sums to 0. An all-zero row maps to all zeros.
    """
    p = np.array(proportions, dtype=np.float64, ndmin=2)
    if not np.isfinite(p).all() or (p < 0).any():
        raise BalancedSamplingError(_("Class proportions must be finite and non-negative for the CLR transform."))
    if not eps > 0:
        raise BalancedSamplingError(_("The CLR zero replacement eps must be > 0; got {eps}.").format(eps=eps))
    totals = p.sum(axis=1, keepdims=True)
    p = np.divide(p, totals, out=np.zeros_like(p), where=totals > 0)
    logs = np.log(np.maximum(p, eps))
    return logs - logs.mean(axis=1, keepdims=True)


def elbow_k(ks: Sequence[int], inertias: Sequence[float]) -> int:
    """The k at the elbow of an inertia curve (largest perpendicular distance to the chord).

    ks and inertias are scaled to [0, 1]; the chord joins the first and last points;
    the k farthest from it wins, the smallest k on ties. With fewer than three points
    or a flat curve there is no elbow and the smallest k is returned.

    Parameters
    ----------
    ks : sequence of int, the numbers of clusters tried
    inertias : sequence of float, KMeans inertia for each k (same length)
    """
    ks = np.asarray(ks, dtype=np.int64)
    inertias = np.asarray(inertias, dtype=np.float64)
    if ks.size == 0 or ks.shape != inertias.shape:
        raise BalancedSamplingError(_("elbow_k needs one inertia per k and at least one k."))
    order = np.argsort(ks, kind="stable")
    ks, inertias = ks[order], inertias[order]
    x = _unit_scale(ks.astype(np.float64))
    y = _unit_scale(inertias)
    # Distance of (x, y) to the line through the first and last points, up to a constant factor.
    dx, dy = x[-1] - x[0], y[-1] - y[0]
    distance = np.abs(dy * (x - x[0]) - dx * (y - y[0]))
    best = np.flatnonzero(distance >= distance.max() - 1e-12)
    return int(ks[best[0]])


def _unit_scale(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def cluster_weights(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Size of each row's cluster and the inverse-frequency weight ``1 / size``.

    Parameters
    ----------
    labels : (n,) int cluster ids

    Returns
    -------
    sizes : (n,) int64, patches in the row's cluster
    weights : (n,) float64, ``1 / sizes`` (so each cluster's weights sum to 1)
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sizes = counts[inverse.ravel()].astype(np.int64)
    return sizes, 1.0 / sizes


def relabel_by_size(labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by size (largest first), ties by centroid (lexicographic).

    KMeans ids depend on initialisation; this order makes ``freq_cluster_id`` the same
    for the same partition, and cluster 0 the most common composition.

    Parameters
    ----------
    labels : (n,) int in 0..k-1
    centers : (k, C) centroids, row i of cluster i
    """
    k = len(centers)
    sizes = np.bincount(labels, minlength=k)
    # np.lexsort sorts by the last key first: size (descending), then centroid columns.
    order = np.lexsort(tuple(centers[:, ::-1].T) + (-sizes,))
    new_id = np.empty(k, np.int64)
    new_id[order] = np.arange(k)
    return new_id[labels]


# --------------------------------------------------------------------------- clustering


@dataclass
class ClusteringResult:
    """KMeans outcome: ``labels`` (n,) ids 0..k-1 (largest cluster 0), the chosen ``k``,
    and the ``ks`` tried with their ``inertias`` (one each; a single entry for fixed k)."""

    labels: np.ndarray
    k: int
    ks: list[int]
    inertias: list[float]


def check_k_parameters(k_selection: str, k_min: int, k_max: int, k: Optional[int]) -> int:
    """Validate the k parameters before any work; return the fewest patches clustering needs."""
    if k_selection not in K_SELECTIONS:
        raise BalancedSamplingError(_("k_selection must be one of {choices}; got {value}.").format(
            choices=", ".join(K_SELECTIONS), value=repr(k_selection)))
    if k_selection == "fixed":
        if k is None or int(k) < 1:
            raise BalancedSamplingError(
                _("With k_selection 'fixed', K must be a positive integer; got {value}.").format(value=repr(k)))
        return int(k)
    if int(k_min) < 1 or int(k_max) < int(k_min):
        raise BalancedSamplingError(
            _("Need 1 <= K_MIN <= K_MAX; got K_MIN={k_min}, K_MAX={k_max}.").format(k_min=k_min, k_max=k_max))
    return int(k_min)


def _candidate_ks(n_rows, n_distinct, k_selection, k_min, k_max, k, progress: Progress) -> list[int]:
    """The ks to try, validated against the data; raises saying what to change."""
    needed = check_k_parameters(k_selection, k_min, k_max, k)
    name = "K" if k_selection == "fixed" else "K_MIN"
    if n_rows < needed:
        raise BalancedSamplingError(
            _("Only {n} valid patches, fewer than {name}={needed}; lower {name}, or include more patches (relax "
              "the exclusions or add images).").format(n=n_rows, name=name, needed=needed)
        )
    if n_distinct < needed:
        raise BalancedSamplingError(
            _("The {n} valid patches have only {distinct} distinct compositions, fewer than {name}={needed}; "
              "lower {name} to at most {distinct}.").format(n=n_rows, distinct=n_distinct, name=name, needed=needed)
        )
    if k_selection == "fixed":
        return [needed]
    k_max = int(k_max)
    if n_distinct < k_max:
        progress.warning(
            _("Only {distinct} distinct compositions among {n} valid patches; K_MAX lowered from {k_max} to "
              "{distinct}.").format(distinct=n_distinct, n=n_rows, k_max=k_max)
        )
        k_max = n_distinct
    return list(range(needed, k_max + 1))


def _fit_kmeans(rows: np.ndarray, weights: np.ndarray, k: int, random_state: int):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: on few cores, KMeans' thread barriers stall whenever another process
    # holds a core (measured 18.6 s -> 1.6 s at 50k patches, same labels).
    with warnings.catch_warnings(), threadpool_limits(1):
        # Near-duplicate rows may trigger ConvergenceWarning; distinct rows were checked >= k.
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=k, random_state=random_state, n_init=KMEANS_N_INIT)
        return model.fit(rows, sample_weight=weights)


def cluster_compositions(
    features: np.ndarray,
    k_selection: str = "elbow",
    k_min: int = 4,
    k_max: int = 16,
    k: Optional[int] = None,
    random_state: int = 42,
    progress: Optional[Progress] = None,
) -> ClusteringResult:
    """KMeans on composition features with k fixed or chosen by the elbow of the inertia curve.

    Parameters
    ----------
    features : (n, C) finite float array, e.g. :func:`clr` of class proportions
    k_selection : "elbow" (try k_min..k_max, pick :func:`elbow_k`) or "fixed" (use ``k``)
    k_min, k_max : int, the elbow's range; k_max is lowered to the number of distinct
        rows when there are fewer (with a warning)
    k : int, the number of clusters for "fixed"
    random_state : int, KMeans seed (same input and seed -> same labels)
    progress : Progress, updated after each k; cancel raises OperationCanceled

    Returns
    -------
    ClusteringResult with labels renumbered by :func:`relabel_by_size`.
    """
    progress = as_progress(progress)
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or not np.isfinite(features).all():
        raise BalancedSamplingError(
            _("Composition features must be a 2-D array of finite numbers (patches x classes)."))
    # KMeans on the distinct rows weighted by their multiplicity has the same objective
    # (and inertia) as on all rows, and is much faster when many patches share one
    # composition (e.g. pure background).
    distinct, row_of, multiplicity = np.unique(features, axis=0, return_inverse=True, return_counts=True)
    ks = _candidate_ks(len(features), len(distinct), k_selection, k_min, k_max, k, progress)

    models = {}
    for done, candidate in enumerate(ks, start=1):
        progress.check_canceled()
        models[candidate] = _fit_kmeans(distinct, multiplicity, candidate, random_state)
        progress.update(done, len(ks))
    inertias = [float(models[c].inertia_) for c in ks]
    chosen = ks[0] if len(ks) == 1 else elbow_k(ks, inertias)
    model = models[chosen]
    labels = relabel_by_size(model.labels_[row_of.ravel()], model.cluster_centers_)
    return ClusteringResult(labels=labels, k=chosen, ks=ks, inertias=inertias)


# --------------------------------------------------------------------------- the stage


@dataclass
class CompositionResult:
    """Output of :func:`compute_composition`.

    table : DataFrame indexed like the records: ``cls_<c>``, ``class_entropy``,
        ``nodata_ratio``, ``border_nodata``, ``black_border``, ``excluded``,
        ``exclusion_reason``, ``freq_cluster_id`` (-1 if excluded), ``freq_cluster_size``
        (0 if excluded), ``freq_cluster_weight`` (1/size; 0.0 if excluded).
    k, ks, inertias : the chosen k and the curve it was chosen from.
    classes : the class values of the ``cls_<c>`` columns.
    excluded_counts : patches per exclusion reason (a patch may have several).
    """

    table: pd.DataFrame
    k: int
    ks: list[int]
    inertias: list[float]
    classes: list[int]
    excluded_counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_excluded(self) -> int:
        return int(self.table[EXCLUDED].sum())


def exclusion_flags(
    stats: pd.DataFrame,
    exclude_border_nodata: bool,
    exclude_black_border: bool,
    max_nodata_ratio: float,
    min_entropy_threshold: float = 0.0,
) -> pd.DataFrame:
    """One boolean column per exclusion reason (see :data:`EXCLUSION_REASONS`).

    A window without a single class pixel (e.g. all nodata) has no composition to
    cluster, so it is always flagged under ``nodata_ratio``. ``has_low_entropy`` flags
    a class entropy (nats) below ``min_entropy_threshold``; 0 turns it off.
    """
    no_class_pixel = stats[class_columns(stats.columns)].sum(axis=1).to_numpy() == 0
    entropy = pd.to_numeric(stats[CLASS_ENTROPY], errors="coerce").to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            BORDER_NODATA: stats[BORDER_NODATA].to_numpy() & bool(exclude_border_nodata),
            BLACK_BORDER: stats[BLACK_BORDER].to_numpy() & bool(exclude_black_border),
            NODATA_RATIO: (stats[NODATA_RATIO].to_numpy() > max_nodata_ratio) | no_class_pixel,
            LOW_ENTROPY: entropy < min_entropy_threshold,
        },
        index=stats.index,
    )


def stats_from_proportions(
    proportions: pd.DataFrame,
    nodata_class: Optional[int] = 0,
    classes: Optional[Sequence[int]] = None,
    progress: Optional[Progress] = None,
) -> pd.DataFrame:
    """The table :func:`~balanced_sampling_plugin.mask_stats.compute_mask_stats` would give, from known proportions.

    For patch tables that already carry their class mix (e.g. a PostgreSQL tile table's
    ``class_dist``), so no mask is read.

    Parameters
    ----------
    proportions : DataFrame, one row per patch, with ``cls_<c>`` columns (shares or pixel
        counts, >= 0) and optionally ``class_entropy`` (nats) and ``nodata_ratio`` (0..1).
    nodata_class : a ``cls_<nodata_class>`` column is dropped (proportions are over
        non-nodata pixels); None keeps every class.
    classes : the classes to report (missing ones are 0); None: every ``cls_<c>`` column.

    Returns
    -------
    DataFrame indexed like ``proportions``: ``cls_<c>`` rows renormalised to sum to 1 (all
    0 when a patch has no class share), ``class_entropy`` (the given value, or computed),
    ``nodata_ratio`` (the given value, or 0 where unknown), ``border_nodata`` and
    ``black_border``: the given flags where ``proportions`` carries them (an earlier run read the
    pixels; NULL is False), else False: those need the pixels.
    """
    progress = as_progress(progress)
    if classes is None:
        nodata_column = None if nodata_class is None else class_column(nodata_class)
        columns = [c for c in class_columns(proportions.columns) if c != nodata_column]
    else:
        columns = [class_column(c) for c in sorted(set(int(c) for c in classes)) if c != nodata_class]
    if not columns:
        raise BalancedSamplingError(
            _("The patch table has no class-proportion field (cls_<class value>) besides the nodata class; "
              "compute the proportions from the masks instead.")
        )
    given = proportions.reindex(columns=columns, fill_value=0.0).apply(pd.to_numeric, errors="coerce")
    values = given.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise BalancedSamplingError(
            _("Field '{field}' of {patch} is {value}; class proportions must be numbers >= 0.").format(
                field=columns[col], patch=describe_patch(proportions, proportions.index[row]),
                value=shown_value(proportions[columns[col]].iloc[row]))
        )
    shares = proportions_from_counts(values)
    table = pd.DataFrame(shares, index=proportions.index, columns=columns)
    table[CLASS_ENTROPY] = _given_or(proportions, CLASS_ENTROPY, shannon_entropy(shares))
    unknown_nodata = _unknown(proportions, NODATA_RATIO)
    if unknown_nodata.any():
        progress.warning(
            _("{n} patches have no '{field}' value; it is taken as 0, so the maximum-nodata-ratio exclusion cannot "
              "apply to them.").format(n=int(unknown_nodata.sum()), field=NODATA_RATIO)
        )
    table[NODATA_RATIO] = _given_or(proportions, NODATA_RATIO, np.zeros(len(table)))
    for flag in (BORDER_NODATA, BLACK_BORDER):  # found from pixels by an earlier run: kept, not reset
        # included_mask reads a flag field as layers and CSVs give it (NULL = false); absent: all False.
        table[flag] = ~included_mask(proportions, flag)
    return table


def _unknown(table: pd.DataFrame, column: str) -> np.ndarray:
    """True where ``column`` is absent or not a finite number."""
    if column not in table.columns:
        return np.ones(len(table), dtype=bool)
    return ~np.isfinite(pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64))


def _given_or(table: pd.DataFrame, column: str, fallback: np.ndarray) -> np.ndarray:
    """``table[column]`` as float64 where it is a finite number, ``fallback`` elsewhere."""
    unknown = _unknown(table, column)
    if unknown.all():
        return np.asarray(fallback, dtype=np.float64)
    given = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(unknown, fallback, given)


def _join_reasons(flags: pd.DataFrame) -> np.ndarray:
    reasons = np.full(len(flags), "", dtype=object)
    for name in EXCLUSION_REASONS:
        hit = flags[name].to_numpy()
        reasons[hit] = np.where(reasons[hit] == "", name, reasons[hit] + "," + name)
    return reasons


#: Masks whose declared nodata value is compared with the nodata class (a sample: one header read each).
DECLARED_NODATA_SAMPLE = 20


#: Share of the patches excluded for the nodata class, or of the mask pixels in it, above which the log asks
#: whether it is a real class.
NODATA_EXCLUSION_WARNING = 0.5

#: Share of their pixels the nodata class covers in the patches it excludes below which it looks like
#: unlabelled pixels inside the tiles (an ignore label) rather than the scene's edge.
SCATTERED_NODATA = 0.1


def _warn_lost_patches(stats: pd.DataFrame, flags: pd.DataFrame, nodata_class: Optional[int],
                       progress: Progress) -> None:
    """Warn when the exclusions take what training needs, or the nodata class looks like a real class: most
    patches excluded for the nodata class (scattered ignore pixels on the window borders, or 0 was
    background?), most mask pixels in the nodata class, or a class present only in excluded patches (never
    drawn). ``stats`` (n, ...) the per-patch statistics, ``flags`` (n, reasons) bool the exclusion flags."""
    total = len(stats)
    for_nodata = (flags[BORDER_NODATA] | flags[NODATA_RATIO]).to_numpy()
    nodata_ratio = stats[NODATA_RATIO].to_numpy(dtype=float) if NODATA_RATIO in stats.columns else None
    if nodata_class is not None and total and for_nodata.mean() > NODATA_EXCLUSION_WARNING:
        message = _("{n} of {total} patches ({share:.0%}) are excluded because their mask holds the nodata class "
                    "{value} (on the window border, or above the maximum nodata ratio).").format(
            n=int(for_nodata.sum()), total=total, share=float(for_nodata.mean()), value=nodata_class)
        covered = float(np.nanmean(nodata_ratio[for_nodata])) if nodata_ratio is not None else np.nan
        if covered < SCATTERED_NODATA:
            message += " " + _(
                "It covers only {covered:.1%} of their pixels: if {value} marks unlabelled pixels inside the tiles "
                "(not only the scene edges), turn off the exclusion of patches with nodata on the mask border; "
                "those pixels are then only left out of the class proportions.").format(
                covered=covered, value=nodata_class)
        progress.warning(message + " " + _(
            "If {value} is a real class (e.g. background), set the nodata class to a value your masks do not use, "
            "such as -1.").format(value=nodata_class))
    elif nodata_class is not None and nodata_ratio is not None and total \
            and np.nanmean(nodata_ratio) > NODATA_EXCLUSION_WARNING:
        progress.warning(_(
            "The nodata class {value} covers {share:.0%} of the mask pixels, which are left out of the class "
            "proportions. If {value} is a real class (e.g. background), set the nodata class to a value your masks "
            "do not use, such as -1.").format(value=nodata_class, share=float(np.nanmean(nodata_ratio))))
    excluded = flags.any(axis=1).to_numpy()
    if not excluded.any():
        return
    for column in class_columns(stats.columns):
        present = stats[column].to_numpy() > 0
        if present.any() and not (present & ~excluded).any():
            reasons = flags[present].sum()
            progress.warning(_(
                "Class {value} occurs only in excluded patches ({n}: {reasons}), so it will never be drawn. Turn off "
                "that exclusion, or cut the patches differently (another patch size or stride, or the shift edge "
                "mode) so that some hold the class away from the nodata.").format(
                    value=column[len(CLASS_PREFIX):], n=int(present.sum()),
                    reasons=", ".join(f"{int(count)} {name}" for name, count in reasons.items() if count)))


def _warn_declared_nodata(records: pd.DataFrame, nodata_class: Optional[int], progress: Progress) -> None:
    """Warn when the masks declare a nodata value other than ``nodata_class`` (masks with nodata 255 read with
    the default class 0 count 255 as a class and exclude nothing by its nodata). A sample of the masks is read."""
    if MASK_PATH not in records.columns:
        return
    import rasterio

    for path in records[MASK_PATH].dropna().astype(str).unique()[:DECLARED_NODATA_SAMPLE]:
        try:
            with rasterio.open(path) as dataset:
                declared = dataset.nodata
        except Exception:  # unreadable masks are named by the statistics that follow
            continue
        if declared is not None and float(declared).is_integer() and int(declared) != nodata_class:
            progress.warning(
                _("The mask {path} declares nodata value {declared}, but the nodata class is {nodata_class}: "
                  "{declared} is counted as a class (cls_{declared}) and excludes nothing. If {declared} is nodata, "
                  "set the nodata class to {declared}.").format(
                    path=path, declared=int(declared), nodata_class=nodata_class))
            return


def compute_composition(
    records: pd.DataFrame,
    nodata_class: Optional[int] = 0,
    exclude_border_nodata: bool = True,
    exclude_black_border: bool = True,
    black_tolerance: float = 0,
    max_nodata_ratio: float = 1.0,
    min_entropy_threshold: float = 0.0,
    k_selection: str = "elbow",
    k_min: int = 4,
    k_max: int = 16,
    k: Optional[int] = None,
    random_state: int = 42,
    clr_eps: float = 1e-6,
    classes: Optional[Sequence[int]] = None,
    workers: Optional[int] = None,
    progress: Optional[Progress] = None,
    proportions: Optional[pd.DataFrame] = None,
    executor: Union[Executor, str, None] = None,
) -> CompositionResult:
    """Composition clusters of every patch: mask stats, exclusions, CLR, KMeans, 1/size weights.

    Parameters mirror the pytorch-smt-tools ``balanced_dataset`` keys (defaults: both
    exclusions on, nodata class 0, elbow over k 4..16, random_state 42).
    ``max_nodata_ratio`` (0..1) also excludes patches with more nodata than that, and
    ``min_entropy_threshold`` (nats, >= 0; 0 = off) those whose class entropy is below it
    (reason ``has_low_entropy``, e.g. single-class patches, entropy 0).
    Excluded patches take no part in clustering and get id -1, size 0, weight 0.0.
    See :func:`~balanced_sampling_plugin.mask_stats.compute_mask_stats` for the other
    parameters. Progress: 70 % reading masks, 30 % clustering.

    ``proportions`` (optional): known class mixes indexed like ``records`` (see
    :func:`stats_from_proportions`), e.g. from a tile table's ``class_dist``. Then no
    mask is read and the border-nodata / black-border exclusions, which need pixels,
    are skipped (said in the log).

    ``executor`` (optional): where the mask reads run (:mod:`balanced_sampling_plugin.compute`), an
    :class:`~balanced_sampling_plugin.compute.Executor` the caller closes, or a scheduler text (``""``,
    ``"local:N"``, ``"tcp://host:8786"``) for an executor opened and closed here. Same results wherever they run.
    """
    progress = as_progress(progress)
    needed = check_k_parameters(k_selection, k_min, k_max, k)
    if not 0 <= max_nodata_ratio <= 1:
        raise BalancedSamplingError(
            _("max_nodata_ratio must be between 0 and 1; got {value}.").format(value=max_nodata_ratio))
    if not (np.isfinite(min_entropy_threshold) and min_entropy_threshold >= 0):
        raise BalancedSamplingError(
            _("min_entropy_threshold must be a number >= 0 (class entropy in nats, 0 = off); got {value}.").format(
                value=min_entropy_threshold))

    if proportions is None:
        _warn_declared_nodata(records, nodata_class, progress)
        with executor_for(executor, workers) as own:
            if own is not None:
                progress.info(_("Reading the masks {where}.").format(where=own.description))
            stats = compute_mask_stats(
                records,
                nodata_class=nodata_class,
                check_black_border=exclude_black_border,
                black_tolerance=black_tolerance,
                classes=classes,
                workers=workers,
                progress=progress.child(0.0, 0.7),
                executor=own,
            )
    else:
        if not proportions.index.equals(records.index):
            raise BalancedSamplingError(
                _("The given class proportions must have one row per patch, indexed like the records.")
            )
        stats = stats_from_proportions(proportions, nodata_class, classes, progress)
        # Flags an earlier run found from the pixels are kept (stats_from_proportions); only the others are skipped.
        skipped_border = exclude_border_nodata and BORDER_NODATA not in proportions.columns
        skipped_black = exclude_black_border and BLACK_BORDER not in proportions.columns
        if skipped_border and skipped_black:
            progress.info(_("Class proportions taken from the patch table; no mask was read, so the border nodata "
                            "and black border exclusions, which need the pixels, are skipped."))
        elif skipped_border:
            progress.info(_("Class proportions taken from the patch table; no mask was read, so the border nodata "
                            "exclusions, which need the pixels, are skipped."))
        elif skipped_black:
            progress.info(_("Class proportions taken from the patch table; no mask was read, so the black border "
                            "exclusions, which need the pixels, are skipped."))
        # else nothing is skipped: the caller, which passed the proportions, says where they came from
    flags = exclusion_flags(stats, exclude_border_nodata, exclude_black_border, max_nodata_ratio,
                            min_entropy_threshold)
    excluded = flags.any(axis=1).to_numpy()
    excluded_counts = {name: int(flags[name].sum()) for name in EXCLUSION_REASONS}
    n_valid = int((~excluded).sum())
    summary = ", ".join(f"{count} {name}" for name, count in excluded_counts.items()
                        if name != LOW_ENTROPY or min_entropy_threshold > 0)
    progress.info(_("{kept} of {total} patches kept for clustering; {excluded} excluded, by reason (a patch can have "
                    "several): {summary}.").format(kept=n_valid, total=len(stats), excluded=len(stats) - n_valid,
                                                   summary=summary))
    _warn_lost_patches(stats, flags, nodata_class, progress)
    if n_valid < needed:
        if excluded_counts[LOW_ENTROPY]:
            message = _("Only {kept} of {total} patches are valid for clustering (excluded: {summary}), fewer than "
                        "the {needed} clusters asked for. Lower {name}, lower the minimum entropy threshold, turn "
                        "off an exclusion, or raise the maximum nodata ratio.")
        else:
            message = _("Only {kept} of {total} patches are valid for clustering (excluded: {summary}), fewer than "
                        "the {needed} clusters asked for. Lower {name}, turn off an exclusion, or raise the maximum "
                        "nodata ratio.")
        raise BalancedSamplingError(message.format(kept=n_valid, total=len(stats), summary=summary, needed=needed,
                                                   name="K" if k_selection == "fixed" else "K_MIN"))

    class_cols = class_columns(stats.columns)
    features = clr(stats.loc[~excluded, class_cols].to_numpy(), eps=clr_eps)
    clustering = cluster_compositions(
        features, k_selection, k_min, k_max, k, random_state, progress=progress.child(0.7, 1.0)
    )
    if len(clustering.ks) > 1:
        progress.info(_("Composition clusters: k={k} (elbow over k={first}..{last})").format(
            k=clustering.k, first=clustering.ks[0], last=clustering.ks[-1]))
    else:
        progress.info(_("Composition clusters: k={k} (fixed)").format(k=clustering.k))

    sizes, weights = cluster_weights(clustering.labels)
    table = stats.copy()
    table[EXCLUDED] = excluded
    table[EXCLUSION_REASON] = _join_reasons(flags)
    table[FREQ_CLUSTER_ID] = np.int64(-1)
    table[FREQ_CLUSTER_SIZE] = np.int64(0)
    table[FREQ_CLUSTER_WEIGHT] = 0.0
    valid = ~excluded
    table.loc[valid, FREQ_CLUSTER_ID] = clustering.labels
    table.loc[valid, FREQ_CLUSTER_SIZE] = sizes
    table.loc[valid, FREQ_CLUSTER_WEIGHT] = weights
    return CompositionResult(
        table=table,
        k=clustering.k,
        ks=clustering.ks,
        inertias=clustering.inertias,
        classes=[int(c[len(CLASS_PREFIX) :]) for c in class_cols],
        excluded_counts=excluded_counts,
    )

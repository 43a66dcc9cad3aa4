"""A self-contained HTML report on sampler weights, to pick a method with numbers.

The report shows what a weighting does to training: the expected per-epoch share of
each class under uniform sampling and under the chosen method, the same numbers for
every method the input allows, the effective sample size, the most over-sampled
patches and why patches were excluded. Charts are inline SVG (see svg_charts).
"""

from __future__ import annotations

import html
from typing import Optional

import numpy as np
import pandas as pd

from . import svg_charts
from .errors import BalancedSamplingError
from .file_safety import atomic_write
from .i18n import _, language
from .records import COL_OFF, EXCLUSION_REASON, IMAGE_PATH, PATCH_ID, PATCH_SIZE, ROW_OFF, class_columns
from .weights import (
    LOW_ESS_RATIO,
    METHOD_DESCRIPTIONS,
    WeightResult,
    compare_methods,
    effective_sample_size,
    expected_class_shares,
    low_ess_warning,
    valid_pixel_counts,
)
from .weights.targets import frontier, solve_target

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 70em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
tr.chosen { background: #fff4d6; font-weight: bold; }
p.note { color: #555; }
div.warning { border: 2px solid #d9822b; background: #fff3e0; padding: 0.6em 1em; margin: 1em 0; }
"""


def format_share(value: float) -> str:
    """How the report prints a class share (a fraction): a percentage with two decimals, "n/a" for NaN."""
    return _("n/a") if not np.isfinite(value) else f"{100 * value:.2f}%"


def render_report_html(
    table: pd.DataFrame,
    result: WeightResult,
    *,
    comparison: Optional[pd.DataFrame] = None,
    top_n: int = 20,
    title: Optional[str] = None,
) -> str:
    """The report as an HTML string, in the engine's language (:mod:`balanced_sampling_plugin.i18n`).

    Parameters
    ----------
    table : the patch table the weights were computed from (same rows, same order).
    result : the :func:`~balanced_sampling_plugin.weights.combine_weights` outcome.
    comparison : :func:`~balanced_sampling_plugin.weights.compare_methods` of the table;
        computed with ``result.params`` when None.
    top_n : number of most over-sampled patches listed.
    title : heading of the page (default "Balanced sampling report", translated).
    """
    title = _("Balanced sampling report") if title is None else title
    weights = result.weights.to_numpy(dtype=float)
    if weights.shape != (len(table),):
        raise BalancedSamplingError(_("The report got {patches} patches but {weights} weights.").format(
            patches=len(table), weights=weights.size))
    if comparison is None:
        comparison = compare_methods(table, **result.params)
    fields = list(result.params.get("class_fields") or class_columns(map(str, table.columns)))
    sections = [
        f"<h1>{_e(title)}</h1>",
        _summary_section(result, weights),
        _histogram_section(weights[result.included]),
        _class_section(table, result, weights, fields),
        _methods_section(comparison, result.method, fields),
        _frontier_section(table, result, comparison, fields),
        _top_patches_section(table, result, weights, top_n),
        _exclusion_section(table, result),
    ]
    body = "\n".join(s for s in sections if s)
    return (
        f"<!DOCTYPE html>\n<html lang=\"{language().replace('_', '-')}\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def build_report_html(
    table: pd.DataFrame,
    result: WeightResult,
    path,
    *,
    comparison: Optional[pd.DataFrame] = None,
    top_n: int = 20,
    title: Optional[str] = None,
) -> str:
    """Write :func:`render_report_html` to ``path`` atomically and return the path."""
    text = render_report_html(table, result, comparison=comparison, top_n=top_n, title=title)
    with atomic_write(path) as handle:
        handle.write(text)
    return str(path)


# ---------------------------------------------------------------- sections

def _summary_section(result: WeightResult, weights: np.ndarray) -> str:
    drawn = weights[result.included]
    ess = effective_sample_size(drawn)
    params = ", ".join(f"{k}={v}" for k, v in result.params.items() if v is not None)
    rows = [
        (_("Sampling method"), result.method),
        (_("Patches"), f"{result.included.size}"),
        (_("Included / excluded"), f"{result.n_included} / {result.n_excluded}"),
        (_("Effective sample size (ESS)"), f"{ess:,.0f}"),
        (_("ESS / included patches"), f"{ess / result.n_included:.3f}"),
        (_("Max over-sampling (largest weight / mean weight)"), f"{drawn.max() / drawn.mean():.2f}x"),
        (_("Patches raised to the floor"), f"{result.n_floored}"),
        (_("Options"), params),
    ]
    warning = low_ess_warning(result.method, ess, result.n_included)
    notes = "".join(f"<p class=\"note\">{_e(n)}</p>" for n in result.notes if n != warning)
    return (
        _heading(_("Summary"))
        + (_warning_box(warning) if warning else "")
        + f"<p><b>{_e(result.method)}</b>: {_e(_(METHOD_DESCRIPTIONS[result.method]))}</p>"
        "<p class=\"note\">"
        + _e(_("Weights are scaled to mean 1 over included patches: a patch of weight 2 is drawn twice as often as "
               "under uniform sampling. ESS = (sum w)^2 / sum w^2 is the number of equally weighted patches that "
               "would carry as much information per epoch."))
        + "</p>"
        + _table(["", _e(_("value"))], [[_e(k), _e(v)] for k, v in rows], text_columns=(0, 1))
        + notes
    )


def _histogram_section(drawn: np.ndarray) -> str:
    chart = svg_charts.histogram(drawn, bins=min(50, max(5, drawn.size // 4)),
                                 xlabel=_("sampler weight (mean 1 = uniform)"), ylabel=_("patches"),
                                 title=_("Histogram of the sampler weights of included patches"))
    return _heading(_("Weight distribution")) + f"<p>{chart}</p>"


def _class_section(table, result, weights, fields) -> str:
    if not fields:
        return _heading(_("Class shares")) + _paragraph(_("The table has no class proportion fields (cls_<value>)."))
    proportions = table[fields].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    valid = valid_pixel_counts(table)
    uniform = expected_class_shares(proportions, result.included.astype(float), valid)
    chosen = expected_class_shares(proportions, weights, valid)
    rows = [
        [_e(f), format_share(u), format_share(c), _ratio(c / u if u > 0 else np.nan)]
        for f, u, c in zip(fields, uniform, chosen)
    ]

    chart = svg_charts.grouped_bar_chart(
        fields, {_("uniform"): uniform, result.method: chosen}, ylabel=_("expected pixel share (log scale)"),
        log=True, title=_("Class shares under uniform sampling and under the chosen method"))

    return (
        _heading(_("Class shares"))
        + "<p class=\"note\">"
        + _e(_("Expected share of each class among the valid (non-nodata) pixels drawn per epoch: a patch adds "
               "its valid pixels, patch_size² × (1 − nodata_ratio)."))
        + "</p>"
        + _table([_e(_("class")), _e(_("uniform")), _e(result.method), _e(_("ratio"))], rows, text_columns=(0,))
        + f"<p>{chart}</p>"
    )


def _methods_section(comparison: pd.DataFrame, chosen: str, fields) -> str:
    share_columns = [f"share_{f}" for f in fields if f"share_{f}" in comparison.columns]
    header = [_e(_("method")), *[_e(c[len("share_"):]) for c in share_columns], _e(_("ESS")), _e(_("ESS / N")),
              _e(_("max / mean")), _e(_("how it works"))]
    rows, classes = [], []
    for method, row in comparison.iterrows():
        cells = [_e(_("uniform") if method == "uniform" else method), *[format_share(row[c]) for c in share_columns]]
        cells += [f"{row['ess']:,.0f}", f"{row['ess_ratio']:.3f}", _ratio(row["max_ratio"])]
        description = METHOD_DESCRIPTIONS.get(method)
        cells.append(_e(_(description) if description else _("every included patch equally likely")))
        rows.append(cells)
        classes.append("chosen" if method == chosen else "")
    low = [m for m, row in comparison.iterrows() if m != "uniform" and row["ess_ratio"] < LOW_ESS_RATIO]
    warning = _warning_box(_("Effective sample size below {limit:.0%} of the included patches: {methods}.").format(
        limit=LOW_ESS_RATIO, methods=", ".join(low))) if low else ""
    return (
        _heading(_("Every method side by side"))
        + warning
        + "<p class=\"note\">"
        + _e(_("Same options as the chosen run. Rank methods are weak by construction: ranks average about 0.5, so "
               "a single rank draws no patch more than about 2x as often as uniform sampling and rank_max (mean "
               "2/3) no more than about 1.5x; no class share can grow by more than the max / mean column. Raise the "
               "strength, or use class_balanced, to rebalance classes."))
        + "</p>"
        + _table(header, rows, text_columns=(0, len(header) - 1), row_classes=classes)
    )


def _frontier_section(table, result, comparison, fields) -> str:
    """What any weighting can give this dataset, with every method placed beneath that limit."""
    if not fields or len(fields) < 2:
        return ""
    included = result.included
    proportions = table[fields].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)[included]
    valid = valid_pixel_counts(table)
    valid = None if valid is None else valid[included]
    floor, cap = result.params.get("floor", 1e-3), result.params.get("max_weight")
    methods = comparison.drop(index="uniform", errors="ignore")
    # down to the lowest ESS a method reaches, so every dot has its curve above it
    lowest = float(np.clip(methods["ess_ratio"].min() * 0.9, 1e-3, 0.1)) if len(methods) else 0.1
    try:
        curves = frontier(proportions, valid, floor=floor, cap=cap, lowest_ess=lowest)
    except BalancedSamplingError:
        return ""
    share_columns = [f"share_{f}" for f in fields]
    uniform = comparison.loc["uniform", share_columns].to_numpy(dtype=float)
    present = uniform > 0
    rarest = curves["lift_class"]
    smallest, lifts = {}, {}
    for method, row in comparison.iterrows():
        if method == "uniform":
            continue
        shares = row[share_columns].to_numpy(dtype=float)
        smallest[method] = (row["ess_ratio"], shares[present].min())
        lifts[method] = (row["ess_ratio"], shares[rarest] / uniform[rarest])
    lift_curve = curves["lift"].copy()
    lift_curve[:, 1] /= uniform[rarest]
    ess = comparison.loc[result.method, "ess_ratio"] if result.method in comparison.index else np.nan
    chosen_share = smallest.get(result.method, (np.nan, np.nan))[1]
    chosen_lift = lifts.get(result.method, (np.nan, np.nan))[1]
    balanced_chart = svg_charts.frontier_chart(
        curves["balanced"], smallest, xlabel=_("effective sample size / included patches"),
        ylabel=_("smallest class share"), curve_label=_("largest reachable smallest share"),
        title=_("Smallest class share: every method against what any weighting can reach"))
    lift_chart = svg_charts.frontier_chart(
        lift_curve, lifts, xlabel=_("effective sample size / included patches"), y_format="times",
        ylabel=_("share of {field} / its uniform share").format(field=fields[rarest]),
        curve_label=_("largest reachable lift of {field}").format(field=fields[rarest]),
        title=_("Lift of the rarest class: every method against what any weighting can reach"))
    summary = ""
    if 0 < ess <= 1:  # the exact optimum at the chosen method's ESS, not a point read off the curve
        best_share = solve_target(proportions, valid, min_ess=ess, floor=floor, cap=cap).shares[present].min()
        best_lift = solve_target(proportions, valid, lift_class=rarest, min_ess=ess, floor=floor,
                                 cap=cap).shares[rarest]
        summary = _("At the effective sample size {method} reaches ({ess}), the most balanced weighting gives the "
                    "smallest class a share of {limit} ({method}: {chosen}), and {field} can be lifted to {lift} its "
                    "uniform share ({method}: {chosen_lift}).").format(
            method=result.method, ess=f"{ess:.0%}" if ess >= 0.1 else f"{ess:.1%}", limit=format_share(best_share),
            chosen=format_share(chosen_share),
            field=fields[rarest], lift=_ratio(best_lift / uniform[rarest]), chosen_lift=_ratio(chosen_lift))
    return (
        _heading(_("What any weighting can reach"))
        + _paragraph(_("Classes share patches, so not every mix of class shares can be drawn, and every step toward "
                       "balance costs effective sample size. The curves are the limit for this dataset: above them "
                       "no weighting exists; the sampling method target_shares reaches any point on or below them "
                       "(ask for target shares, the most balanced shares at a minimum ESS, or one class lifted). "
                       "Dots are the methods of the table above."), "note")
        + (_paragraph(_("The limit is computed with the largest weight capped at {cap:g} times the mean, as in this "
                        "run; without the cap it can lie higher.").format(cap=cap), "note") if cap else "")
        + (_paragraph(summary) if summary else "")
        + f"<p>{balanced_chart}</p><p>{lift_chart}</p>"
    )


def _top_patches_section(table, result, weights, top_n) -> str:
    order = np.argsort(-weights, kind="stable")[: max(0, top_n)]
    order = order[result.included[order]]

    def cell(column, position):
        return _e(table[column].iloc[position]) if column in table.columns else "&mdash;"

    rows = [
        [
            str(rank),
            cell(PATCH_ID, i),
            cell(IMAGE_PATH, i),
            ", ".join(cell(c, i) for c in (ROW_OFF, COL_OFF, PATCH_SIZE)),
            f"{weights[i]:.3f}",
        ]
        for rank, i in enumerate(order, start=1)
    ]
    heading = _("Top {n} over-sampled patches").format(n=len(rows))
    return _heading(heading) + _table(
        ["#", "patch_id", _e(_("image")), _e(_("window (row_off, col_off, size)")), _e(_("weight"))], rows,
        text_columns=(1, 2, 3)
    )


def _exclusion_section(table, result) -> str:
    if result.n_excluded == 0:
        return _heading(_("Excluded patches")) + _paragraph(_("No patch is excluded."))
    excluded = _("{n} patches are excluded (weight 0).").format(n=result.n_excluded)
    text = _heading(_("Excluded patches")) + _paragraph(excluded)
    if EXCLUSION_REASON not in table.columns:
        return text
    reasons = table[EXCLUSION_REASON].iloc[np.flatnonzero(~result.included)]
    counts = (
        reasons.fillna("").astype(str).str.split(",").explode().str.strip()
        .replace("", _("(no reason recorded)")).value_counts()
    )
    rows = [[_e(reason), str(n)] for reason, n in counts.items()]
    return (
        text
        + _table([_e(_("reason")), _e(_("patches"))], rows, text_columns=(0,))
        + _paragraph(_("A patch with several reasons counts under each."), "note")
    )


# ---------------------------------------------------------------- helpers

def _heading(text: str) -> str:
    return f"<h2>{_e(text)}</h2>"


def _warning_box(text: str) -> str:
    label = _("Warning")
    return f"<div class=\"warning\" role=\"alert\"><b>{_e(label)}</b>: {_e(text)}</div>"


def _paragraph(text: str, css_class: str = "") -> str:
    return f"<p class=\"{css_class}\">{_e(text)}</p>" if css_class else f"<p>{_e(text)}</p>"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _ratio(value: float) -> str:
    return _("n/a") if not np.isfinite(value) else f"{value:.2f}x"


def _table(header, rows, text_columns=(), row_classes=None) -> str:
    """An HTML table; ``header`` and ``rows`` hold already escaped cell text."""

    def cells(tag, values):
        return "".join(
            f"<{tag} class=\"text\">{v}</{tag}>" if j in text_columns else f"<{tag}>{v}</{tag}>"
            for j, v in enumerate(values)
        )

    row_classes = row_classes or [""] * len(rows)
    body = "".join(
        f"<tr class=\"{c}\">{cells('td', r)}</tr>" if c else f"<tr>{cells('td', r)}</tr>"
        for r, c in zip(rows, row_classes)
    )
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"



"""The coreset report: one self-contained HTML page comparing the subset with a random one of the same size.

Per-class pixel shares (pool, subset, random subset) as bars, clusters and tiles covered, the coverage radius
in embedding space, and how many patches each step took. No script, no external file.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Optional

from ..file_safety import atomic_write
from ..i18n import _
from .measures import RADIUS_SAMPLE

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.bar { height: 0.7em; display: inline-block; vertical-align: middle; }
.pool { background: #9aa5ad; } .subset { background: #1a9850; } .random { background: #e6a01a; }
.note { color: #555; font-size: 0.9em; }
"""


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _covered(measures: dict, covered: str, total: str) -> str:
    if measures[covered] is None:
        return "—"
    return f"{measures[covered]} / {measures[total]}"


def _bar(share: float, kind: str) -> str:
    width = max(0.0, min(1.0, share)) * 10  # three bar columns fit a 1200 px window
    return f'<span class="bar {kind}" style="width:{width:.2f}em"></span>'


def coreset_report_html(comparison: dict, method: str, budget: int, steps: Optional[list] = None,
                        options: Optional[dict] = None) -> str:
    """The report page. ``comparison``: :func:`.measures.compare_with_random`; ``steps``: selection_step of
    every selected patch, in pick order (the table lists the steps in that order); ``options``: label -> value of
    the run's settings, listed as given."""
    ours, rand = comparison["method"], comparison["random"]
    e = html.escape
    rows = [
        (_("Patches selected"), ours["selected"], rand["selected"]),
        (_("Class-share distance to the pool (L1; 0 = the pool's mix, as random selection keeps it; cb and "
           "fa_cb move away from it on purpose, toward balanced classes)"), ours["class_share_l1"],
         rand["class_share_l1"]),
        (_("Composition clusters covered"), _covered(ours, "clusters_covered", "clusters_in_pool"),
         _covered(rand, "clusters_covered", "clusters_in_pool")),
        (_("Tiles covered"), _covered(ours, "tiles_covered", "tiles_in_pool"),
         _covered(rand, "tiles_covered", "tiles_in_pool")),
        (_("Coverage radius (largest cosine distance from a pool patch to the subset; lower = better covered)"),
         ours["coverage_radius"], rand["coverage_radius"]),
    ]
    measures = "".join(f"<tr><td>{e(label)}</td><td class=\"number\">{e(_number(a))}</td>"
                       f"<td class=\"number\">{e(_number(b))}</td></tr>" for label, a, b in rows)
    classes = "".join(
        f"<tr><td>{e(name)}</td>"
        f"<td class=\"number\">{ours['class_share_pool'][name]:.2%}</td>"
        f"<td>{_bar(ours['class_share_pool'][name], 'pool')}</td>"
        f"<td class=\"number\">{ours['class_share_subset'][name]:.2%}</td>"
        f"<td>{_bar(ours['class_share_subset'][name], 'subset')}</td>"
        f"<td class=\"number\">{rand['class_share_subset'][name]:.2%}</td>"
        f"<td>{_bar(rand['class_share_subset'][name], 'random')}</td></tr>"
        for name in ours["class_share_pool"])
    step_rows = "".join(f"<tr><td>{e(str(step))}</td><td class=\"number\">{count}</td></tr>"
                        for step, count in Counter(steps or []).items())  # in the order the steps picked
    title = _("Coreset report: {method}").format(method=method)
    # Translated outside the f-strings, where xgettext would not find them.
    words = {"coverage": _("Coverage"), "random": _("random"), "shares": _("Pixel share of each class"),
             "class": _("class"), "pool": _("pool"), "steps": _("Steps"), "step": _("step"),
             "patches": _("patches")}
    words = {key: e(value) for key, value in words.items()}
    parts = [
        "<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>", f"<h1>{e(title)}</h1>",
        "<p>" + e(_("{selected} of {pool} patches that are not excluded selected (budget {budget}), next to a "
                    "random subset of the same size drawn with a fixed seed.").format(
                        selected=ours["selected"], pool=ours["pool"], budget=budget)) + "</p>",
        f"<h2>{words['coverage']}</h2>",
        f"<table><tr><th></th><th>{e(method)}</th><th>{words['random']}</th></tr>{measures}</table>",
    ]
    if classes:
        parts += [f"<h2>{words['shares']}</h2>",
                  f"<table><tr><th>{words['class']}</th><th colspan=\"2\">{words['pool']}</th>"
                  f"<th colspan=\"2\">{e(method)}</th><th colspan=\"2\">{words['random']}</th></tr>{classes}</table>"]
    if step_rows:
        parts += [f"<h2>{words['steps']}</h2>",
                  f"<table><tr><th>{words['step']}</th><th>{words['patches']}</th></tr>{step_rows}</table>"]
    if options:
        rows = "".join(f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in options.items())
        parts += [f"<h2>{e(_('Options'))}</h2>", f"<table>{rows}</table>"]
    if ours["coverage_radius"] is None:
        parts.append("<p class=\"note\">" + e(_("The coverage radius needs the DINOv2 embeddings: give the "
                                                 "embedding cache (Parquet) to measure it.")) + "</p>")
    else:
        parts.append("<p class=\"note\">" + e(_("The coverage radius is measured from a seeded sample of at "
                                                 "most {n} pool patches.").format(n=RADIUS_SAMPLE)) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_coreset_report(path, comparison: dict, method: str, budget: int, steps: Optional[list] = None,
                         options: Optional[dict] = None) -> str:
    """Write :func:`coreset_report_html` to ``path`` atomically; return the path."""
    with atomic_write(path) as handle:
        handle.write(coreset_report_html(comparison, method, budget, steps, options))
    return str(path)

import re
"""HTML report: written, complete, numbers consistent with the diagnostics, user text escaped."""


import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.report import build_report_html, format_share, render_report_html
from balanced_sampling_plugin.weights import SAMPLING_METHODS, combine_weights, expected_class_shares


@pytest.fixture
def table():
    rng = np.random.default_rng(1)
    n = 60
    counts = rng.integers(0, 5, size=(n, 3)) * np.array([8, 1, 1])
    counts[:, 0] += 1
    proportions = counts / counts.sum(axis=1, keepdims=True)
    excluded = np.zeros(n, dtype=bool)
    excluded[:4] = True
    return pd.DataFrame(proportions, columns=["cls_0", "cls_1", "cls_2"]).assign(
        patch_id=[f"p{i}" for i in range(n)],
        image_path=[f"/data/<tile>&{i}.tif" for i in range(n)],
        mask_path=[f"/data/mask{i}.tif" for i in range(n)],
        row_off=0,
        col_off=np.arange(n) * 256,
        patch_size=256,
        freq_cluster_weight=rng.integers(1, 5, n).astype(float),
        uniqueness_score=rng.random(n),
        excluded=excluded,
        exclusion_reason=["border_nodata,black_border", "border_nodata", "", None] + [""] * (n - 4),
    )


def test_report_is_written_with_every_method_and_consistent_shares(tmp_path, table):
    result = combine_weights(table, "class_balanced")
    path = build_report_html(table, result, tmp_path / "report.html")
    text = open(path, encoding="utf-8").read()
    # histogram, class shares, the two frontier charts
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg") == 4
    for method in SAMPLING_METHODS:
        assert method in text
    p = table[["cls_0", "cls_1", "cls_2"]].to_numpy()
    for share in (
        *expected_class_shares(p, result.weights.to_numpy()),
        *expected_class_shares(p, (~table["excluded"]).to_numpy(dtype=float)),
    ):
        assert format_share(share) in text
    assert ">border_nodata</td><td>2<" in text and "(no reason recorded)" in text


def test_user_text_is_escaped(table):
    text = render_report_html(table, combine_weights(table, "uniqueness_only"), top_n=100)
    assert "/data/&lt;tile&gt;&amp;10.tif" in text
    assert "<tile>" not in text


def test_charts_are_inline_svg_with_one_bar_per_class_and_series(table):
    from xml.etree import ElementTree

    text = render_report_html(table, combine_weights(table, "rank_max"))
    charts = [text[m.start():text.index("</svg>", m.start()) + 6] for m in re.finditer("<svg", text)]
    ns = {"svg": "http://www.w3.org/2000/svg"}
    bars = ElementTree.fromstring(charts[1]).findall("svg:rect", ns)
    # 3 classes x 2 series (uniform, rank_max) + 2 legend swatches
    assert len(bars) == 3 * 2 + 2


def _section(text, heading):
    start = text.index(f"<h2>{heading}</h2>")
    return text[start:text.index("<h2>", start + 4)]


def test_low_effective_sample_size_shows_a_warning_box(table):
    import html

    from balanced_sampling_plugin.weights import effective_sample_size

    n = 100
    skewed = pd.DataFrame({
        "cls_0": np.linspace(0.2, 1.0, n), "cls_1": 1 - np.linspace(0.2, 1.0, n),
        "freq_cluster_weight": [1 / 90] * 90 + [1.0] * 10,
        "uniqueness_score": np.random.default_rng(3).uniform(0.5, 1.0, n), "excluded": False,
    })
    result = combine_weights(skewed, "multiplicative")
    ess = effective_sample_size(result.weights.to_numpy())
    warning = (f"Method 'multiplicative' has an effective sample size of {ess:.0f}, {ess / n:.0%} of the {n} "
               "included patches (below 30%): a few patches dominate the draws and an epoch sees little variety. "
               "Consider a rank method, class_balanced, or a lower strength.")
    text = render_report_html(skewed, result)
    summary = _section(text, "Summary")
    assert f'<div class="warning" role="alert"><b>Warning</b>: {html.escape(warning)}</div>' in summary
    assert summary.count(html.escape(warning)) == 1, "the box replaces the plain note"
    methods = _section(text, "Every method side by side")
    assert "Effective sample size below 30% of the included patches: multiplicative.</div>" in methods

    # a method above the limit: no box in the summary
    fine = render_report_html(skewed, combine_weights(skewed, "rank_max"))
    assert 'class="warning"' not in _section(fine, "Summary")
    assert "Effective sample size below 30%" in fine  # the comparison still names multiplicative


def test_frontier_section_places_every_method_beneath_the_limit(table):
    from xml.etree import ElementTree

    from balanced_sampling_plugin.weights import compare_methods, effective_sample_size
    from balanced_sampling_plugin.weights.targets import solve_target

    result = combine_weights(table, "class_balanced")
    text = render_report_html(table, result)
    section = _section(text, "What any weighting can reach")
    charts = [section[m.start():section.index("</svg>", m.start()) + 6] for m in re.finditer("<svg", section)]
    assert len(charts) == 2
    ns = {"svg": "http://www.w3.org/2000/svg"}
    methods = compare_methods(table).index.drop("uniform")
    for chart in charts:
        root = ElementTree.fromstring(chart)
        assert len(root.findall("svg:polyline", ns)) == 1
        labels = {t.text for t in root.findall("svg:text", ns)}
        assert set(methods) <= labels  # one labelled dot per method
    # the sentence: at class_balanced's ESS the most balanced weighting, computed independently
    included = ~table["excluded"].to_numpy()
    p = table[["cls_0", "cls_1", "cls_2"]].to_numpy()[included]
    ess = effective_sample_size(result.weights.to_numpy()[included]) / included.sum()
    best = solve_target(p, np.full(included.sum(), 256.0 ** 2), min_ess=ess).shares.min()
    chosen = expected_class_shares(p, result.weights.to_numpy()[included]).min()
    assert chosen <= best + 1e-9
    assert (f"the most balanced weighting gives the smallest class a share of {format_share(best)} "
            f"(class_balanced: {format_share(chosen)})") in section

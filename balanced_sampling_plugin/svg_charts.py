"""Small inline SVG charts for the HTML report.

Hand-made SVG keeps the report free of a plotting dependency and of the global
state a plotting library brings into the QGIS process (matplotlib's log-scale tick
formatting, run inside a Processing algorithm, left GDAL unable to create the
algorithm's GeoPackage output afterwards).
"""

from __future__ import annotations

import html
import math
import zlib

import numpy as np

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 48
PALETTE = ("#9a9a9a", "#d9822b", "#4a7ab5", "#6c9a8b", "#c94b4b", "#8064a2", "#b5a642")


def _svg(body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="sans-serif" font-size="11">'
        f"<title>{html.escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _scale(values: np.ndarray, log: bool) -> tuple[np.ndarray, list[tuple[float, str]], float, float]:
    """Map values to [0, 1] heights; return heights, ticks (height, label), low, high of the axis."""
    positive = values[np.isfinite(values) & (values > 0)]
    if log and positive.size:
        low = 10.0 ** math.floor(math.log10(positive.min()))
        high = 10.0 ** math.ceil(math.log10(positive.max()))
        if high <= low:
            high = low * 10
        span = math.log10(high) - math.log10(low)
        with np.errstate(divide="ignore", invalid="ignore"):
            heights = np.where(values > 0, (np.log10(np.maximum(values, low)) - math.log10(low)) / span, 0.0)
        ticks = [((math.log10(10.0 ** e) - math.log10(low)) / span, f"{10.0 ** e:g}")
                 for e in range(int(math.log10(low)), int(math.log10(high)) + 1)]
        return heights, ticks, low, high
    high = float(values[np.isfinite(values)].max()) if np.isfinite(values).any() else 1.0
    high = high if high > 0 else 1.0
    ticks = [(f, f"{f * high:.3g}") for f in np.linspace(0, 1, 5)]
    return np.nan_to_num(values / high), ticks, 0.0, high


def _axes(ticks, ylabel: str, xlabel: str = "") -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for fraction, label in ticks:
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(label)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#444"/>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" '
                 'stroke="#444"/>')
    parts.append(f'<text x="14" y="{TOP + plot_h / 2:.1f}" transform="rotate(-90 14 {TOP + plot_h / 2:.1f})" '
                 f'text-anchor="middle">{html.escape(ylabel)}</text>')
    if xlabel:
        parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                     f"{html.escape(xlabel)}</text>")
    return parts


def grouped_bar_chart(categories, series: dict, ylabel: str, log: bool = False, title: str = "") -> str:
    """Bars per category, one colour per series.

    Parameters
    ----------
    categories : sequence of str, length C (x axis).
    series : mapping name -> array (C,) of values (>= 0; NaN drawn as no bar).
    log : log10 value axis (useful when one class holds 90% and another 1%).
    """
    names = list(series)
    values = np.array([np.asarray(series[n], dtype=float) for n in names])  # (S, C)
    heights, ticks, _, _ = _scale(values.ravel(), log)
    heights = heights.reshape(values.shape)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(categories), 1)
    bar = slot * 0.8 / max(len(names), 1)
    parts = _axes(ticks, ylabel)
    for c, category in enumerate(categories):
        x0 = LEFT + c * slot + slot * 0.1
        for s, name in enumerate(names):
            h = plot_h * float(heights[s, c])
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{html.escape(str(category))} · {html.escape(name)}: '
                f"{values[s, c]:.4g}</title></rect>")
        parts.append(f'<text x="{x0 + slot * 0.4:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                     f"{html.escape(str(category))}</text>")
    for s, name in enumerate(names):
        x = LEFT + 10 + s * 150
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 14}" y="17">{html.escape(name)}</text>')
    return _svg(parts, title or ylabel)


def histogram(values, bins: int, xlabel: str, ylabel: str = "patches", title: str = "") -> str:
    """Histogram of ``values`` (1-D) with ``bins`` equal-width bins, counts on a linear axis."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(values, bins=max(1, int(bins)))
    heights, ticks, _, _ = _scale(counts.astype(float), log=False)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    width = plot_w / len(counts)
    parts = _axes(ticks, ylabel, xlabel)
    for i, (count, h) in enumerate(zip(counts, heights)):
        bar_h = plot_h * float(h)
        parts.append(
            f'<rect x="{LEFT + i * width:.1f}" y="{TOP + plot_h - bar_h:.1f}" width="{max(width - 1, 0.5):.1f}" '
            f'height="{bar_h:.1f}" fill="{PALETTE[2]}"><title>{edges[i]:.3g}–{edges[i + 1]:.3g}: '
            f"{int(count)}</title></rect>")
    for fraction in (0.0, 0.5, 1.0):
        x = LEFT + plot_w * fraction
        value = edges[0] + (edges[-1] - edges[0]) * fraction
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{value:.3g}</text>')
    return _svg(parts, title or xlabel)


#: Dot colours of labelled points: every palette colour but the grey and the curve's blue.
MARK_COLOURS = (PALETTE[1], PALETTE[3], PALETTE[4], PALETTE[5], PALETTE[6])


def _nice_step(top: float, ticks: int = 5) -> float:
    """A tick step of 1, 2, 2.5 or 5 x 10^k giving at most ``ticks`` steps up to ``top`` (> 0)."""
    raw = top / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def frontier_chart(curve, points: dict, xlabel: str, ylabel: str, title: str = "", curve_label: str = "",
                   y_format: str = "percent") -> str:
    """A limit curve with labelled points beneath it, both axes linear.

    Parameters
    ----------
    curve : (k, 2) array of (x, y), x in [0, 1] (e.g. ESS / N), drawn as a line over a shaded area.
    points : mapping label -> (x, y), drawn as dots with their label.
    y_format : "percent" (0.05 -> 5%) or "times" (2.5 -> 2.5x).
    """
    curve = np.asarray(curve, dtype=float).reshape(-1, 2)
    marks = {str(k): (float(x), float(y)) for k, (x, y) in points.items() if np.isfinite([x, y]).all()}
    scale = 100.0 if y_format == "percent" else 1.0
    step = _nice_step(max([*curve[:, 1], *(y for _x, y in marks.values()), 1e-12]) * scale)
    count = int(math.ceil(max([*curve[:, 1], *(y for _x, y in marks.values()), 1e-12]) * scale / step))
    top = max(count, 1) * step / scale

    def shown(y):
        return f"{100 * y:.3g}%" if y_format == "percent" else f"{y:.3g}x"

    ticks = [(i / max(count, 1), shown(i * step / scale)) for i in range(max(count, 1) + 1)]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(x, y):
        return LEFT + plot_w * min(max(x, 0.0), 1.0), TOP + plot_h * (1 - y / top)

    parts = _axes(ticks, ylabel, xlabel)
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, _y = xy(fraction, 0)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{fraction:g}</text>')
    if len(curve):
        line = " ".join("{:.1f},{:.1f}".format(*xy(x, y)) for x, y in curve)
        x0, base = xy(curve[0, 0], 0)
        x1, _b = xy(curve[-1, 0], 0)
        parts.append(f'<polygon points="{x0:.1f},{base:.1f} {line} {x1:.1f},{base:.1f}" fill="{PALETTE[2]}" '
                     f'fill-opacity="0.15"/>')
        parts.append(f'<polyline points="{line}" fill="none" stroke="{PALETTE[2]}" stroke-width="2">'
                     f"<title>{html.escape(curve_label)}</title></polyline>")
    # Boxes (x0, y0, x1, y1) of every dot and of the labels already drawn: a label steps away from them.
    placed = [(px - 5, py - 5, px + 5, py + 5) for px, py in (xy(x, y) for x, y in marks.values())]
    for i, (label, (x, y)) in enumerate(sorted(marks.items(), key=lambda item: item[1])):
        px, py = xy(x, y)
        colour = MARK_COLOURS[zlib.crc32(label.encode("utf-8")) % len(MARK_COLOURS)]  # the same in every report
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"><title>{html.escape(label)}: '
                     f"{x:.3f}, {shown(y)}</title></circle>")
        width = 6.0 * len(label)  # font-size 10, sans-serif: 5.5-6 px a character
        left = px + 6 if px + 6 + width <= WIDTH - RIGHT else px - 6 - width
        for dy in (12, -6, 24, -18, 36, -30, 48, -42, 60, -54, 72):
            box = (left, py + dy - 9, left + width, py + dy + 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        ty = py + dy
        if abs(dy) > 12:  # a leader line from a label moved away from its dot
            parts.append(f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{left + (0 if left > px else width):.1f}" '
                         f'y2="{ty - 3:.1f}" stroke="{colour}" stroke-width="0.6"/>')
        parts.append(f'<text x="{left:.1f}" y="{ty:.1f}" font-size="10" fill="{colour}">{html.escape(label)}</text>')
    if curve_label:
        parts.append(f'<rect x="{LEFT + 10}" y="8" width="10" height="10" fill="{PALETTE[2]}"/>')
        parts.append(f'<text x="{LEFT + 24}" y="17">{html.escape(curve_label)}</text>')
    return _svg(parts, title or ylabel)

"""Charts for the admin, drawn on the server as inline SVG: no JavaScript, no external assets.

Text and axes use ``currentColor`` so the charts follow the admin's light or dark theme;
every point carries a native SVG ``<title>`` (a hover tooltip), and every chart a title and
a description for screen readers. All labels are escaped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = (
    "#2f6fb0",
    "#d9822b",
    "#3d9a50",
    "#c23b3b",
    "#7b5ea7",
    "#8c6d1f",
    "#d45d9a",
    "#5f7a8a",
)
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]


def number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2g}" if value == int(value) else f"{value:.1f}"
    return f"{value:.3g}"


def percent(value: float) -> str:
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and about ``count`` round steps up to at least ``top``."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(n + 1)]


def _frame(title: str, width: int, height: int, body: list[str], description: str) -> SafeString:
    n = next(_ids)
    return mark_safe(
        f'<svg class="rec-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="rec-chart-{n}-t rec-chart-{n}-d" '
        f'style="max-width:100%;height:auto;font:11px sans-serif">'
        f'<title id="rec-chart-{n}-t">{escape(title)}</title>'
        f'<desc id="rec-chart-{n}-d">{escape(description)}</desc>'
        f'<text x="8" y="16" fill="currentColor" font-weight="bold" font-size="12">'
        f"{escape(title)}</text>" + "".join(body) + "</svg>"
    )


def _legend(labels: Sequence[str], x0: float, y0: float, width: int) -> tuple[list[str], float]:
    out, x, y = [], x0, y0
    for i, label in enumerate(labels):
        w = 22 + 6.5 * len(label)
        if x + w > width - 8 and x > x0:
            x, y = x0, y + 16
        color = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="10" fill="{color}"/>'
            f'<text x="{x + 16:.1f}" y="{y:.1f}" fill="currentColor">{escape(label)}</text>'
        )
        x += w
    return out, y


def _empty(title: str, width: int, height: int) -> SafeString:
    body = [
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
        f'fill="currentColor" opacity="0.6">No data for this period.</text>'
    ]
    return _frame(title, width, height, body, "No data.")


def _y_axis(
    ticks: list[float], left: float, right: float, y_of: Callable[[float], float], fmt
) -> list[str]:
    out = []
    for tick in ticks:
        y = y_of(tick)
        out.append(
            f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="currentColor" stroke-opacity="{0.35 if tick == 0 else 0.12}"/>'
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="currentColor">{escape(fmt(tick))}</text>'
        )
    return out


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_format: Callable[[float], str] = number,
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """One line per series over ``x_labels``; ``None`` values leave a gap."""
    values = [v for s in series for v in s.values if v is not None]
    if not x_labels or not values:
        return _empty(title, width, height)
    legend_rows = 1 + int(sum(22 + 6.5 * len(s.label) for s in series) // (width - 70))
    left, right, top = 56.0, width - 12.0, 28.0
    bottom = height - 34.0 - 16 * legend_rows
    ticks = nice_ticks(max(values))
    top_value = ticks[-1] or 1.0
    n = len(x_labels)

    def x_of(i: int) -> float:
        return (left + right) / 2 if n == 1 else left + i * (right - left) / (n - 1)

    def y_of(v: float) -> float:
        return bottom - (v / top_value) * (bottom - top)

    body = _y_axis(ticks, left, right, y_of, y_format)
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        body.append(
            f'<text x="{x_of(i):.1f}" y="{bottom + 14:.1f}" text-anchor="middle" '
            f'fill="currentColor">{escape(x_labels[i])}</text>'
        )
    dots = n <= 60
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for i, v in enumerate(s.values):
            if v is None:
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{x_of(i):.1f},{y_of(v):.1f}")
            if dots:
                body.append(
                    f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{color}">'
                    f"<title>{escape(s.label)}, {escape(x_labels[i])}: "
                    f"{escape(y_format(v))}</title></circle>"
                )
        for points in segments:
            if len(points) > 1:
                body.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                    f'stroke-linejoin="round" points="{" ".join(points)}"/>'
                )
    legend, _ = _legend([s.label for s in series], left, bottom + 32, width)
    body += legend
    description = "; ".join(
        f"{s.label}: last {y_format(last)}"
        for s in series
        if (last := next((v for v in reversed(s.values) if v is not None), None)) is not None
    )
    return _frame(title, width, height, body, description)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_format: Callable[[float], str] = number,
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """Grouped bars: one group per category, one bar per series, values printed on top."""
    values = [v for s in series for v in s.values if v is not None]
    if not categories or not series or not values:
        return _empty(title, width, height)
    left, right, top = 56.0, width - 12.0, 34.0
    bottom = height - 50.0
    ticks = nice_ticks(max(values))
    top_value = ticks[-1] or 1.0

    def y_of(v: float) -> float:
        return bottom - (v / top_value) * (bottom - top)

    body = _y_axis(ticks, left, right, y_of, y_format)
    group = (right - left) / len(categories)
    bar = min(40.0, group * 0.8 / len(series))
    for c, category in enumerate(categories):
        x0 = left + c * group + (group - bar * len(series)) / 2
        for k, s in enumerate(series):
            v = s.values[c] if c < len(s.values) else None
            if v is None:
                continue
            x, y = x0 + k * bar, y_of(v)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" '
                f'height="{max(0.0, bottom - y):.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(s.label)}, {escape(category)}: {escape(y_format(v))}</title>"
                f"</rect>"
                f'<text x="{x + (bar - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                f'fill="currentColor" font-size="9">{escape(y_format(v))}</text>'
            )
        body.append(
            f'<text x="{left + (c + 0.5) * group:.1f}" y="{bottom + 14:.1f}" '
            f'text-anchor="middle" fill="currentColor">{escape(category)}</text>'
        )
    legend, _ = _legend([s.label for s in series], left, bottom + 34, width)
    body += legend
    description = "; ".join(
        f"{s.label}: "
        + ", ".join(
            f"{cat} {y_format(v)}" for cat, v in zip(categories, s.values, strict=False) if v
        )
        for s in series
    )
    return _frame(title, width, height, body, description)

"""Server-side SVG charts: the overview's expiry timeline and horizontal bar charts.

The SVG is built here, as text, with every label escaped; the page embeds it inline, so
no charting script is needed and the charts show without JavaScript. Each chart has a
``<title>`` and ``<desc>`` for screen readers, and the pages put the same numbers in a
table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from certvigil.text_escape import visible

_WIDTH = 720
_HEIGHT = 220
_PAD_LEFT = 40
_PAD_BOTTOM = 28
_PAD_TOP = 12


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def expiry_timeline_svg(weeks: Sequence[int], *, start: datetime, chart_id: str) -> Markup:
    """Bars of certificates expiring per week, ``weeks[0]`` being the week from ``start``.

    Args:
        weeks: Certificates per week.
        start: When week 0 starts (aware UTC).
        chart_id: A prefix for the element ids (unique on the page).

    Returns:
        The ``<svg>`` element.
    """
    top = _nice_ceiling(max(weeks, default=0))
    plot_w = _WIDTH - _PAD_LEFT - 8
    plot_h = _HEIGHT - _PAD_BOTTOM - _PAD_TOP
    bar_w = plot_w / max(len(weeks), 1)
    total = sum(weeks)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">Certificates expiring per week, next {len(weeks)} weeks</title>',
        f'<desc id="{chart_id}-d">{total} certificates expire in the next {len(weeks)} weeks; '
        f"the busiest week has {max(weeks, default=0)}.</desc>",
    ]
    for fraction in (0, 0.5, 1):
        y = _PAD_TOP + plot_h * (1 - fraction)
        tick = round(top * fraction)
        parts.append(
            f'<line class="grid" x1="{_PAD_LEFT}" x2="{_WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick}</text>"
        )
    for index, count in enumerate(weeks):
        if count <= 0:
            continue
        height = plot_h * count / top
        x = _PAD_LEFT + index * bar_w
        y = _PAD_TOP + plot_h - height
        week_start = (start + timedelta(weeks=index)).date().isoformat()
        css = "bar urgent" if index < 4 else "bar"
        parts.append(
            f'<rect class="{css}" x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
            f'height="{height:.1f}"><title>week of {week_start}: {count}</title></rect>'
        )
    for index in range(0, len(weeks), 13):
        x = _PAD_LEFT + index * bar_w
        label = (start + timedelta(weeks=index)).strftime("%d %b")
        parts.append(f'<text class="axis" x="{x:.1f}" y="{_HEIGHT - 8}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_list_svg(
    items: Sequence[tuple[str, int]], *, title: str, chart_id: str, label_chars: int = 28
) -> Markup:
    """Horizontal bars, one per (label, count), labels escaped and shortened.

    Args:
        items: The labels and their counts, in the order to show.
        title: The chart's accessible title.
        chart_id: A prefix for the element ids (unique on the page).
        label_chars: Labels longer than this are cut with an ellipsis (the full text
            stays in the bar's tooltip).

    Returns:
        The ``<svg>`` element.
    """
    row_h = 24
    label_w = 220
    height = max(len(items), 1) * row_h + 8
    top = _nice_ceiling(max((n for _, n in items), default=0))
    plot_w = _WIDTH - label_w - 60
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
    ]
    for index, (label, count) in enumerate(items):
        y = 4 + index * row_h
        label = visible(label)
        short = label if len(label) <= label_chars else label[: label_chars - 1] + "…"
        width = plot_w * count / top
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 16}" text-anchor="end">'
            f"{escape(short)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(width, 1):.1f}" '
            f'height="{row_h - 8}"><title>{escape(label)}: {count}</title></rect>'
            f'<text class="value" x="{label_w + width + 6:.1f}" y="{y + 16}">{count}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))

"""Charts for the admin's reports (a send's, the conversion of legacy readers), drawn on
the server as SVG: no JavaScript, no library, and they print. Every label is escaped;
numbers are formatted here. A bar's colour is picked by a key naming what it counts."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLORS = {
    "sent": "#417690",
    "delivered": "#417690",
    "queued": "#999999",
    "sending": "#79aec8",
    "failed": "#ba2121",
    "bounced": "#ba2121",
    "skipped": "#c7a100",
    "cancelled": "#666666",
    "complained": "#8e44ad",
    "unsubscribed": "#c7a100",
    "opened": "#2e8b57",
    "clicked": "#e67e22",
    "converted": "#2e8b57",
}
FALLBACK = "#666666"


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    label = escape(title)
    return mark_safe(  # noqa: S308 - every text in body was escaped where it was made
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}" '
        f'font-family="sans-serif" font-size="12"><title>{label}</title>' + "".join(body) + "</svg>"
    )


def bar_chart(rows: Sequence[tuple[str, str, int]], *, title: str) -> SafeString:
    """Horizontal bars, one per (key, label, value); `key` picks the colour."""
    label_width, bar_width, row_height = 150, 300, 24
    width = label_width + bar_width + 80
    height = row_height * max(1, len(rows)) + 10
    top = _nice_max(max((v for _, _, v in rows), default=0))
    body = []
    for i, (key, label, value) in enumerate(rows):
        y = 5 + i * row_height
        length = round(bar_width * value / top) if value else 0
        body.append(
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length}" height="{row_height - 6}" '
            f'fill="{COLORS.get(key, FALLBACK)}"><title>{escape(label)}: {value:,}</title></rect>'
            f'<text x="{label_width + length + 6}" y="{y + 16}">{value:,}</text>'
        )
    return _svg(width, height, title, body)


def timeline_chart(series: dict[str, Sequence[int]], *, labels: dict[str, str], title: str):
    """One line per series over hourly buckets, with a legend; x is hours since start."""
    hours = max((len(v) for v in series.values()), default=0) or 1
    left, right, top_pad, plot_h = 50, 20, 10, 200
    plot_w = 12 * hours
    width = left + plot_w + right
    # the legend wraps to as many rows as it needs (about 7 px per character)
    legend, lx, ly = [], left, 0
    for key in series:
        item = 24 + 7 * len(labels.get(key, key))
        if lx + item > width and lx > left:
            lx, ly = left, ly + 18
        legend.append((key, lx, ly))
        lx += item
    axis_y = top_pad + plot_h
    height = axis_y + 30 + ly + 18
    top = _nice_max(max((max(v, default=0) for v in series.values()), default=0))
    x = lambda h: left + plot_w * h / hours  # noqa: E731
    y = lambda n: axis_y - plot_h * n / top  # noqa: E731
    body = [
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{axis_y}" stroke="#999"/>',
    ]
    for tick in sorted({0, top // 2, top}):
        body.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:,}</text>'
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{left + plot_w}" y2="{y(tick):.1f}" '
            'stroke="#eee"/>'
        )
    for hour in range(0, hours + 1, 6):
        body.append(
            f'<text x="{x(hour):.1f}" y="{axis_y + 16}" text-anchor="middle">{hour}h</text>'
        )
    for key, lx, ly in legend:
        values = series[key]
        color = COLORS.get(key, FALLBACK)
        name = escape(labels.get(key, key))
        # each hour's count is drawn at the middle of its hour
        points = " ".join(f"{x(h + 0.5):.1f},{y(n):.1f}" for h, n in enumerate(values))
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}">'
            f"<title>{name}: {sum(values):,} in {hours} hours</title></polyline>"
            f'<rect x="{lx}" y="{axis_y + 28 + ly}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{axis_y + 37 + ly}">{name}</text>'
        )
    return _svg(width, height, title, body)

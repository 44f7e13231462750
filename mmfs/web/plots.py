"""Small SVG charts drawn by hand: a line over time and horizontal bars, with axes and labels.

Every text that reaches the SVG is escaped here, so callers may embed the result in a page as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

_FONT = 'font-family="sans-serif" font-size="11"'
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 52, 12, 22, 30


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    span = high - low
    if span <= 0 or not math.isfinite(span):
        return [low]
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    """A short number for an axis tick."""
    if value == 0:
        return "0"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}"


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    width: int = 640,
    height: int = 160,
    css_class: str = "plot",
) -> str:
    """An SVG line (with dots) of `points` (x, y), e.g. a measure over time; "no data" when empty."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title><text x="{_PAD_LEFT}" y="14" {_FONT} font-weight="bold">'
        f"{escape(title)}</text>"
    )
    clean = [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if not clean:
        return (
            head + f'<text x="{width / 2}" y="{height / 2}" {_FONT} text-anchor="middle">no data</text></svg>'
        )
    xs, ys = [p[0] for p in clean], [p[1] for p in clean]
    x0, x1 = x_range or (min(xs), max(xs))
    x1 = x1 if x1 > x0 else x0 + 1.0
    y0, y1 = min(0.0, min(ys)), max(ys)
    y1 = y1 if y1 > y0 else y0 + 1.0
    plot_w, plot_h = width - _PAD_LEFT - _PAD_RIGHT, height - _PAD_TOP - _PAD_BOTTOM

    def sx(x: float) -> float:
        """Data x to SVG x."""
        return _PAD_LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        """Data y to SVG y (up is larger)."""
        return _PAD_TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    parts = [head, _axes(plot_w, plot_h, height)]
    parts += [
        f'<text x="{sx(tick):.1f}" y="{height - _PAD_BOTTOM + 13}" {_FONT} text-anchor="middle">'
        f"{_label(tick)}</text>"
        for tick in _ticks(x0, x1)
    ]
    parts += [_y_tick(sy(tick), tick, width) for tick in _ticks(y0, y1, 3)]
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in clean)
    parts.append(
        f'<polyline class="series" fill="none" stroke="#2266aa" stroke-width="1.5" points="{path}"/>'
    )
    parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" fill="#2266aa"/>' for x, y in clean]
    parts.append(
        f'<text x="{_PAD_LEFT + plot_w / 2}" y="{height - 3}" {_FONT} text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="10" y="{_PAD_TOP + plot_h / 2}" {_FONT} text-anchor="middle" '
        f'transform="rotate(-90 10 {_PAD_TOP + plot_h / 2})">{escape(y_label)}</text></svg>'
    )
    return "".join(parts)


def _y_tick(y: float, value: float, width: int) -> str:
    """A y-axis label with its light grid line across the plot."""
    return (
        f'<text x="{_PAD_LEFT - 4}" y="{y + 4:.1f}" {_FONT} text-anchor="end">{_label(value)}</text>'
        f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
    )


def _axes(plot_w: float, plot_h: float, height: int) -> str:
    """The two axis lines of a chart."""
    bottom = height - _PAD_BOTTOM
    return (
        f'<line x1="{_PAD_LEFT}" y1="{_PAD_TOP}" x2="{_PAD_LEFT}" y2="{bottom}" stroke="#444"/>'
        f'<line x1="{_PAD_LEFT}" y1="{bottom}" x2="{_PAD_LEFT + plot_w}" y2="{bottom}" stroke="#444"/>'
    )


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    css_class: str = "plot",
) -> str:
    """Horizontal SVG bars, one per (label, value), with the value written at the bar's end."""
    row, top, label_w = 20, 24, 170
    height = top + row * max(len(bars), 1) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title><text x="4" y="14" {_FONT} font-weight="bold">{escape(title)}</text>'
    ]
    if not bars:
        parts.append(f'<text x="4" y="{top + 12}" {_FONT}>no data</text></svg>')
        return "".join(parts)
    top_value = max((v for _, v in bars if math.isfinite(v)), default=0.0) or 1.0
    span = width - label_w - 90
    for i, (name, value) in enumerate(bars):
        y = top + i * row
        length = max(0.0, value / top_value * span) if math.isfinite(value) else 0.0
        shown = f"{value:.3g} {unit}".strip()
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" {_FONT} text-anchor="end">{escape(name[:28])}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
            'fill="#2266aa"/>'
            f'<text x="{label_w + length + 4:.1f}" y="{y + 13}" {_FONT}>{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def spans_chart(
    spans: Sequence[tuple[float, float, str]],
    *,
    title: str,
    x_range: tuple[float, float],
    width: int = 640,
    css_class: str = "plot",
) -> str:
    """Labelled boxes on a time axis, one per (start, end, text): where each caption or line falls."""
    x0, x1 = x_range[0], x_range[1] if x_range[1] > x_range[0] else x_range[0] + 1.0
    plot_w, height, top = width - _PAD_LEFT - _PAD_RIGHT, 64, 22
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title><text x="{_PAD_LEFT}" y="14" {_FONT} font-weight="bold">'
        f"{escape(title)}</text>"
    ]
    for i, (start, end, text) in enumerate(s for s in spans if math.isfinite(s[0]) and math.isfinite(s[1])):
        left = _PAD_LEFT + (start - x0) / (x1 - x0) * plot_w
        right = _PAD_LEFT + (min(end, x1) - x0) / (x1 - x0) * plot_w
        y = top + (i % 2) * 16  # alternate rows so neighbours never overlap
        parts.append(
            f'<g class="span"><title>{escape(f"{start:.1f}–{end:.1f} s: {text}")}</title>'
            f'<rect x="{left:.1f}" y="{y}" width="{max(right - left - 1, 1):.1f}" height="14" fill="#e3ecf6" '
            f'stroke="#2266aa"/><text x="{left + 3:.1f}" y="{y + 11}" {_FONT}>'
            f"{escape(text[: max(int((right - left) / 6), 0)])}</text></g>"
        )
    for tick in _ticks(x0, x1):
        x = _PAD_LEFT + (tick - x0) / (x1 - x0) * plot_w
        parts.append(f'<text x="{x:.1f}" y="{height - 2}" {_FONT} text-anchor="middle">{_label(tick)}</text>')
    parts.append("</svg>")
    return "".join(parts)

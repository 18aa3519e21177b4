"""Server-rendered SVG charts: no chart library and no script, so every page works offline
and costs one HTML response. Each function returns markup safe to embed (`Markup`); the
look lives in `static/explorer.css` (classes `series-0`, `series-1`, `shade`, ...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    style: str = "series-0"
    step: bool = False
    """Hold each value until the next point (interval data, cumulative totals)."""


@dataclass(frozen=True)
class Band:
    """A shaded rectangle in data coordinates: x0..x1, y0..y1."""

    x0: float
    x1: float
    y0: float
    y1: float
    title: str = ""


@dataclass
class Frame:
    """Data range -> pixel mapping."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def x(self, value: float) -> float:
        span = (self.x_max - self.x_min) or 1
        return LEFT + (value - self.x_min) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1
        return HEIGHT - BOTTOM - (value - self.y_min) / span * (HEIGHT - TOP - BOTTOM)


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def _path(frame: Frame, series: Series) -> str:
    points: list[tuple[float, float]] = []
    for index, (x, y) in enumerate(series.points):
        if series.step and index:
            points.append((x, series.points[index - 1][1]))
        points.append((x, y))
    return " ".join(
        f"{'M' if i == 0 else 'L'}{frame.x(x):.1f},{frame.y(y):.1f}"
        for i, (x, y) in enumerate(points)
    )


def chart(
    title: str,
    series: Sequence[Series],
    *,
    bands: Sequence[Band] = (),
    x_label: Callable[[float], str] = _fmt,
    y_unit: str = "",
    markers: Sequence[tuple[str, float, str]] = (),
    y_floor_zero: bool = True,
) -> Markup:
    """A line/step chart with optional shaded bands and horizontal markers
    (label, y value, style)."""
    xs = [x for s in series for x, _ in s.points] + [b.x0 for b in bands] + [b.x1 for b in bands]
    ys = [y for s in series for _, y in s.points] + [b.y1 for b in bands]
    ys += [value for _, value, _ in markers]
    if not xs:
        return Markup(f'<p class="empty">{escape(title)}: no data yet</p>')
    y_min = min([0.0, *ys]) if y_floor_zero else min(ys)
    frame = Frame(min(xs), max(xs), y_min, max(ys) * 1.08 or 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in range(5):
        value = frame.y_min + (frame.y_max - frame.y_min) * tick / 4
        y = frame.y(value)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_fmt(value)}</text>"
        )
    for tick in range(3):
        value = frame.x_min + (frame.x_max - frame.x_min) * tick / 2
        anchor = ("start", "middle", "end")[tick]
        parts.append(
            f'<text class="tick" x="{frame.x(value):.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="{anchor}">{escape(x_label(value))}</text>'
        )
    for band in bands:
        x0, x1 = frame.x(band.x0), frame.x(band.x1)
        top, bottom = frame.y(max(band.y0, band.y1)), frame.y(min(band.y0, band.y1))
        parts.append(
            f'<rect class="shade" x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{max(bottom - top, 0.5):.1f}"><title>{escape(band.title)}</title></rect>'
        )
    for label, value, style in markers:
        y = frame.y(value)
        parts.append(
            f'<line class="{style}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="marker-label" x="{WIDTH - RIGHT}" y="{y - 3:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
    for item in series:
        if item.points:
            parts.append(
                f'<path class="line {item.style}" d="{_path(frame, item)}">'
                f"<title>{escape(item.name)}</title></path>"
            )
    if y_unit:
        parts.append(f'<text class="unit" x="4" y="{TOP + 4}">{escape(y_unit)}</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key {s.style}">{escape(s.name)}</span>' for s in series if s.points
    )
    if bands:
        legend += '<span class="key shade-key">delivered</span>'
    return Markup(f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>'
                  f'{"".join(parts)}<div class="legend">{legend}</div></figure>')  # fmt: skip

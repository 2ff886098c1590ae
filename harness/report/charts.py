"""SVG charts drawn in Python: line charts with fault bands, a per-op Gantt timeline, sparklines.

Server-side SVG inlined in the page needs no JavaScript and no network,
prints well and survives being mailed around as one file. Every chart is
readable without colour: series differ by colour (the Okabe-Ito palette,
safe for the common colour-vision deficiencies), dash pattern and marker
shape, and carry text labels; fault windows are hatched bands with a
written label. Every text that reaches the SVG is escaped here, because
labels come from the history, which is untrusted input from the server
under test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from stormproof.harness.report.escape import esc as _esc

__all__ = [
    "OKABE_ITO",
    "Band",
    "Bar",
    "Line",
    "gantt",
    "line_chart",
    "nice_ticks",
    "sparkline",
]

#: Okabe & Ito (2008), colour-blind safe.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermilion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

# (colour, dash pattern, marker): the n-th series of a chart.
_STYLES: tuple[tuple[str, str, str], ...] = (
    (OKABE_ITO["blue"], "", "circle"),
    (OKABE_ITO["vermilion"], "7 3", "square"),
    (OKABE_ITO["bluish_green"], "2 2", "triangle"),
    (OKABE_ITO["reddish_purple"], "9 3 2 3", "diamond"),
    (OKABE_ITO["orange"], "4 4", "circle"),
    (OKABE_ITO["sky_blue"], "1 3", "square"),
    (OKABE_ITO["black"], "12 4", "triangle"),
)
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;font-size:11px"
_BAND_FILL = OKABE_ITO["yellow"]
_OUTCOME_FILL = {"ok": OKABE_ITO["bluish_green"], "fail": OKABE_ITO["vermilion"], "info": OKABE_ITO["orange"]}


def _n(value: float) -> str:
    """A coordinate, short: SVG size grows with every digit of every point."""
    if not math.isfinite(value):
        return "0"
    text = f"{value:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def _fmt(value: float) -> str:
    """A tick label: 1500 -> 1.5k, 0.25 -> 0.25."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if magnitude >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5, 5 times a power of ten)."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low] if math.isfinite(low) else [0.0]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _marker(shape: str, x: float, y: float) -> str:
    if shape == "square":
        return f"M{_n(x - 3)} {_n(y - 3)}h6v6h-6z"
    if shape == "triangle":
        return f"M{_n(x)} {_n(y - 4)}l4 7h-8z"
    if shape == "diamond":
        return f"M{_n(x)} {_n(y - 4)}l4 4l-4 4l-4-4z"
    return f"M{_n(x - 3)} {_n(y)}a3 3 0 1 0 6 0a3 3 0 1 0-6 0"


@dataclass(frozen=True, slots=True)
class Line:
    """One series: a label and a value per x (None: no data there, the line breaks)."""

    label: str
    values: Sequence[float | None]
    style: int | None = None
    #: Stroke width and opacity: a wide, pale line drawn first stays visible under a thin one
    #: drawn over it where both have the same values (p99 under p95 in a quiet bucket).
    width: float = 1.6
    opacity: float = 1.0


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded time window (a fault): ``key`` is its short name (F1), ``stop`` None if never healed."""

    key: str
    label: str
    start: float
    stop: float | None
    href: str | None = None


def _hatch(pattern_id: str, colour: str, background: str | None = None) -> str:
    fill = f'<rect width="6" height="6" fill="{background}"/>' if background else ""
    return (f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)">{fill}<line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" '
            f'stroke-width="2"/></pattern>')


def _band_lanes(bands: Sequence[Band], scale_x, x_end: float) -> list[int]:
    """Greedy lanes so that band labels never overlap (label width estimated at 6.2 px a character)."""
    lane_ends: list[float] = []
    lanes = []
    for band in bands:
        x0 = scale_x(band.start)
        x1 = max(scale_x(band.stop if band.stop is not None else x_end), x0 + 6.2 * len(_band_text(band)) + 8)
        for lane, end in enumerate(lane_ends):
            if end <= x0:
                lane_ends[lane] = x1
                lanes.append(lane)
                break
        else:
            lane_ends.append(x1)
            lanes.append(len(lane_ends) - 1)
    return lanes


def _band_text(band: Band) -> str:
    label = band.label if len(band.label) <= 40 else band.label[:39] + "…"
    return f"{band.key} {label}" + ("" if band.stop is not None else " (not healed)")


def _draw_bands(chart_id: str, bands: Sequence[Band], scale_x, x_end: float, left: float, right: float,
                top: float, bottom: float, strip_top: float) -> list[str]:
    out: list[str] = []
    lanes = _band_lanes(bands, scale_x, x_end)
    for band, lane in zip(bands, lanes):
        x0 = max(left, min(right, scale_x(band.start)))
        x1 = max(left, min(right, scale_x(band.stop if band.stop is not None else x_end)))
        width = max(2.0, x1 - x0)
        title = f"<title>{_esc(_band_text(band))}: {_n(band.start)} s to " \
                f"{_n(band.stop) + ' s' if band.stop is not None else 'end of run'}</title>"
        out.append(f'<g class="band">{title}<rect x="{_n(x0)}" y="{_n(top)}" width="{_n(width)}" '
                   f'height="{_n(bottom - top)}" fill="url(#{chart_id}-hatch)" stroke="#8a7f00" '
                   f'stroke-width="0.6" stroke-dasharray="3 2"/>')
        y = strip_top + lane * 14
        text = (f'<text x="{_n(x0 + 3)}" y="{_n(y + 10)}" fill="#000">{_esc(_band_text(band))}</text>')
        if band.href:
            text = f'<a href="{_esc(band.href)}">{text}</a>'
        out.append(f'<rect x="{_n(x0)}" y="{_n(y)}" width="{_n(width)}" height="12" fill="{_BAND_FILL}" '
                   f'fill-opacity="0.55" stroke="#8a7f00" stroke-width="0.6"/>{text}</g>')
    return out


def line_chart(
    chart_id: str,
    title: str,
    x: Sequence[float],
    lines: Sequence[Line],
    *,
    x_end: float,
    x_label: str,
    y_label: str,
    bands: Sequence[Band] = (),
    description: str = "",
    width: int = 960,
    height: int = 250,
) -> str:
    """A line chart of ``lines`` over ``x`` with hatched, labelled fault ``bands``.

    ``chart_id`` must be unique in the page (it prefixes the SVG ids).
    The y axis starts at 0; both axes carry their label with the unit.
    """
    left, legend_w = 64.0, 170.0
    right = width - legend_w
    x_max = max(x_end, x[-1] if x else 0.0, 1e-9)

    def sx(t: float) -> float:
        return left + (right - left) * t / x_max

    strip = 14 * (max(_band_lanes(bands, sx, x_max), default=-1) + 1)
    top = 26.0 + strip
    plot_h = float(height)
    bottom = top + plot_h
    total_h = bottom + 44
    y_values = [v for line in lines for v in line.values if v is not None]
    y_ticks = nice_ticks(0.0, max(y_values, default=0.0) or 1.0)
    y_top = y_ticks[-1] or 1.0
    x_ticks = nice_ticks(0.0, x_max, 8)

    def sy(v: float) -> float:
        return bottom - plot_h * v / y_top

    parts = [
        f'<svg class="chart" id="{_esc(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {_n(total_h)}" width="{width}" height="{_n(total_h)}" style="{_FONT}" '
        f'aria-labelledby="{_esc(chart_id)}-t {_esc(chart_id)}-d">',
        f'<title id="{_esc(chart_id)}-t">{_esc(title)}</title>',
        f'<desc id="{_esc(chart_id)}-d">{_esc(description or title)}</desc>',
        f'<defs>{_hatch(chart_id + "-hatch", "#b3a600", "#fbf6c6")}</defs>',
        f'<text x="{_n(left)}" y="14" font-weight="600" font-size="13">{_esc(title)}</text>',
    ]
    parts += _draw_bands(chart_id, bands, sx, x_max, left, right, top, bottom, 20.0)
    # axes and grid
    for tick in y_ticks:
        y = sy(tick)
        parts.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" stroke="#ddd"/>'
                     f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end">{_fmt(tick)}</text>')
    for tick in x_ticks:
        if tick > x_max * 1.0001:
            continue
        xx = sx(tick)
        parts.append(f'<line x1="{_n(xx)}" y1="{_n(bottom)}" x2="{_n(xx)}" y2="{_n(bottom + 4)}" stroke="#333"/>'
                     f'<text x="{_n(xx)}" y="{_n(bottom + 16)}" text-anchor="middle">{_fmt(tick)}</text>')
    parts.append(f'<path d="M{_n(left)} {_n(top)}V{_n(bottom)}H{_n(right)}" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{_n((left + right) / 2)}" y="{_n(bottom + 34)}" text-anchor="middle">'
                 f'{_esc(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {_n((top + bottom) / 2)}) rotate(-90)" text-anchor="middle">'
                 f'{_esc(y_label)}</text>')
    # series
    for number, line in enumerate(lines):
        colour, dash, shape = _STYLES[(line.style if line.style is not None else number) % len(_STYLES)]
        path: list[str] = []
        pen_down = False
        for t, v in zip(x, line.values):
            if v is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{_n(sx(t))} {_n(sy(v))}")
            if not pen_down:
                path.append("l0 0")
            pen_down = True
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        look = f'stroke-width="{_n(line.width)}"' + (
            f' stroke-opacity="{line.opacity:g}"' if line.opacity < 1 else "")
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" {look} '
                     f'stroke-linejoin="round" stroke-linecap="round"{dash_attr}><title>{_esc(line.label)}'
                     f'</title></path>')
        points = [(t, v) for t, v in zip(x, line.values) if v is not None]
        every = max(1, len(points) // 12)
        marks = "".join(_marker(shape, sx(t), sy(v)) for t, v in points[number % every::every])
        if marks:
            parts.append(f'<path d="{marks}" fill="{colour}" stroke="#fff" stroke-width="0.6"/>')
        # legend entry
        ly = top + 8 + number * 18
        lx = right + 14
        parts.append(f'<line x1="{_n(lx)}" y1="{_n(ly)}" x2="{_n(lx + 26)}" y2="{_n(ly)}" stroke="{colour}" '
                     f'{look}{dash_attr}/><path d="{_marker(shape, lx + 13, ly)}" fill="{colour}"/>'
                     f'<text x="{_n(lx + 32)}" y="{_n(ly + 4)}">{_esc(line.label)}</text>')
    if not y_values:
        parts.append(f'<text x="{_n((left + right) / 2)}" y="{_n((top + bottom) / 2)}" text-anchor="middle" '
                     f'fill="#555">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Bar:
    """One operation in a timeline row: invoke ``start`` to completion ``stop`` (None: never completed)."""

    label: str
    start: float
    stop: float | None
    outcome: Literal["ok", "fail", "info"]
    text: str
    anchor_id: str
    href: str | None = None
    highlight: bool = False


def gantt(chart_id: str, title: str, bars: Sequence[Bar], *, t0: float, t1: float, bands: Sequence[Band] = (),
          width: int = 1000) -> str:
    """A timeline: one row per operation, a bar from invoke to completion, faults as bands.

    Bar fill shows the outcome three ways: colour, pattern (ok solid, fail
    striped, info hollow and dashed) and the written outcome after the bar.
    Highlighted rows (the operations a violation cites) are marked with a
    star and a bold label. Each row has ``anchor_id`` and links to ``href``.
    """
    label_w, row_h, right_pad = 330.0, 20.0, 190.0
    left, right = label_w, width - right_pad
    span = max(t1 - t0, 1e-6)
    lanes = (max(_band_lanes(bands, lambda t: left + (right - left) * (t - t0) / span, t1), default=-1) + 1
             if bands else 0)
    top = 24.0 + 14 * lanes
    bottom = top + row_h * len(bars)
    total_h = bottom + 40

    def sx(t: float) -> float:
        return left + (right - left) * (min(max(t, t0), t1) - t0) / span

    parts = [
        f'<svg class="chart timeline" id="{_esc(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {_n(total_h)}" width="{width}" height="{_n(total_h)}" style="{_FONT}" '
        f'aria-labelledby="{_esc(chart_id)}-t">',
        f'<title id="{_esc(chart_id)}-t">{_esc(title)}</title>',
        f'<defs>{_hatch(chart_id + "-hatch", "#b3a600", "#fbf6c6")}'
        f'{_hatch(chart_id + "-fail", "#fff", _OUTCOME_FILL["fail"])}</defs>',
        f'<text x="4" y="14" font-weight="600" font-size="12">{_esc(title)}</text>',
    ]
    parts += _draw_bands(chart_id, bands, lambda t: left + (right - left) * (t - t0) / span, t1, left, right,
                         top, bottom, 20.0)
    for row, bar in enumerate(bars):
        y = top + row * row_h
        if row % 2:
            parts.append(f'<rect x="0" y="{_n(y)}" width="{width}" height="{_n(row_h)}" fill="#000" '
                         f'fill-opacity="0.035"/>')
        x0 = sx(bar.start)
        x1 = sx(bar.stop) if bar.stop is not None else right
        w = max(2.0, x1 - x0)
        if bar.outcome == "ok":
            style = f'fill="{_OUTCOME_FILL["ok"]}" stroke="#00563f"'
        elif bar.outcome == "fail":
            style = f'fill="url(#{_esc(chart_id)}-fail)" stroke="#7a3300"'
        else:
            style = f'fill="#fff" stroke="{_OUTCOME_FILL["info"]}" stroke-width="2" stroke-dasharray="4 2"'
        if bar.highlight:
            style += ' stroke-width="2.5"'
        label = ("★ " if bar.highlight else "") + bar.label
        weight = ' font-weight="700"' if bar.highlight else ""
        row_svg = (f'<g id="{_esc(bar.anchor_id)}"><title>{_esc(bar.label)}: {_esc(bar.text)}</title>'
                   f'<text x="6" y="{_n(y + 14)}"{weight}>{_esc(label if len(label) <= 52 else label[:51] + "…")}'
                   f'</text><rect x="{_n(x0)}" y="{_n(y + 4)}" width="{_n(w)}" height="12" rx="2" {style}/>'
                   f'<text x="{_n(min(x0 + w + 4, right + 4))}" y="{_n(y + 14)}"{weight}>'
                   f'{_esc(bar.text if len(bar.text) <= 34 else bar.text[:33] + "…")}</text></g>')
        if bar.href:
            row_svg = f'<a href="{_esc(bar.href)}">{row_svg}</a>'
        parts.append(row_svg)
    for tick in nice_ticks(t0, t1, 6):
        if t0 - 1e-9 <= tick <= t1 + 1e-9:
            xx = sx(tick)
            parts.append(f'<line x1="{_n(xx)}" y1="{_n(top)}" x2="{_n(xx)}" y2="{_n(bottom + 4)}" stroke="#ccc"/>'
                         f'<text x="{_n(xx)}" y="{_n(bottom + 16)}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{_n((left + right) / 2)}" y="{_n(bottom + 32)}" text-anchor="middle">'
                 f'time since start of run (s)</text></svg>')
    return "".join(parts)


def sparkline(values: Sequence[float | None], *, label: str, unit: str = "", width: int = 140,
              height: int = 32) -> str:
    """A tiny trend line (oldest left), its last point marked, with a text alternative."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    summary = ", ".join("–" if v is None else _fmt(v) for v in values)
    head = (f'<svg class="spark" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-label="{_esc(label)}: {_esc(summary)} {_esc(unit)}">'
            f'<title>{_esc(label)} over runs, oldest first: {_esc(summary)} {_esc(unit)}</title>')
    if not points:
        return head + f'<text x="2" y="{height - 10}" font-size="10" fill="#555">no data</text></svg>'
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    spread = high - low or 1.0
    n = max(1, len(values) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 3 + (width - 6) * i / n, height - 4 - (height - 8) * (v - low) / spread

    d = "".join(f"{'M' if k == 0 else 'L'}{_n(x)} {_n(y)}" for k, (x, y) in enumerate(xy(i, v) for i, v in points))
    lx, ly = xy(*points[-1])
    return (head + f'<path d="{d}" fill="none" stroke="{OKABE_ITO["blue"]}" stroke-width="1.5"/>'
            f'<path d="{_marker("circle", lx, ly)}" fill="{OKABE_ITO["vermilion"]}"/></svg>')

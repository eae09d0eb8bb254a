"""Inline SVG: the uptime bar, the response-time chart and shields-style badges.

Drawn on the server, with no script: each bar segment carries a <title> (the day and its
uptime, shown on hover and read by screen readers), and the chart has a text summary
beside it, so nothing is said by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..history.summary import DAYS, DayBar, TargetSummary, uptime_percent
from .html import esc, ms, utc

GREEN, AMBER, RED, GREY, BLUE = "#2e9e5b", "#e0a100", "#d14343", "#c9ced6", "#3657a8"
DASHED = "stroke-dasharray='4 3'"


def uptime_colour(uptime: float | None) -> str:
    if uptime is None:
        return GREY
    if uptime >= 0.999:
        return GREEN
    return AMBER if uptime >= 0.95 else RED


def uptime_bar(bars: Sequence[DayBar], label: str) -> str:
    """One segment per day, oldest left (days in a row with the same figure share one
    segment, its title naming the span); scales down to the width it is given."""
    return _bar_svg(len(bars), label, _segments(bars, 0))


_STEP = 4  # px per day; a segment is one px narrower than its days


def _bar_svg(days: int, label: str, segments: str) -> str:
    return (f"<svg class='bar' role='img' aria-label='{esc(label)}' viewBox='0 0 {days * _STEP} 20' "
            f"width='{days * _STEP}' height='20' preserveAspectRatio='none'>{segments}</svg>")


def _segments(bars: Sequence[DayBar], first_index: int) -> str:
    parts = []
    index = 0
    while index < len(bars):
        text = "no data" if bars[index].uptime is None else uptime_percent(bars[index].uptime)
        end = index + 1
        while end < len(bars) and ("no data" if bars[end].uptime is None else uptime_percent(bars[end].uptime)) == text:
            end += 1
        when = utc(bars[index].start, with_time=False)
        if end - index > 1:
            when += f" to {utc(bars[end - 1].start, with_time=False)}"
        parts.append(f"<rect x='{(first_index + index) * _STEP}' width='{(end - index) * _STEP - 1}' height='20' "
                     f"fill='{uptime_colour(bars[index].uptime)}'><title>{when}: {text}</title></rect>")
        index = end
    return "".join(parts)


class BarCache:
    """The closed days of each target's bar, drawn once a day (or when a closed day changes):
    only today's segment is drawn per page, which keeps a page of a thousand bars fast."""

    def __init__(self) -> None:
        self._drawn: dict[str, tuple[tuple[int, int], str]] = {}

    def bar(self, name: str, summary: TargetSummary, now: float, label: str) -> str:
        key = (int(now // 86400), summary.past_version)
        cached = self._drawn.get(name)
        if cached is None or cached[0] != key:
            cached = (key, _segments(summary.day_bars(now - 86400, DAYS - 1), 0))
            self._drawn[name] = cached
        return _bar_svg(DAYS, label, cached[1] + _segments(summary.day_bars(now, 1), DAYS - 1))


def result_bar(points: Sequence[tuple[int, int, int]], label: str) -> str:
    """Segments of (start, count, failures): green when all passed, red when all failed."""
    step, width, height = 6, 5, 20
    parts = [f"<svg class='bar' role='img' aria-label='{esc(label)}' viewBox='0 0 {max(1, len(points)) * step} "
             f"{height}' width='{max(1, len(points)) * step}' height='{height}' preserveAspectRatio='none'>"]
    for index, (start, count, failures) in enumerate(points):
        colour = GREY if not count else GREEN if not failures else RED if failures == count else AMBER
        text = f"{utc(start)}: {count - failures} of {count} passed" if count else f"{utc(start)}: no data"
        parts.append(f"<rect x='{index * step}' y='0' width='{width}' height='{height}' rx='1' fill='{colour}'>"
                     f"<title>{esc(text)}</title></rect>")
    parts.append("</svg>")
    return "".join(parts)


def response_chart(points: Sequence[tuple[int, float | None, float | None]], label: str,
                   width: int = 720, height: int = 180) -> str:
    """Mean and p95 response time per step (start, mean, p95): two lines over a time axis."""
    values = [v for _, mean, p95 in points for v in (mean, p95) if v is not None]
    top = max(values) * 1.1 if values else 1.0
    left, bottom = 48, 20
    plot_w, plot_h = width - left - 6, height - bottom - 6
    n = max(1, len(points) - 1)

    def xy(index: int, value: float) -> str:
        return f"{left + plot_w * index / n:.1f},{6 + plot_h * (1 - value / top):.1f}"

    def line(which: int, colour: str, dash: str = "") -> str:
        runs: list[list[str]] = []
        run: list[str] = []
        for index, point in enumerate(points):
            value = point[which]
            if value is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(xy(index, value))
        if run:
            runs.append(run)
        return "".join(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' {dash} points='{' '.join(r)}'/>"
                       if len(r) > 1 else _dot(r[0], colour) for r in runs)

    grid = "".join(f"<line x1='{left}' x2='{width - 6}' y1='{6 + plot_h * f:.1f}' y2='{6 + plot_h * f:.1f}' "
                   f"stroke='#eceef1'/><text x='{left - 4}' y='{10 + plot_h * f:.1f}' font-size='11' "
                   f"text-anchor='end' fill='#555'>{esc(ms(top * (1 - f)))}</text>" for f in (0, 0.5, 1))
    axis = ""
    if points:
        axis = (f"<text x='{left}' y='{height - 4}' font-size='11' fill='#555'>{esc(utc(points[0][0]))}</text>"
                f"<text x='{width - 6}' y='{height - 4}' font-size='11' fill='#555' text-anchor='end'>"
                f"{esc(utc(points[-1][0]))}</text>")
    return (f"<svg class='chart' role='img' aria-label='{esc(label)}' viewBox='0 0 {width} {height}' "
            f"width='{width}' height='{height}'><title>{esc(label)}</title>{grid}{axis}"
            f"{line(1, BLUE)}{line(2, AMBER, DASHED)}</svg>")


def _dot(point: str, colour: str) -> str:
    """A lone value (no neighbour to draw a line to) as a dot."""
    x, y = point.split(",")
    return f"<circle cx='{x}' cy='{y}' r='2.5' fill='{colour}'/>"


def badge(label: str, value: str, colour: str) -> str:
    """A shields.io-style badge: grey label, coloured value, widths from the text length."""
    def text_width(text: str) -> int:
        return 7 * len(text) + 10

    lw, vw = text_width(label), text_width(value)
    total = lw + vw
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{total}' height='20' role='img' "
            f"aria-label='{esc(label)}: {esc(value)}'><title>{esc(label)}: {esc(value)}</title>"
            f"<linearGradient id='s' x2='0' y2='100%'><stop offset='0' stop-color='#bbb' stop-opacity='.1'/>"
            f"<stop offset='1' stop-opacity='.1'/></linearGradient><clipPath id='r'><rect width='{total}' "
            f"height='20' rx='3' fill='#fff'/></clipPath><g clip-path='url(#r)'><rect width='{lw}' height='20' "
            f"fill='#555'/><rect x='{lw}' width='{vw}' height='20' fill='{colour}'/><rect width='{total}' "
            f"height='20' fill='url(#s)'/></g><g fill='#fff' text-anchor='middle' "
            f"font-family='Verdana,Geneva,DejaVu Sans,sans-serif' font-size='11'>"
            f"<text x='{lw / 2:.1f}' y='14'>{esc(label)}</text><text x='{lw + vw / 2:.1f}' y='14'>{esc(value)}</text>"
            f"</g></svg>")

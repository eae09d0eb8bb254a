"""Badges: `/badges/<target>/health.svg`, `/badges/<target>/uptime/<24h|7d|30d>.svg`,
`/badges/<target>/response-time.svg`, for READMEs and wikis (shields-style SVG)."""

from __future__ import annotations

from ..history.summary import uptime_percent
from .html import Page, ms
from .model import Sources
from .svg import AMBER, GREEN, GREY, RED, badge, uptime_colour

SVG = "image/svg+xml"
_NO_CACHE = [("Cache-Control", "no-cache, max-age=0")]


def badge_page(sources: Sources, name: str, what: list[str]) -> Page | None:
    state = sources.targets.states.get(name)
    if state is None:
        return None
    if what == ["health.svg"]:
        result = state.last_result
        value, colour = ("unknown", GREY) if result is None else ("up", GREEN) if result.success else ("down", RED)
        return Page(200, badge("health", value, colour), SVG, _NO_CACHE)
    if len(what) == 2 and what[0] == "uptime" and what[1] in ("24h.svg", "7d.svg", "30d.svg"):
        span = what[1].removesuffix(".svg")
        uptime = sources.history.window(name, span).uptime()
        return Page(200, badge(f"uptime {span}", uptime_percent(uptime), uptime_colour(uptime)), SVG, _NO_CACHE)
    if what == ["response-time.svg"]:
        result = state.last_result
        seconds = result.duration if result else None
        colour = GREY if seconds is None else GREEN if seconds < 0.3 else AMBER if seconds < 1 else RED
        return Page(200, badge("response time", ms(seconds), colour), SVG, _NO_CACHE)
    return None

"""Which path is which status page, badge or history API answer; and which are public.

The listener asks `StatusPages.page` for a path it does not serve itself, `api` for an
/api/v1/ path it does not know, and `is_public` whether a path answers without credentials.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote

from ..history.queries import HistoryQueryError, history_view, incidents_view
from .alert import alert_page, rule_page
from .badges import badge_page
from .config import StatusPageConfig
from .html import Page, esc, layout
from .model import Sources
from .overview import overview, public_status
from .target import target_page

__all__ = ["Page", "Sources", "StatusPageConfig", "StatusPages"]


def _parts(path: str) -> list[str]:
    return [unquote(p) for p in path.strip("/").split("/")]


class StatusPages:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def is_public(self, path: str) -> bool:
        """`/status` and the shown targets' badges, when `status_page.public` is true."""
        config = self.sources.config()
        if not config.public:
            return False
        if path == "/status":
            return True
        parts = _parts(path)
        return len(parts) >= 3 and parts[0] == "badges" and config.shows(parts[1])

    def page(self, path: str, query: str) -> Page | None:
        """The page at `path`, or None when this is not one of the status pages' paths."""
        parts = _parts(path)
        if path in ("/", "/index.html"):
            return overview(self.sources)
        if path == "/status":
            return public_status(self.sources)
        if path == "/graph":
            return rule_page(self.sources, query)
        if len(parts) == 2 and parts[0] == "targets":
            return target_page(self.sources, parts[1]) or self._missing(
                "No such target", f"No target is named {parts[1]!r} in the configuration now.")
        if len(parts) == 2 and parts[0] == "alerts":
            return alert_page(self.sources, parts[1]) or self._missing(
                "No such alert", "This alert is not pending or firing now, and no state change of it was recorded "
                "(an alert that was pending for less than a second may leave none).")
        if len(parts) >= 3 and parts[0] == "badges":
            return badge_page(self.sources, parts[1], parts[2:]) or _not_found("no such badge")
        return None

    def api(self, path: str, query: str) -> tuple[int, Any] | None:
        """`targets/<name>/history` and `incidents`: (status, data or error text); None if not ours."""
        parts = _parts(path)
        args = {k: v[-1] for k, v in parse_qs(query).items()}
        if len(parts) == 3 and parts[0] == "targets" and parts[2] == "history":
            if parts[1] not in self.sources.targets.states:
                return 404, f"no target {parts[1]!r}"
            try:
                return 200, history_view(self.sources.history, parts[1], args.get("range", "1d"), args.get("step"))
            except HistoryQueryError as exc:
                return 400, str(exc)
        if parts == ["incidents"]:
            try:
                limit = max(1, min(1000, int(args.get("limit", "100"))))
            except ValueError:
                return 400, "limit: give a whole number"
            return 200, incidents_view(self.sources.history, args.get("target"), limit)
        return None


    def _missing(self, heading: str, message: str) -> Page:
        """A 404 that is still a page (phones keep their width; the way home is one tap away)."""
        body = f"<h1>{esc(heading)}</h1><p>{esc(message)}</p><p><a href='/'>All targets</a></p>"
        return Page(404, layout(f"{heading} · {self.sources.config().title}", body, refresh=None))


def _not_found(message: str) -> Page:
    return Page(404, message + "\n", "text/plain; charset=utf-8")

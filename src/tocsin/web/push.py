"""`POST /api/v1/push/<target>?status=up|down&msg=…`: a job's heartbeat, with its own token.

A push carries its target's token as `Authorization: Bearer <token>`, so this route is
answered before the listener's basic auth (a cron job should not need the dashboard's
password, and one header cannot carry both) and before the cross-site checks: a page on
another site cannot set an Authorization header without a CORS preflight this listener
never grants. An unknown target is 404, a missing or wrong token 401 (the token compared
as a digest, in constant time); the token never reaches a log line or a response.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, unquote

from ..probes.heartbeats import STORE, HeartbeatStore

log = logging.getLogger("tocsin.web")

PREFIX = "/api/v1/push/"
_STATUSES = {"up": True, "down": False}
Answer = tuple[int, str, list[tuple[str, str]]]  # status, text, extra headers: routes.py makes the response


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def handle_push(method: str, target: str, headers: dict[str, str], store: HeartbeatStore = STORE) -> Answer:
    """Answer one push; `target` is the request target (path and query), `headers` lower-case."""
    if method != "POST":
        return 405, "a push is a POST", [("Allow", "POST")]
    path, _, query_text = target.partition("?")
    name = unquote(path.removeprefix(PREFIX))
    verdict = store.authorise(name, _bearer(headers))
    if verdict == "unknown":
        return 404, "no push target of that name", []
    if verdict == "unauthorised":
        return 401, "give the target's token as Authorization: Bearer <token>", [
            ("WWW-Authenticate", 'Bearer realm="tocsin push"')]
    query = parse_qs(query_text, keep_blank_values=True)
    status = (query.get("status") or ["up"])[-1].lower()
    if status not in _STATUSES:
        return 400, "status is up or down", []
    store.push(name, _STATUSES[status], (query.get("msg") or [""])[-1])
    log.info("push received", extra={"fields": {"target": name, "status": status}})
    return 200, "ok", []

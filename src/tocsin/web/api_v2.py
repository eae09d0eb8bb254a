"""Alertmanager's API v2 on tocsin's listener, so `amtool` and the tools built on it work unchanged.

Served: `GET/POST /api/v2/silences`, `GET/DELETE /api/v2/silence/{id}`, `GET /api/v2/alerts`
(`filter`, `active`, `silenced`, `inhibited`, `unprocessed`, `receiver`), `GET
/api/v2/alerts/groups`, `GET /api/v2/status`, `GET /api/v2/receivers`, in the JSON shapes
of Alertmanager 0.25's OpenAPI spec (api/v2/openapi.yaml); and tocsin's acknowledgements,
`POST /api/v1/alerts/<fingerprint>/ack` and `GET /api/v1/acks`. Errors are what
Alertmanager answers: a JSON string with its reason, 400 for bad input, 404 for an unknown
silence id, 500 for an expiry that failed. The listener has checked Host, cross-site
writes and basic auth before any of this runs, so every write here is authenticated.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, unquote

from .. import __version__
from ..gofmt import rfc3339_millis
from ..notify.acks import Ack
from ..notify.alert import Alert, parse_rfc3339
from ..notify.matchers import Matcher, matches_all, parse_matchers
from ..notify.muting import Muting
from ..notify.notifier import Notifier
from ..notify.silences import Silence, SilenceError, SilenceNotFound
from ..redaction import redact_json
from .auth import parse_basic
from .routes import Request, Response

log = logging.getLogger("tocsin.web")
JSON = "application/json"
_SILENCE = re.compile(r"^/api/v2/silence/([^/]+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_ACK = re.compile(r"^/api/v1/alerts/([0-9a-f]{1,64})/ack$")


def reply(status: int, value: Any) -> Response:
    return Response(status, (json.dumps(value) + "\n").encode(), JSON)


def _time(value: float) -> str:
    return rfc3339_millis(datetime.fromtimestamp(value, timezone.utc))


class SpecViolation(SilenceError):
    """Input the OpenAPI spec rejects before Alertmanager's handler runs: answered as go-swagger
    does, `{"code": …, "message": …}` with 422 (a missing field, a bad path id) or 400 (not JSON)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _bool(query: dict[str, list[str]], name: str) -> bool:
    """A boolean query parameter: true unless it says false (the spec's default is true)."""
    values = query.get(name)
    return not values or values[-1].lower() not in ("false", "0", "f")


def silence_json(s: Silence, now: float) -> dict[str, Any]:
    """A gettableSilence."""
    return {"id": s.id, "status": {"state": s.state(now)}, "updatedAt": _time(s.updated_at),
            "comment": s.comment, "createdBy": s.created_by, "endsAt": _time(s.ends_at),
            "matchers": [{"isEqual": m.op in ("=", "=~"), "isRegex": m.op in ("=~", "!~"), "name": m.name,
                          "value": m.value} for m in s.matchers],
            "startsAt": _time(s.starts_at)}


def parse_silence(body: bytes) -> Silence:
    """A postableSilence; SilenceError says what is missing or wrong."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecViolation(400, 400, f"parsing silence body failed: {exc}") from None
    if not isinstance(data, dict):
        raise SpecViolation(400, 400, "parsing silence body failed: not a JSON object")
    for key in ("matchers", "startsAt", "endsAt", "createdBy", "comment"):
        if data.get(key) is None:
            raise SpecViolation(422, 602, f"{key} in body is required")
    raw = data["matchers"]
    if not isinstance(raw, list) or not raw:
        raise SpecViolation(422, 604, "matchers in body should have at least 1 items")
    matchers = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not isinstance(m.get("value"), str) \
                or not isinstance(m.get("isRegex"), bool):
            raise SpecViolation(422, 602, f"matchers.{i}: name, value and isRegex are required")
        equal = m.get("isEqual", True) is not False
        op = ("=~" if m["isRegex"] else "=") if equal else ("!~" if m["isRegex"] else "!=")
        try:
            matchers.append(Matcher(m["name"], op, m["value"]))
        except ValueError as exc:
            raise SilenceError(f"failed to convert API silence to internal silence: {exc}") from None
    try:
        starts, ends = parse_rfc3339(str(data["startsAt"])), parse_rfc3339(str(data["endsAt"]))
    except ValueError as exc:
        raise SilenceError(f"startsAt/endsAt: {exc}") from None
    if starts is None or ends is None:
        raise SilenceError("silence invalid: invalid zero start or end timestamp")
    annotations = data.get("annotations") or {}
    return Silence(id=str(data.get("id") or ""), matchers=tuple(matchers), starts_at=starts.timestamp(),
                   ends_at=ends.timestamp(), created_by=str(data["createdBy"]), comment=str(data["comment"]),
                   annotations={str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {})


class AlertmanagerAPI:
    """The listener's handler for /api/v2/* and acknowledgements, over the daemon's stores."""

    def __init__(self, muting: Muting, notifier: Callable[[], Notifier | None], started: float | None = None) -> None:
        self.muting = muting
        self.notifier = notifier  # the current one: a reload replaces it
        self.started = time.time() if started is None else started

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not (path.startswith("/api/v2/") or _ACK.match(path) or path == "/api/v1/acks"):
            return None
        query = parse_qs(request.target.partition("?")[2], keep_blank_values=True)
        try:
            return self._route(request, path, query)
        except SpecViolation as exc:
            return reply(exc.status, {"code": exc.code, "message": str(exc)})
        except ValueError as exc:
            return reply(400, str(exc))

    def _route(self, request: Request, path: str, query: dict[str, list[str]]) -> Response:
        method = request.method
        read = method in ("GET", "HEAD")
        if path == "/api/v2/silences":
            if read:
                return self._list_silences(query)
            if method == "POST":
                return self._post_silence(request.body)
            return _not_allowed("GET, POST")
        found = _SILENCE.match(path)
        if found:
            silence_id = unquote(found.group(1))
            if not _UUID.match(silence_id):  # the spec's `format: uuid`, checked before the handler
                return reply(422, {"code": 601, "message": f"silenceID in path must be of type uuid: \"{silence_id}\""})
            if read:
                silence = self.muting.silences.get(silence_id)
                if silence is None:
                    return Response(404, b"", JSON)
                return reply(200, redact_json(silence_json(silence, time.time())))
            if method == "DELETE":
                try:
                    self.muting.silences.expire(silence_id)
                except SilenceNotFound as exc:
                    return reply(500, str(exc))
                log.info("silence expired", extra={"fields": {"silence": silence_id, "by": _user(request)}})
                return Response(200, b"", JSON)
            return _not_allowed("GET, DELETE")
        found = _ACK.match(path)
        if found:
            return self._ack(request, found.group(1)) if method == "POST" else _not_allowed("POST")
        if not read:
            return _not_allowed("GET")
        if path == "/api/v1/acks":
            return reply(200, {"status": "success", "data": [ack_json(a) for a in self.muting.acks.all()]})
        if path == "/api/v2/alerts":
            return reply(200, [alert for alert, _ in self._alerts(query)])
        if path == "/api/v2/alerts/groups":
            return reply(200, self._groups(query))
        if path == "/api/v2/status":
            return reply(200, self._status())
        if path == "/api/v2/receivers":
            notifier = self.notifier()
            names = [r.name for r in notifier.config.receivers] if notifier else []
            return reply(200, [{"name": n} for n in names])
        return reply(404, f"path {path} was not found")

    # ------------------------------------------------------------------ silences

    def _list_silences(self, query: dict[str, list[str]]) -> Response:
        filters = [m for text in query.get("filter", []) for m in parse_matchers(text)]
        now = time.time()
        order = {"active": 1, "pending": 2, "expired": 3}
        chosen = [s for s in self.muting.silences.all() if all(m in s.matchers for m in filters)]

        def key(s: Silence) -> tuple[int, float]:
            state = s.state(now)
            return order[state], (s.starts_at if state == "pending" else -s.ends_at if state == "expired" else s.ends_at)

        return reply(200, redact_json([silence_json(s, now) for s in sorted(chosen, key=key)]))

    def _post_silence(self, body: bytes) -> Response:
        silence = parse_silence(body)
        now = time.time()
        if silence.starts_at >= silence.ends_at:
            return reply(400, "Failed to create silence: start time must be before end time")
        if silence.ends_at < now:
            return reply(400, "Failed to create silence: end time can't be in the past")
        try:
            silence_id = self.muting.silences.set(silence, now)
        except SilenceNotFound as exc:
            return reply(404, str(exc))
        log.info("silence set", extra={"fields": {"silence": silence_id, "by": silence.created_by,
                                                  "matchers": ",".join(str(m) for m in silence.matchers)}})
        return reply(200, {"silenceID": silence_id})

    # ------------------------------------------------------------------ alerts

    def _alerts(self, query: dict[str, list[str]]) -> list[tuple[dict[str, Any], Alert]]:
        """The gettableAlerts the query selects (sorted by fingerprint), each with its Alert."""
        filters = [m for text in query.get("filter", []) for m in parse_matchers(text)]
        try:
            receiver = re.compile(query["receiver"][-1]) if query.get("receiver") and query["receiver"][-1] else None
        except re.error as exc:
            raise ValueError(f"receiver: {exc}") from None
        show = {name: _bool(query, name) for name in ("active", "silenced", "inhibited", "unprocessed")}
        notifier = self.notifier()
        if notifier is None:
            return []
        tracked = [t for t in notifier.dispatcher.tracked() if t[0].firing]
        firing = [a for a, _, _ in tracked]
        rules = notifier.dispatcher.inhibitor.rules
        now = time.time()
        out = []
        for alert, seen, receivers in sorted(tracked, key=lambda t: t[0].fingerprint):
            if filters and not matches_all(filters, alert.labels):
                continue
            if receiver is not None and not any(receiver.fullmatch(r) for r in receivers):
                continue
            silenced, acked = self.muting.status(alert, now)
            inhibited = _inhibited_by(alert, firing, rules)
            state = "suppressed" if silenced or acked or inhibited else "active"
            if (state == "active" and not show["active"]) or ((silenced or acked) and not show["silenced"]) \
                    or (inhibited and not show["inhibited"]):
                continue
            out.append((redact_json({"annotations": dict(alert.annotations), "endsAt": rfc3339_millis(alert.ends_at),
                         "fingerprint": alert.fingerprint, "receivers": [{"name": r} for r in sorted(receivers)],
                         "startsAt": rfc3339_millis(alert.starts_at), "status": {
                             "inhibitedBy": inhibited, "silencedBy": silenced + acked, "state": state},
                         "updatedAt": _time(seen), "generatorURL": alert.generator_url,
                         "labels": dict(alert.labels)}), alert))
        return out

    def _groups(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        notifier = self.notifier()
        if notifier is None:
            return []
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for view, alert in self._alerts(query):
            for route in notifier.dispatcher.root.match(alert.labels):
                labels = route.group_labels(alert.labels)
                group = groups.setdefault((route.receiver, route.group_key(labels)), {
                    "alerts": [], "labels": labels, "receiver": {"name": route.receiver}})
                group["alerts"].append(view)
        return [groups[k] for k in sorted(groups)]

    def _status(self) -> dict[str, Any]:
        return {"cluster": {"peers": [], "status": "disabled"},
                "config": {"original": ""},  # tocsin's configuration holds secrets: not served
                "uptime": _time(self.started),
                "versionInfo": {"branch": "", "buildDate": "", "buildUser": "", "goVersion": "",
                                "revision": "", "version": f"tocsin-{__version__}"}}

    # ------------------------------------------------------------------ acknowledgements

    def _ack(self, request: Request, fp: str) -> Response:
        try:
            data = json.loads(request.body) if request.body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return reply(400, {"status": "error", "errorType": "bad_data", "error": f"body: {exc}"})
        if not isinstance(data, dict):
            return reply(400, {"status": "error", "errorType": "bad_data", "error": "body: not a JSON object"})
        notifier = self.notifier()
        alert = next((a for a, _, _ in (notifier.dispatcher.tracked() if notifier else [])
                      if a.fingerprint == fp and a.firing), None)
        if alert is None:
            return reply(404, {"status": "error", "errorType": "not_found", "error": f"no firing alert {fp}"})
        ack = self.muting.acks.acknowledge(alert, str(data.get("createdBy") or _user(request) or "unknown"),
                                           str(data.get("comment") or ""))
        log.info("alert acknowledged", extra={"fields": {"fingerprint": fp, "by": ack.created_by, "ack": ack.id}})
        return reply(200, {"status": "success", "data": ack_json(ack)})


def ack_json(a: Ack) -> dict[str, Any]:
    return redact_json({"id": a.id, "fingerprint": a.fingerprint, "labels": a.labels,
                      "alertStartsAt": _time(a.alert_starts_at), "createdBy": a.created_by, "comment": a.comment,
                      "createdAt": _time(a.created_at), "endedAt": _time(a.ended_at) if a.ended_at else None,
                      "endReason": a.end_reason or None, "active": a.active})


def _inhibited_by(alert: Alert, firing: list[Alert], rules: list[tuple[list[Matcher], list[Matcher], tuple]]) -> list[str]:
    """The fingerprints of the firing alerts that inhibit `alert` (Alertmanager's inhibitedBy)."""
    out = set()
    for source, target, equal in rules:
        if not matches_all(target, alert.labels):
            continue
        for other in firing:
            if other.fingerprint != alert.fingerprint and matches_all(source, other.labels) and all(
                    other.labels.get(n, "") == alert.labels.get(n, "") for n in equal):
                out.add(other.fingerprint)
    return sorted(out)


def _user(request: Request) -> str:
    credentials = parse_basic(request.headers.get("authorization"))
    return credentials[0] if credentials else ""


def _not_allowed(allow: str) -> Response:
    return Response(405, json.dumps(f"method not allowed; use {allow}").encode(), JSON, [("Allow", allow)])

"""The silence and acknowledgement stores: Alertmanager 0.25's rules for set/expire, persistence,
matching with the routing tree's matchers; and the API v2 handler's answers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tocsin.notify.acks import AckStore
from tocsin.notify.alert import Alert
from tocsin.notify.matchers import Matcher
from tocsin.notify.muting import Muting, open_muting, silencing_overview
from tocsin.notify.silences import Silence, SilenceError, SilenceNotFound, SilenceStore
from tocsin.web.api_v2 import AlertmanagerAPI, parse_silence
from tocsin.web.routes import Request

NOW = 1_800_000_000.0


def _silence(matchers=(("alertname", "=", "Down"),), starts=NOW, ends=NOW + 3600, sid="") -> Silence:
    return Silence(id=sid, matchers=tuple(Matcher(*m) for m in matchers), starts_at=starts, ends_at=ends,
                   created_by="alice", comment="maintenance")


def test_create_update_in_place_and_replace(tmp_path):
    store = SilenceStore(str(tmp_path))
    sid = store.set(_silence(), now=NOW)
    assert store.get(sid).state(NOW + 1) == "active"
    # Same matchers, same start, later end: updated in place (same id).
    assert store.set(_silence(sid=sid, ends=NOW + 7200), now=NOW + 10) == sid
    assert store.get(sid).ends_at == NOW + 7200
    # Other matchers: the old one expires, a new one takes over.
    new = store.set(_silence((("alertname", "=", "Other"),), sid=sid), now=NOW + 20)
    assert new != sid and store.get(sid).state(NOW + 21) == "expired"
    with pytest.raises(SilenceNotFound):
        store.set(_silence(sid="6a1b3c7e-0000-4000-8000-000000000000"), now=NOW)
    # A start in the past becomes now, as Alertmanager does.
    assert store.get(new).starts_at == NOW + 20


def test_expire_is_idempotent_and_ends_a_pending_silence(tmp_path):
    store = SilenceStore(str(tmp_path))
    pending = store.set(_silence(starts=NOW + 600), now=NOW)
    assert store.get(pending).state(NOW) == "pending"
    store.expire(pending, now=NOW + 1)
    assert store.get(pending).state(NOW + 2) == "expired" and store.get(pending).starts_at == NOW + 1
    store.expire(pending, now=NOW + 5)  # already expired: nothing changes
    assert store.get(pending).ends_at == NOW + 1
    with pytest.raises(SilenceNotFound):
        store.expire("nope")


@pytest.mark.parametrize("matchers,reason", [
    ((), "at least one matcher"),
    ((("job", "=~", ".*"),), "must not match the empty string"),
    ((("job", "!=", "x"),), "must not match the empty string"),
    ((("1job", "=", "x"),), "invalid label name"),
])
def test_invalid_silences_are_refused(tmp_path, matchers, reason):
    with pytest.raises(SilenceError, match=reason):
        SilenceStore(str(tmp_path)).set(_silence(matchers), now=NOW)


def test_silences_and_acks_survive_reopening(tmp_path):
    store = SilenceStore(str(tmp_path))
    sid = store.set(_silence((("alertname", "=", "Down"), ("target", "=~", "db|web"))), now=NOW)
    acks = AckStore(str(tmp_path))
    alert = Alert({"alertname": "Down", "target": "db"}, starts_at=datetime.fromtimestamp(NOW, timezone.utc))
    ack = acks.acknowledge(alert, "bob", "on it", now=NOW)
    store.close()
    acks.close()
    reopened = SilenceStore(str(tmp_path))
    assert reopened.silenced_by({"alertname": "Down", "target": "web"}, NOW + 1) == [sid]
    assert reopened.silenced_by({"alertname": "Down", "target": "mail"}, NOW + 1) == []
    assert AckStore(str(tmp_path)).acked_by(alert) == [ack.id]
    assert (tmp_path / "silences.db").stat().st_mode & 0o077 == 0


def test_an_ack_ends_when_its_firing_does(tmp_path):
    muting = open_muting(str(tmp_path))
    start = datetime.fromtimestamp(NOW, timezone.utc)
    alert = Alert({"alertname": "Down", "target": "db"}, starts_at=start)
    muting.acks.acknowledge(alert, "bob", "on it", now=NOW)
    muted = muting.combine(lambda _labels: False, [alert])
    assert muted(alert.labels) and not muted({"alertname": "Down", "target": "web"})
    # The same alert firing again (another startsAt) is another firing: not acknowledged.
    again = Alert(alert.labels, starts_at=start + timedelta(minutes=10))
    assert not muting.combine(lambda _labels: False, [again])(alert.labels)
    (ended,) = muting.acks.all()
    assert ended.end_reason == "fired again" and not ended.active
    overview = silencing_overview(muting, NOW)
    assert overview["acks"][0]["created_by"] == "bob" and overview["silences"] == []


def test_an_unknown_alert_ends_no_ack(tmp_path):
    muting = open_muting(str(tmp_path))
    alert = Alert({"alertname": "Down"}, starts_at=datetime.fromtimestamp(NOW, timezone.utc))
    muting.acks.acknowledge(alert, "bob", "", now=NOW)
    muting.combine(lambda _labels: False, [])  # just after a start: the rules have not sent it yet
    assert [a.active for a in muting.acks.all()] == [True]


def _api(tmp_path) -> tuple[AlertmanagerAPI, Muting]:
    muting = open_muting(str(tmp_path))
    return AlertmanagerAPI(muting, lambda: None, started=NOW), muting


def _request(method: str, target: str, body: object = None) -> Request:
    return Request(method, target, {"host": "127.0.0.1"}, b"" if body is None else json.dumps(body).encode())


def test_api_v2_shapes_and_errors(tmp_path):
    api, muting = _api(tmp_path)
    body = {"matchers": [{"name": "alertname", "value": "Down", "isRegex": False},
                         {"name": "env", "value": "prod|stage", "isRegex": True, "isEqual": False}],
            "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00.000Z",
            "createdBy": "alice", "comment": "why"}
    created = api.handle(_request("POST", "/api/v2/silences", body))
    assert created.status == 200
    sid = json.loads(created.body)["silenceID"]
    got = json.loads(api.handle(_request("GET", f"/api/v2/silence/{sid}")).body)
    assert set(got) == {"id", "status", "updatedAt", "comment", "createdBy", "endsAt", "matchers", "startsAt"}
    assert got["matchers"][1] == {"isEqual": False, "isRegex": True, "name": "env", "value": "prod|stage"}
    assert got["endsAt"] == "2099-01-01T00:00:00.000Z" and got["status"] == {"state": "active"}
    listed = json.loads(api.handle(_request("GET", '/api/v2/silences?filter=env!~"prod|stage"')).body)
    assert [s["id"] for s in listed] == [sid]
    assert json.loads(api.handle(_request("GET", "/api/v2/silences?filter=env=prod")).body) == []
    assert api.handle(_request("GET", "/api/v2/silence/0b6a5d2c-0000-4000-8000-000000000000")).status == 404
    bad = api.handle(_request("POST", "/api/v2/silences", {**body, "endsAt": "2020-01-02T00:00:00Z"}))
    assert bad.status == 400 and "end time can't be in the past" in json.loads(bad.body)
    missing = api.handle(_request("POST", "/api/v2/silences", {**body, "id": "0b6a5d2c-0000-4000-8000-000000000000"}))
    assert missing.status == 404
    assert api.handle(_request("DELETE", "/api/v2/silence/0b6a5d2c-0000-4000-8000-000000000000")).status == 500
    not_uuid = api.handle(_request("DELETE", "/api/v2/silence/nope"))
    assert not_uuid.status == 422 and json.loads(not_uuid.body)["code"] == 601
    missing_field = api.handle(_request("POST", "/api/v2/silences", {**body, "createdBy": None}))
    assert (missing_field.status, json.loads(missing_field.body)) == (
        422, {"code": 602, "message": "createdBy in body is required"})
    assert api.handle(_request("DELETE", f"/api/v2/silence/{sid}")).status == 200
    status = json.loads(api.handle(_request("GET", "/api/v2/status")).body)
    assert set(status) == {"cluster", "config", "uptime", "versionInfo"} and status["cluster"]["status"] == "disabled"
    assert json.loads(api.handle(_request("GET", "/api/v2/alerts?active=false")).body) == []
    assert api.handle(_request("GET", "/api/v2/alerts?receiver=(")).status == 400
    assert api.handle(_request("GET", "/api/v1/targets")) is None  # not its endpoint
    assert api.handle(_request("PUT", "/api/v2/silences")).status == 405


def test_parse_silence_names_what_is_missing():
    with pytest.raises(SilenceError, match="createdBy in body is required"):
        parse_silence(json.dumps({"matchers": [{"name": "a", "value": "b", "isRegex": False}],
                                  "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                                  "comment": ""}).encode())
    with pytest.raises(SilenceError, match="invalid regular expression"):
        parse_silence(json.dumps({"matchers": [{"name": "a", "value": "(", "isRegex": True}],
                                  "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                                  "createdBy": "x", "comment": ""}).encode())


def test_expired_silences_are_forgotten_after_the_retention(tmp_path):
    from tocsin.notify.silences import RETENTION

    store = SilenceStore(str(tmp_path))
    sid = store.set(_silence(), now=NOW)
    store.expire(sid, now=NOW + 10)
    store.gc(now=NOW + 10 + RETENTION - 1)
    assert store.get(sid) is not None
    store.gc(now=NOW + 10 + RETENTION + 1)
    assert store.get(sid) is None and SilenceStore(str(tmp_path)).get(sid) is None

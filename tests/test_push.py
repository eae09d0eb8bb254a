"""Push targets with a real daemon: heartbeats in, up/down out, the last push kept across a restart."""

from __future__ import annotations

import hashlib

import pytest
import requests

from conftest import scaled, wait_for
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.probes.heartbeats import HeartbeatStore, token_digest
from tocsin.web.push import handle_push

TOKEN = "s3cret-push-token-0123456789"
CONFIG = """
global:
  listen_address: "127.0.0.1:{port}"
  state_dir: "{dir}/state"
targets:
  - {name: backup, interval: 1s, push: {token_file: "{dir}/token", grace: 1s}}
  - {name: other, interval: 5s, tcp: {address: "127.0.0.1:1"}}
"""


def _push(daemon, target: str = "backup", token: str | None = TOKEN, query: str = "", method: str = "POST"):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(method, f"{daemon.url}/api/v1/push/{target}{query}", headers=headers,
                            timeout=scaled(5))


def _success(daemon) -> float | None:
    return daemon.sample("probe_success", target="backup")


def test_push_target_goes_down_on_a_missed_heartbeat_and_survives_a_restart(daemon_factory, tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    daemon = daemon_factory(CONFIG)

    # Who may push: the holder of the token.
    assert _push(daemon, token=None).status_code == 401
    wrong = _push(daemon, token="wrong")
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert _push(daemon, target="nosuch").status_code == 404
    assert _push(daemon, target="other").status_code == 404  # not a push target
    assert _push(daemon, method="GET").status_code == 405
    assert _push(daemon, query="?status=sideways").status_code == 400

    assert _push(daemon).status_code == 200
    wait_for(lambda: _success(daemon) == 1 and daemon.sample("probe_push_last_timestamp_seconds", target="backup"),
             timeout=5, what="the pushed target up")
    # No push for longer than interval + grace: down, for the reason "push".
    wait_for(lambda: _success(daemon) == 0, timeout=6, what="the target down after a missed heartbeat")
    assert daemon.sample("tocsin_probe_failure_reason", target="backup", reason="push") == 1
    # The next push brings it up again.
    assert _push(daemon, query="?status=up").status_code == 200
    wait_for(lambda: _success(daemon) == 1, timeout=5, what="the target up on the next push")
    # A job that reports down is down at once, with its message.
    assert _push(daemon, query="?status=down&msg=disk%20full").status_code == 200
    wait_for(lambda: _success(daemon) == 0, timeout=5, what="the target down on a down push")
    backup = next(t for t in daemon.targets() if t["name"] == "backup")
    assert "the job reported down: disk full" in str(backup), backup
    pushed_at = daemon.sample("probe_push_last_timestamp_seconds", target="backup")

    # A restart keeps the last push: the down report stands (a fresh start would give it a grace period).
    assert daemon.stop() == 0
    assert (tmp_path / "state" / "heartbeats.json").exists()
    daemon.start()
    wait_for(lambda: _success(daemon) is not None, timeout=5, what="the first probe after the restart")
    assert _success(daemon) == 0
    assert daemon.sample("probe_push_last_timestamp_seconds", target="backup") == pushed_at
    assert _push(daemon).status_code == 200
    wait_for(lambda: _success(daemon) == 1, timeout=5, what="the target up on a push after the restart")
    assert TOKEN not in daemon.output()


def test_store_compares_tokens_and_keeps_only_configured_targets(tmp_path):
    store = HeartbeatStore()
    store.open(tmp_path)
    store.configure({"job": token_digest("right")})
    assert store.authorise("job", "right") == "ok"
    assert store.authorise("job", "righ") == "unauthorised"
    assert store.authorise("job", None) == "unauthorised"
    assert store.authorise("gone", "right") == "unknown"
    assert handle_push("POST", "/api/v1/push/job?msg=x", {"authorization": "bearer right"}, store)[0] == 200
    assert store.last("job") is not None and store.last("job").up
    reopened = HeartbeatStore()
    reopened.open(tmp_path)
    assert reopened.last("job") == store.last("job")


def test_push_needs_a_token():
    with pytest.raises(ConfigError, match="give token_file"):
        parse_config({"targets": [{"name": "job", "push": {"grace": "10s"}}]}, "test")


def test_push_takes_its_token_not_the_listeners_basic_auth():
    """With basic auth on the listener, a push needs its bearer token only; the password is no token."""
    from tocsin.probes import heartbeats
    from tocsin.web.auth import Authenticator
    from tocsin.web.origin import HostPolicy
    from tocsin.web.routes import Request, Router

    class _NothingPublic:
        def is_public(self, _path: str) -> bool:
            return False

    router = Router(_NothingPublic(), None, Authenticator({"admin": "sha256:" + hashlib.sha256(b"pw").hexdigest()}),  # type: ignore[arg-type]
                    HostPolicy("127.0.0.1", []))
    heartbeats.STORE.configure({"job": token_digest("tok")})
    try:
        def post(authorization: str, content_type: str = "") -> int:
            headers = {"host": "127.0.0.1", "authorization": authorization}
            if content_type:
                headers["content-type"] = content_type
            return router.handle(Request("POST", "/api/v1/push/job?status=up", headers)).status

        assert post("Bearer tok") == 200
        assert post("Bearer tok", "application/x-www-form-urlencoded") == 200  # curl -d: still a push
        assert post("Basic YWRtaW46cHc=") == 401  # admin:pw
        assert router.handle(Request("GET", "/metrics", {"host": "127.0.0.1"})).status == 401  # the rest still asks
    finally:
        heartbeats.STORE.configure({})


def test_a_push_shows_at_once_even_with_a_long_interval(daemon_factory, tmp_path):
    # A nightly job: probed on its schedule once an hour, yet a push is reflected at once.
    (tmp_path / "token").write_text(TOKEN)
    daemon = daemon_factory(CONFIG.replace("interval: 1s, push:", "interval: 1h, push:"))
    assert _push(daemon).status_code == 200
    wait_for(lambda: _success(daemon) == 1, timeout=3, what="the push reflected before the hourly probe")
    assert _push(daemon, query="?status=down&msg=failed").status_code == 200
    wait_for(lambda: _success(daemon) == 0, timeout=3, what="the down push reflected at once")


def test_watch_probes_on_a_push_and_when_the_deadline_passes(tmp_path):
    import asyncio
    import threading
    import time

    from tocsin.probes.push import PushWatch

    targets = parse_config({"targets": [{"name": "job", "interval": "1s",
                                         "push": {"token": "t0ken", "grace": "500ms"}}]}, "test").targets
    store = HeartbeatStore()
    runs: list[tuple[str, float]] = []

    async def scenario() -> None:
        watch = PushWatch(asyncio.get_running_loop(), lambda name: runs.append((name, time.monotonic())), store)
        watch.configure(str(tmp_path), targets)
        await asyncio.sleep(0.05)
        assert runs == []  # nothing due yet: the start counts as the last push
        pushed = time.monotonic()
        threading.Thread(target=store.push, args=("job", True)).start()  # the listener's thread
        await asyncio.sleep(min(scaled(0.2), 1.0))
        assert [name for name, _ in runs] == ["job"] and runs[0][1] - pushed < 1.0, runs
        await asyncio.sleep(1.5 - (time.monotonic() - pushed) + scaled(0.3))
        assert len(runs) == 2, runs  # once more, just past push + interval + grace
        assert 1.5 <= runs[1][1] - pushed < 1.5 + scaled(0.3)
        watch.close()

    asyncio.run(scenario())

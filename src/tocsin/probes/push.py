"""Push targets: jobs that report to tocsin (`POST /api/v1/push/<target>`) instead of being probed.

The probe of a push target asks no one: it reads the target's last heartbeat
(`heartbeats.STORE`) and succeeds when one arrived within the target's `interval` plus
`grace` and said `up`. So a push target is up, down, counted, graphed and alerted on like
any other: the same probe_success, the same rules. A target that never pushed is given
one interval plus grace from the daemon's start before it is down — a new target must
not page before its job had its first chance to run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import SecretStr, model_validator

from ..fields import Duration, Model, SecretFromFile
from ..gofmt import rfc3339_millis
from .heartbeats import STORE, HeartbeatStore, token_digest
from .kind import ProbeKind
from .result import Attempt


class PushConfig(Model):
    token: SecretStr | None = None  # what the job sends as `Authorization: Bearer <token>`
    token_file: SecretFromFile | None = None  # the token, read from this file
    grace: Duration = 30.0  # down when no push arrived within interval + grace

    @model_validator(mode="after")
    def _token_given(self) -> "PushConfig":
        token = self.secret("token")
        if not token or not token.strip():
            raise ValueError("give token_file (or token): the job sends it as `Authorization: Bearer <token>`")
        return self


@dataclass(frozen=True, slots=True)
class PushSettings:
    name: str  # the target's, which the job pushes to
    interval: float
    grace: float
    digest: bytes  # of the token; the token itself is not kept here

    def __repr__(self) -> str:
        return f"PushSettings({self.name!r}, interval={self.interval}, grace={self.grace})"


def _settings(get: Any) -> PushSettings:
    options: PushConfig = get("push")
    return PushSettings(get("name"), get("interval"), options.grace, token_digest(options.secret("token") or ""))


async def attempt(settings: PushSettings, _deadline: float, _correlation_id: str) -> Attempt:
    result = Attempt(False)
    now = time.time()
    allowed = settings.interval + settings.grace
    beat = STORE.last(settings.name)
    if beat is None:
        if now - STORE.opened_at <= allowed:
            result.success = True
            result.message = "no push yet; waiting for the first"
        else:
            result.reason, result.message = "push", f"no push received (expected every {allowed:g}s, grace included)"
        return result
    result.facts["push_last_timestamp_seconds"] = beat.at
    age = now - beat.at
    if age > allowed:
        result.reason = "push"
        result.message = f"no push since {rfc3339_millis(datetime.fromtimestamp(beat.at, timezone.utc))} ({age:.0f}s ago; expected every {allowed:g}s, grace included)"
    elif not beat.up:
        result.reason, result.message = "push", f"the job reported down: {beat.message}" if beat.message else \
            "the job reported down"
    else:
        result.success = True
    return result


class PushWatch:
    """Probes a push target the moment its state can change, not only on its schedule.

    A push target's schedule is its `interval`, which for a nightly job is a day: checked
    only then, a push would show a day late and a missed one up to a day after its
    deadline. So a push asks the scheduler for a probe at once, and each target has a timer
    for the moment its last push (or the start, if it never pushed) becomes too old.
    Lives on the event loop; pushes arrive on the listener's threads and are handed over.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, run_soon: Callable[[str], None],
                 store: HeartbeatStore = STORE) -> None:
        self._loop, self._run_soon, self._store = loop, run_soon, store
        self._allowed: dict[str, float] = {}  # push target -> interval + grace
        self._timers: dict[str, asyncio.TimerHandle] = {}
        store.subscribe(self._from_listener)

    def configure(self, state_dir: str, targets: Iterable[Any]) -> None:
        """The push targets of the configuration now loaded, and where their heartbeats are kept."""
        self._store.open(state_dir)
        settings = [target.probe.settings for target in targets if target.kind == "push"]
        self._store.configure({push.name: push.digest for push in settings})
        self._allowed = {push.name: push.interval + push.grace for push in settings}
        for name in [name for name in self._timers if name not in self._allowed]:
            self._timers.pop(name).cancel()
        for name in self._allowed:
            self._arm(name)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _from_listener(self, name: str) -> None:
        try:
            self._loop.call_soon_threadsafe(self._pushed, name)
        except RuntimeError:  # the loop is closed: the daemon is stopping
            pass

    def _pushed(self, name: str) -> None:
        if name in self._allowed:
            self._run_soon(name)
            self._arm(name)

    def _arm(self, name: str) -> None:
        beat = self._store.last(name)
        deadline = (beat.at if beat else self._store.opened_at) + self._allowed[name]
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        delay = deadline - time.time() + 0.05  # just past it: the probe must see the push as too old
        if delay > 0:
            self._timers[name] = self._loop.call_later(delay, self._run_soon, name)


def _target_keys(_endpoint: str) -> dict:
    raise ValueError("a push target is not probed: its job pushes to POST /api/v1/push/<target>")


KIND = ProbeKind(
    name="push", key="push", key_text="push", target_fields={"push": (PushConfig | None, None)},
    settings=_settings, attempt=attempt, endpoint=lambda settings: f"/api/v1/push/{settings.name}",
    target_keys=_target_keys,
    families={"probe_push_last_timestamp_seconds": ("gauge", "When the target's job last pushed (unix time).")},
    optional_facts=("push_last_timestamp_seconds",),
)

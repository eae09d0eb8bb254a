"""What the operator muted by hand: silences and acknowledgements, as one question to the dispatcher.

The dispatcher asks at each group flush, as Alertmanager's silence stage does, so a muted
alert is simply left out of what its group sends; when the silence ends (or the
acknowledged firing resolves) while the alert still fires, the group's next flush finds a
firing alert its receiver was not told about and notifies it. Both stores outlive a reload
of the alerting configuration (the daemon builds them once), so a reload keeps every
silence and acknowledgement.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge

from ..statedb import StateWriteError
from .acks import AckStore
from .alert import Alert, fingerprint
from .silences import Silence, SilenceStore

log = logging.getLogger("tocsin.notify")

Muted = Callable[[dict[str, str]], bool]


@dataclass
class Muting:
    silences: SilenceStore
    acks: AckStore

    def combine(self, inner: Muted, alerts: Iterable[Alert]) -> Muted:
        """`inner` (inhibition) or muted by a silence or an acknowledgement, for the alerts
        known now (`alerts`, which also end the acknowledgements whose firing is over)."""
        known = list(alerts)
        try:
            self.acks.settle(known)
        except StateWriteError as exc:  # the acknowledgement ends in memory at the next try
            log.error("cannot record the end of an acknowledgement: %s", exc.reason)
        # Most silences name an alert (`alertname="X"`): only alerts of that name are tried
        # against them, so a flush of 10 000 alerts does not try each against every silence.
        by_name: dict[str, list[Silence]] = {}
        general: list[Silence] = []
        for silence in self.silences.active():
            name = next((m.value for m in silence.matchers if m.name == "alertname" and m.op == "="), None)
            (general if name is None else by_name.setdefault(name, [])).append(silence)
        acked = {a.fingerprint: a for a in self.acks.active()}
        by_fp = {a.fingerprint: a for a in known}

        def muted(labels: dict[str, str]) -> bool:
            if inner(labels):
                return True
            named = by_name.get(labels.get("alertname", ""), ())
            if any(s.matches(labels) for s in named) or any(s.matches(labels) for s in general):
                return True
            if not acked:
                return False
            fp = fingerprint(labels)
            ack, alert = acked.get(fp), by_fp.get(fp)
            return ack is not None and alert is not None and ack.covers(alert)

        return muted

    def status(self, alert: Alert, now: float | None = None) -> tuple[list[str], list[str]]:
        """(ids of the silences that mute `alert` now, ids of the acknowledgements that do)."""
        now = time.time() if now is None else now
        return self.silences.silenced_by(alert.labels, now), self.acks.acked_by(alert)

    def close(self) -> None:
        self.silences.close()
        self.acks.close()


def open_muting(state_dir: str) -> Muting:
    """The silences and acknowledgements stored in `state_dir` (silences.db)."""
    try:
        return Muting(SilenceStore(state_dir), AckStore(state_dir))
    except sqlite3.Error as exc:  # a damaged file: start-up fails with the file named, as for other I/O errors
        raise OSError(f"cannot open {os.path.join(state_dir, 'silences.db')}: {exc}") from exc


def silencing_overview(muting: Muting, now: float | None = None) -> dict[str, list[dict[str, object]]]:
    """What a page shows of the silences and acknowledgements: who, why, until when.

    `silences`: the active and pending ones, soonest end first; `acks`: the active ones, then
    those that ended, newest first. Times are unix seconds (the page formats them)."""
    now = time.time() if now is None else now
    silences = sorted((s for s in muting.silences.all() if s.state(now) != "expired"), key=lambda s: s.ends_at)
    acks = sorted(muting.acks.all(), key=lambda a: (not a.active, -a.created_at))
    return {
        "silences": [{"id": s.id, "state": s.state(now), "matchers": ", ".join(str(m) for m in s.matchers),
                      "created_by": s.created_by, "comment": s.comment, "starts_at": s.starts_at,
                      "ends_at": s.ends_at} for s in silences],
        "acks": [{"id": a.id, "fingerprint": a.fingerprint, "labels": dict(a.labels), "created_by": a.created_by,
                  "comment": a.comment, "created_at": a.created_at, "active": a.active, "ended_at": a.ended_at,
                  "end_reason": a.end_reason} for a in acks],
    }


def register_metrics(muting: Muting, registry: CollectorRegistry) -> None:
    """`tocsin_silences{state}` (as Alertmanager's `alertmanager_silences`) and
    `tocsin_alerts_acknowledged`, read from the stores at each scrape."""
    silences = Gauge("tocsin_silences", "Silences, by state (active, pending, expired).", ["state"], registry=registry)

    def counter(state: str) -> Callable[[], float]:
        return lambda: float(sum(1 for s in muting.silences.all() if s.state(time.time()) == state))

    for state in ("active", "pending", "expired"):
        silences.labels(state).set_function(counter(state))
    Gauge("tocsin_alerts_acknowledged", "Acknowledgements in force (alerts quiet until they resolve).",
          registry=registry).set_function(lambda: float(len(muting.acks.active())))

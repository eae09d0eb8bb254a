"""The notifier in force, and the ones a reload replaced that still deliver what they owe.

A reload that changes `alerting` builds a new notifier; the old one resolves, at its
receivers, what the new routing no longer sends there and keeps delivering to receivers
the new configuration lacks until its lanes are empty. Kept apart from the daemon so that
the handover has one home.
"""

from __future__ import annotations

import os

from ..config import LoadedConfig
from .alert import Alert
from .metrics import NotifyMetrics
from .muting import Muting
from .notifier import Notifier


class NotifierSlot:
    def __init__(self, metrics: NotifyMetrics) -> None:
        self.metrics = metrics
        # None without an `alerting` section (firing and resolved alerts are then only logged).
        self.current: Notifier | None = None
        self.retired: list[Notifier] = []  # replaced by a reload, still delivering to removed receivers
        self.muting: Muting | None = None  # silences and acknowledgements, shared by every notifier

    def rebuild(self, loaded: LoadedConfig) -> None:
        """(Re)build the notifier for `loaded`; the outbox on disk carries over, so nothing is lost.

        The new notifier is built first (a state_dir it cannot open fails the reload and leaves
        the old one running) and takes the submissions from then on. The old one hands it the
        alerts it knew and resolves at once, at the receivers, what the new routing no longer
        sends there; its lanes of receivers that the new configuration lacks deliver that, then
        end (until then it is kept in `_retired`)."""
        alerting = loaded.config.alerting
        new = None
        if alerting is not None:
            new = Notifier(alerting, state_dir=loaded.global_.state_dir,
                           external_labels=loaded.global_.external_labels, metrics=self.metrics,
                           external_url=f"http://{loaded.global_.listen_address}", muting=self.muting)
        old, self.current = self.current, new
        names = {r.name for r in alerting.receivers} if alerting is not None else set()
        for done in [n for n in self.retired if not n.running()]:
            done.stop()
            self.retired.remove(done)
        for retired in self.retired:
            if new is not None and same_outbox(retired, new):
                retired.release(names)  # the new notifier delivers these channels
        if old is not None:
            old.retire(alerting, names if new is not None and same_outbox(old, new) else set(), heir=new)
            if old.running():
                self.retired.append(old)
            else:
                old.stop()
        if new is not None:
            new.start(frozenset().union(*(n.draining() for n in self.retired if same_outbox(n, new))))

    def stop(self) -> None:
        for notifier in [self.current, *self.retired]:
            if notifier is not None:
                notifier.stop(timeout=5)
        self.current, self.retired = None, []

    def submit(self, alerts: list[Alert]) -> None:
        notifier = self.current
        if notifier is not None:
            notifier.submit(alerts)

    def problems(self) -> list[str]:
        """Why delivery is not doing its job (stalled lanes), for /-/healthy."""
        return [problem for notifier in [self.current, *self.retired] if notifier is not None
                for problem in notifier.problems()]


def same_outbox(a: Notifier, b: Notifier) -> bool:
    return os.path.realpath(a.outbox.path) == os.path.realpath(b.outbox.path)


def alerting_of(loaded: LoadedConfig) -> tuple:
    """What the notifier is built from: a change in any of it rebuilds the notifier on reload."""
    g = loaded.global_
    return (loaded.config.alerting, g.state_dir, tuple(sorted(g.external_labels.items())), g.listen_address)

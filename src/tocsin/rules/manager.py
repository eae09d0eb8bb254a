"""The daemon's one handle on alert rules: load, schedule, evaluate, persist, export.

    rules = RuleManager(loaded)                 # parses rule files; rules.errors lists problems
    probe_metrics.subscribe(rules.ingest)       # samples flow into the bounded store
    rules.start()                               # restore persisted state, start group loops
    rules.reload(new_loaded) -> errors          # per file: a broken file keeps its last good version
    rules.render_metrics()                      # ALERTS, ALERTS_FOR_STATE, tocsin_rule_*
    rules.active_alerts()                       # for /api/v1/alerts
    RuleManager(..., on_alert_change=hook)      # hook(list of notify Alerts), sent as sending.py says

Each group runs in its own asyncio task on the daemon's loop, on a fixed grid (offset by a
hash of the group key, like Prometheus, so groups do not all start at once); the CPU work
runs on a few worker threads (workers.py) so it never stalls probes and one expensive group
cannot starve the others. An evaluation that overruns its interval makes the loop skip the
ticks it missed and count them. The grid is wall time; a step of the wall clock moves it
and everything stored by the step (frame.py), and wakes the loops so none sleeps through it.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..clock import ClockWatch
from ..config import LoadedConfig
from ..gofmt import format_label_set
from ..notify.alert import Alert as NotifyAlert
from ..promql import DEFAULT_LOOKBACK_MS
from ..promql.labels import METRIC_NAME
from ..promql.matchers import Matcher
from ..statedb import StateWriteError
from . import exposition
from .alerting import FIRING, INACTIVE, AlertingRule
from .alerting import Alert as AlertingAlert
from .frame import TimeFrame, shift_alert_timers
from .group import Group
from .persist import AlertStateDB
from .sending import to_notify_alert
from .sources import RuleSources
from .store import SampleStore, build_interest
from .workers import DEFAULT_WORKERS, EvaluationPool

log = logging.getLogger("tocsin.rules")

_ALERT_SERIES = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
_FREEZE_MIN_SERIES = 20_000  # below this, full collections are cheap (see _settle_heap)

AlertHook = Callable[[list[NotifyAlert]], None]


def _offset(key: str, interval: float) -> float:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") / 2**64) * interval


class RuleManager:
    def __init__(self, loaded: LoadedConfig, on_alert_change: AlertHook | None = None,
                 external_url: str = "", clock: ClockWatch | None = None, workers: int = DEFAULT_WORKERS) -> None:
        self.on_alert_change = on_alert_change
        self.external_url = external_url
        self.store = SampleStore()
        self.groups: dict[str, Group] = {}
        self.sources = RuleSources()
        self._loaded = loaded
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._task_intervals: dict[str, int] = {}  # the interval each group's task runs at (ms)
        self.pool = EvaluationPool(workers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.clock = clock
        self.frame = TimeFrame(self._shift_stored_times)
        self._stepped: asyncio.Event | None = None  # set (and replaced) when the clock steps
        if clock is not None:
            clock.subscribe(self._on_clock_step)
        self._state_db: AlertStateDB | None = None
        self._saved_signature: dict[str, Any] = {}
        self._frozen_series = 0
        # The first evaluations wait until every target reported once (bounded): restored
        # alerts must be judged on fresh samples, not on an empty store.
        self._unreported = {t.name for t in loaded.targets}
        self._warm: asyncio.Event | None = None
        self._warm_timeout = min(120.0, max([t.interval + t.timeout for t in loaded.targets]
                                            + [0.0]))
        self.errors: list[str] = self._build(loaded)

    # ---------------------------------------------------------------- loading
    def _build(self, loaded: LoadedConfig) -> list[str]:
        specs, errors = self.sources.read(loaded)
        new: dict[str, Group] = {}
        for spec in specs:
            if spec.key in new:
                errors.append(f"{spec.file}: group {spec.name!r} is defined twice")
                continue
            new[spec.key] = Group(spec, dict(loaded.global_.external_labels), self.external_url)
        now_ms = self.frame.to_store(int(time.time() * 1000))
        for key, old in self.groups.items():
            if key in new:
                new[key].copy_state_from(old)
            old.stale_all(now_ms, self.store)  # a removed group, or rules the new version dropped
        self._resolve_dropped(self.groups.values(), new.values(), now_ms)
        removed = {t.name for t in self._loaded.targets} - {t.name for t in loaded.targets}
        for name in removed:
            self.store.remove_target(name, now_ms / 1000)
        exprs = [r.spec.expr for g in new.values() for r in g.rules]
        margin = max([g.interval_ms for g in new.values()] + [0]) + 60_000
        interest = build_interest(exprs)
        # What the rules write is queryable (/api/v1/query) even when no rule reads it back.
        for name in {r.spec.name for g in new.values() for r in g.rules if r.spec.kind == "record"} | _ALERT_SERIES:
            interest.add([Matcher.make(METRIC_NAME, "=", name)], DEFAULT_LOOKBACK_MS)
        self.store.set_interest(interest, margin)
        self.groups = new
        self._loaded = loaded
        return errors

    def _resolve_dropped(self, old: Iterable[Group], new: Iterable[Group], ts: int) -> None:
        """Send the resolution of every alert of a rule the reload removed, now.

        Waiting for the receivers' resolve_timeout (5 min) would leave a page open for an
        alert nothing evaluates any more; Prometheus drops such alerts silently and leaves it
        to Alertmanager's timeout, which an operator reads as a false page.
        """
        kept = {id(r.active) for g in new for r in g.rules if isinstance(r, AlertingRule)}
        dropped: list[tuple[AlertingRule, AlertingAlert]] = []
        for group in old:
            for rule in group.rules:
                if not isinstance(rule, AlertingRule) or id(rule.active) in kept:
                    continue
                for alert in rule.active.values():
                    if alert.state == FIRING and alert.last_sent_at:
                        alert.state, alert.resolved_at = INACTIVE, ts
                        dropped.append((rule, alert))
                        log.info("alert resolved: its rule was removed: %s %s", rule.name, _fmt(alert.labels),
                                 extra={"fields": {"rule": rule.name, "group": group.name}})
        if dropped and self.on_alert_change is not None:
            external_labels = self._loaded.global_.external_labels
            try:
                self.on_alert_change([to_notify_alert(rule, a, external_labels) for rule, a in dropped])
            except Exception:  # noqa: BLE001 - the pipeline's failure is not the rules'
                log.exception("alert change hook failed")

    def _build_exclusive(self, loaded: LoadedConfig) -> list[str]:
        with self.frame.exclusive():  # no evaluation reads the groups while they are swapped
            return self._build(loaded)

    async def areload(self, loaded: LoadedConfig) -> list[str]:
        """`reload` for the event loop: the rebuild waits for running evaluations, in a thread."""
        errors = await asyncio.to_thread(self._build_exclusive, loaded)
        self._sync_tasks()
        for e in errors:
            log.error("%s", e)
        return errors

    def reload(self, loaded: LoadedConfig) -> list[str]:
        """Apply new rules (from the loop thread); returns problems found (empty: all good)."""
        errors = self._build_exclusive(loaded)  # serialised with evaluations
        if self._loop is not None:
            self._sync_tasks()
        for e in errors:
            log.error("%s", e)
        return errors

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stepped = asyncio.Event()
        self._warm = asyncio.Event()
        if not self._unreported:
            self._warm.set()
        state_dir = Path(self._loaded.global_.state_dir)
        try:
            self._state_db = AlertStateDB(state_dir / "rules.db")
            last_eval, saved = self._state_db.load()
            for key, group in self.groups.items():
                for rule in group.rules:
                    if isinstance(rule, AlertingRule):
                        rule.to_restore = saved.get((key, rule.name), {})
                        rule.restore_down_at = last_eval.get(key, 0)
            restored = sum(len(v) for v in saved.values())
            if restored:
                log.info("restoring %d persisted alerts", restored)
        except (OSError, Exception) as exc:  # noqa: BLE001 - state is an aid, never a reason not to run
            log.error("alert state in %s is unusable (%s); starting without it", state_dir, exc)
            self._state_db = None
        self._sync_tasks()

    async def stop(self) -> None:
        """Stop evaluating; an evaluation still running is abandoned, not waited for (workers.py).

        What it would send or persist is dropped: its group's state as of the last completed
        evaluation is what was saved, and the next start picks up from there."""
        self._stopping = True
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=5)
        self._tasks.clear()
        self.pool.close()
        if self._state_db is not None:
            await asyncio.to_thread(self._state_db.close)  # waits for a save in progress only

    def _sync_tasks(self) -> None:
        for key in list(self._tasks):
            task = self._tasks[key]
            group = self.groups.get(key)
            if group is None or self._task_intervals.get(key) != group.interval_ms:
                task.cancel()
                del self._tasks[key]
        for key, group in self.groups.items():
            if key not in self._tasks:
                self._tasks[key] = asyncio.ensure_future(self._run(key, group.interval_ms))
                self._task_intervals[key] = group.interval_ms
        if self._state_db is not None:
            self.pool.submit(self._state_db.forget_groups, set(self.groups))

    async def _run(self, key: str, interval_ms: int) -> None:
        interval = interval_ms / 1000
        offset = _offset(key, interval)
        if self._warm is not None and not self._warm.is_set():
            try:
                await asyncio.wait_for(self._warm.wait(), self._warm_timeout)
            except asyncio.TimeoutError:
                log.warning("evaluating rules although %d targets have not reported yet", len(self._unreported))
                self._warm.set()
        now = time.time()
        tick = (now - offset) // interval * interval + offset + interval
        frame = self.frame.seen_ms  # the clock frame `tick` is in
        while True:
            while True:  # sleep until the tick; a clock step moves the tick and wakes us
                tick += (self.frame.seen_ms - frame) / 1000
                frame = self.frame.seen_ms
                remaining = tick - time.time()
                if remaining <= 0:
                    break
                assert self._stepped is not None
                try:
                    await asyncio.wait_for(self._stepped.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            group = self.groups.get(key)
            if group is None:
                return
            try:
                await self.pool.run(self._evaluate, key, int(round(tick * 1000)), frame)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad evaluation must not end the loop
                log.exception("rule group evaluation crashed", extra={"fields": {"group": key}})
            tick += (self.frame.seen_ms - frame) / 1000
            frame = self.frame.seen_ms
            late = time.time() - tick
            missed = int(late // interval)  # ticks that passed while this one ran
            if missed > 0:
                group.stats.missed += missed
                group.stats.iterations += missed
                log.warning("rule group evaluation took %.3fs (interval %gs); %d iterations missed",
                            group.stats.last_duration_s, interval, missed, extra={"fields": {"group": key}})
            tick += interval * (missed + 1)

    # ---------------------------------------------------------------- evaluation (worker thread)
    def _evaluate(self, key: str, tick_ms: int, tick_frame_ms: int | None = None) -> None:
        """Evaluate a group at `tick_ms`, wall time in clock frame `tick_frame_ms` (default: now's)."""
        with self.frame.evaluation(tick_ms, tick_frame_ms, self.clock.check if self.clock else None) as ts:
            group = self.groups.get(key)
            if group is None or self._stopping:
                return
            to_send = group.eval(ts, self.store)
            if self._stopping:  # abandoned at shutdown: the daemon no longer listens
                return
            self._report(group, ts, to_send)

    def _report(self, group: Group, ts: int, to_send: list) -> None:
        """Log, send and persist what an evaluation changed."""
        self._settle_heap()
        for rule in group.rules:
            if isinstance(rule, AlertingRule):
                for a in rule.active.values():
                    if a.fired_at == ts and a.state == FIRING:
                        log.warning("alert firing: %s %s", rule.name, _fmt(a.labels),
                                    extra={"fields": {"rule": rule.name, "group": group.name}})
                    elif a.resolved_at == ts and a.state == INACTIVE:
                        log.info("alert resolved: %s %s", rule.name, _fmt(a.labels),
                                 extra={"fields": {"rule": rule.name, "group": group.name}})
        if to_send and self.on_alert_change is not None:
            external_labels = self._loaded.global_.external_labels
            payload = [to_notify_alert(rule, a, external_labels) for rule, alerts in to_send for a in alerts]
            try:
                self.on_alert_change(payload)
            except Exception:  # noqa: BLE001 - the pipeline's failure is not the rules'
                log.exception("alert change hook failed")
        self._persist(group, ts)

    def _settle_heap(self) -> None:
        """Keep the garbage collector's full passes off the sample store.

        The store holds a few long-lived objects per series (tens of thousands with many
        targets); every full collection walks all of them, and an evaluation's
        allocations trigger several, each costing about as much as the rest of the
        evaluation. Once the store has grown by half since last time (and is large),
        collect once and move everything alive to the permanent generation
        (`gc.freeze`). Series change in place, so frozen objects stay what the store
        uses; objects frozen that die later are still freed by reference counting (only
        garbage cycles among them would stay, once per freeze).
        """
        n = len(self.store)
        if n >= _FREEZE_MIN_SERIES and n >= self._frozen_series * 3 // 2:
            gc.collect()
            gc.freeze()
            self._frozen_series = n

    def _persist(self, group: Group, ts: int) -> None:
        if self._state_db is None:
            return
        rows = [(r.name, a) for r in group.rules if isinstance(r, AlertingRule) for a in r.active.values()]
        signature = tuple((name, a.labels, a.state, a.active_at, a.fired_at, a.resolved_at) for name, a in rows)
        changed = self._saved_signature.get(group.key) != signature
        try:
            self._state_db.save_group(group.key, ts, rows if changed else None)
            self._saved_signature[group.key] = signature
        except StateWriteError as exc:  # e.g. disk full: keep evaluating; the next one writes it all
            log.error("cannot persist the alert state of rule group %s: %s; retrying at its next evaluation",
                      group.name, exc, extra={"fields": {"group": group.key}})
        except Exception:  # noqa: BLE001 - a bug here must not stop the evaluations
            log.exception("cannot persist the alert state of rule group %s", group.name)

    # ---------------------------------------------------------------- views
    def ingest(self, target: str, samples: list[Any], unix_time: float) -> None:
        if self.clock is not None:
            self.clock.check()  # a step is applied before anything stamped after it is stored
        with self.frame.lock:  # stamped in the clock's frame, stored in the store's
            self.store.ingest(target, samples, unix_time + (self.frame.applied_ms - self.frame.seen_ms) / 1000)
        if self._unreported:
            self._unreported.discard(target)
            if not self._unreported and self._warm is not None:
                self._warm.set()

    # ---------------------------------------------------------------- clock steps
    def _on_clock_step(self, step_s: float) -> None:
        self.frame.on_step(step_s)
        loop, stepped = self._loop, self._stepped
        if loop is not None and stepped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_loops)

    def _wake_loops(self) -> None:
        """Wake every group loop so it moves its next tick by the step (see `_run`)."""
        if self._stepped is not None:
            self._stepped.set()
            self._stepped = asyncio.Event()

    def _shift_stored_times(self, delta_ms: int) -> None:
        """Move the samples and every alert's timers by a clock step (TimeFrame calls it)."""
        self.store.shift(delta_ms)
        shift_alert_timers(self.groups.values(), delta_ms)
        log.info("samples and alert timers moved by %+dms to the new wall clock", delta_ms)

    def stalled_for(self) -> float:
        """Seconds rule evaluations have been waiting or running with none completing (watchdog)."""
        return self.pool.stalled_for()

    def active_alerts(self) -> list[dict[str, Any]]:
        return exposition.active_alerts(list(self.groups.values()))

    def render_metrics(self) -> str:
        return exposition.render_metrics(list(self.groups.values()), self.store.stats())


def _fmt(labels: tuple) -> str:
    return format_label_set(labels)


"""The daemon's lifecycle: start, reload, drain, stop; it puts the other parts together.

Everything runs on one asyncio loop in the main thread (scheduler, probes, signals); the
HTTP listener has its own threads. A reload builds and validates the whole new
configuration first and only then swaps it in, so a broken file never half-applies.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import threading
import time

from . import aio, heap, logs, statedb
from .clock import ClockWatch
from .cluster.view import ClusterOverride, replica_warnings, shard_view, target_filter
from .config import LoadedConfig, load_config
from .errors import ConfigError
from .flapping import FlappingGate
from .history import HistoryRecorder
from .history.rollup import MAINTENANCE
from .maintenance import maintenance_result
from .metrics import ProbeMetrics, SelfMetrics
from .notify.alert import Alert
from .notify.metrics import NotifyMetrics
from .notify.muting import Muting, open_muting, register_metrics, silencing_overview
from .notify.slot import NotifierSlot, alerting_of
from .probes import KINDS, ProbeResult
from .probes.net import tls_context
from .probes.push import PushWatch
from .rules.manager import RuleManager
from .scheduler import ProbeScheduler, TargetState
from .service_status import ServiceStatus
from .systemd_notify import ServiceNotifier
from .web.api_v2 import AlertmanagerAPI
from .web.prom_api import PrometheusAPI
from .web.server import WebServer
from .web.views import WebViews

log = logging.getLogger("tocsin")

# Rule evaluation counts as stalled when evaluations have waited or run this long with none
# completing (rules/workers.py): every worker is stuck. The watchdog pings stop then, and
# systemd restarts the service WatchdogSec later. One slow group while others complete is
# not a stall (its missed iterations are counted and logged instead).
RULES_STALL_SECONDS = float(os.environ.get("TOCSIN_RULES_STALL_SECONDS", "120"))


def _raise_fd_limit() -> None:
    """Each in-flight probe holds a socket: lift the soft fd limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Daemon:
    def __init__(self, loaded: LoadedConfig, override: ClusterOverride | None = None) -> None:
        self.loaded = loaded  # as this shard runs it (cluster/view.py)
        self.override = override
        self.self_metrics = SelfMetrics()
        self.probe_metrics = ProbeMetrics()
        # Alert notifications: routed, grouped and delivered through a durable outbox; None
        # without an `alerting` section (firing and resolved alerts are then only logged).
        self.notify_metrics = NotifyMetrics(self.self_metrics.registry)
        self.notifiers = NotifierSlot(self.notify_metrics)  # the one in force, and those still draining
        # A flapping target's notifications: held, replaced by one notice when it starts and ends.
        self.flapping = FlappingGate(loaded.global_.flapping, self.notifiers.submit)
        self.muting: Muting | None = None  # silences and acknowledgements, opened by run(); kept across reloads
        self.clock = ClockWatch(self.self_metrics.registry)  # wall-clock steps: detected and re-anchored
        self.rules = RuleManager(loaded, on_alert_change=self._send_alerts,  # rules over the probe samples
                                 external_url=f"http://{loaded.global_.listen_address}", clock=self.clock)
        self.probe_metrics.subscribe(self.rules.ingest, self.rules.store.may_want)
        self.systemd = ServiceNotifier()  # sd_notify: READY, RELOADING, STOPPING, STATUS, WATCHDOG
        self.status = ServiceStatus(self.systemd, self.self_metrics.targets_up)
        self.scheduler: ProbeScheduler | None = None
        self.push_watch: PushWatch | None = None  # push targets: probed on a push and at their deadline
        self.web: WebServer | None = None
        self.history: HistoryRecorder | None = None  # probe history and incidents, in state_dir/history.db
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._ready = False
        self._reload_task: asyncio.Future[tuple[bool, str]] | None = None
        self._reload_pending = False
        self._rules_stall_logged = False
        logs.set_error_hook(lambda name: self.self_metrics.log_errors.labels(name).inc())
        statedb.set_error_hook(lambda db: self.self_metrics.state_write_errors.labels(db).inc())

    # ---------------------------------------------------------------- start / stop

    async def run(self) -> int:
        """Start, tell systemd READY=1 only once everything serves, and run until SIGTERM/SIGINT."""
        self.loop = asyncio.get_running_loop()
        _raise_fd_limit()
        # Signals first: a SIGTERM during start-up then stops us cleanly after start-up.
        for sig, handler in ((signal.SIGHUP, self._on_sighup), (signal.SIGTERM, self._on_stop_signal),
                             (signal.SIGINT, self._on_stop_signal)):
            self.loop.add_signal_handler(sig, handler, sig)
        _install_test_hooks(self.loop)
        self.systemd.status("starting")
        g = self.loaded.global_
        self.scheduler = ProbeScheduler(self.self_metrics, self._on_result, g.max_concurrent_probes, self.clock,
                                        on_inconclusive=self._on_inconclusive)
        self.scheduler.lag.subscribe(self.rules.ingest)  # the shipped overload rule reads the loop lag
        self.push_watch = PushWatch(self.loop, self.scheduler.run_soon)
        self.scheduler.on_maintenance = self._on_maintenance
        self.history = HistoryRecorder(os.path.join(g.state_dir, "history.db"), self.loaded.config.history,
                                       alerts=self.rules.active_alerts, load_in_background=True)
        self.history.start()
        self._apply(self.loaded)
        self._label_shard(self.loaded)
        self.muting = open_muting(g.state_dir)  # before the listener: its API serves them
        self.notifiers.muting = self.muting
        register_metrics(self.muting, self.self_metrics.registry)
        views = WebViews(self.scheduler, self.rules, self.status,
                         (self.self_metrics.render, self.probe_metrics.render_families, self.rules.render_metrics),
                         self.history, lambda: self.loaded.config.status_page,
                         lambda: silencing_overview(self.muting) if self.muting is not None else {"silences": [], "acks": []})
        apis = (AlertmanagerAPI(self.muting, lambda: self.notifiers.current), PrometheusAPI(self.rules))
        self.web = WebServer(g.listen_address, views, self, g.web, handlers=apis,
                             registry=self.self_metrics.registry)  # binds here: a taken port fails start-up
        self.web.start()
        await asyncio.to_thread(self.notifiers.rebuild, self.loaded)  # replays the outbox
        self._start_rules()
        self._start_watchdog()
        # Last: probes due from now on do not compete with the rest of start-up for the CPU.
        self.scheduler.start()
        self._ready = True
        heap.settle()
        self.systemd.ready()
        self.status.update()
        log.info("tocsin started", extra={"fields": {"listen": g.listen_address, "targets": len(self.loaded.targets),
                                                     "config": str(self.loaded.path)}})
        if self._reload_pending:
            self._on_sighup()
        await self._stop.wait()
        await self.shutdown()
        return 0

    def _start_rules(self) -> None:
        self.rules.start()
        if self.rules.errors:
            self.self_metrics.reload_success.set(0)
            self.status.last_reload_ok = False
            for line in self.rules.errors:
                log.error("%s", line)

    # ---------------------------------------------------------------- notifications

    def _send_alerts(self, alerts: list[Alert]) -> None:
        """The rule engine's hook (on its worker thread): firing/resolved alerts, through the
        flapping gate, to the outbox."""
        self.flapping.submit(alerts)
        if self.history is not None:
            self.history.nudge()  # records the alerts' new states within a second

    def _on_stop_signal(self, sig: int) -> None:
        if not self._stop.is_set():
            log.info("%s received: stopping", signal.Signals(sig).name)
        self._stop.set()

    async def shutdown(self) -> None:
        """Stop scheduling, let in-flight probes end within their own deadline, then stop serving."""
        self._ready = False
        self.systemd.stopping()
        self.systemd.status("stopping: draining in-flight probes")
        grace = max(t.timeout for t in self.loaded.targets) if self.loaded.targets else 0.0
        with logs.error_context("shutdown", grace=f"{grace + 0.5:.1f}s"):
            if self.scheduler is not None:
                await self.scheduler.stop(grace=grace + 0.5)
            await self.rules.stop()
            await asyncio.to_thread(self.notifiers.stop)  # undelivered notifications stay in the outbox
            if self.web is not None:
                await asyncio.to_thread(self.web.stop)
            if self.history is not None:
                await asyncio.to_thread(self.history.stop)  # the last second of results written
            if self.muting is not None:
                self.muting.close()
        log.info("tocsin stopped")

    def _start_watchdog(self) -> None:
        """Ping systemd's watchdog from a scheduler job, so the pings stop with the scheduler.

        No timer thread and no free-running task: WATCHDOG=1 is sent only when APScheduler
        dispatches a job on the event loop, which is exactly what the probes depend on. A
        stuck loop or a scheduler that stopped dispatching goes silent, and systemd restarts
        the service after WatchdogSec. The ping also stops while rule evaluation is stalled
        (RULES_STALL_SECONDS without any evaluation completing while some wait or run).
        """
        period = self.systemd.watchdog_interval()
        if period is None or self.scheduler is None:
            return
        self.scheduler.add_heartbeat(self._watchdog_beat, period)
        log.debug("watchdog pings every %.2fs from the scheduler", period)

    def _watchdog_beat(self) -> None:
        stalled = self.rules.stalled_for()
        if stalled < RULES_STALL_SECONDS:
            self.systemd.watchdog()
            self._rules_stall_logged = False
        elif not self._rules_stall_logged:
            self._rules_stall_logged = True
            log.error("no rule evaluation has completed for %.0fs: not pinging the watchdog", stalled)

    # ---------------------------------------------------------------- reload

    def _on_sighup(self, _sig: int = signal.SIGHUP) -> None:
        if not self._ready:  # still starting: reload as soon as the start is complete
            log.info("SIGHUP received during start-up: reloading once started")
            self._reload_pending = True
            return
        log.info("SIGHUP received: reloading configuration")
        self._reload_task = asyncio.ensure_future(self.reload())  # keep a reference until it is done

    async def reload(self) -> tuple[bool, str]:
        """Build the whole new configuration, then swap it in; on any error keep the old one.

        systemd sees RELOADING=1 (with MONOTONIC_USEC) … READY=1 around it either way. Log
        files are reopened even when the new file is broken, so `logrotate` + SIGHUP works.
        """
        async with self._reload_lock:
            self.systemd.reloading()
            self.systemd.status("reloading configuration")
            try:
                with logs.error_context("reload", config=str(self.loaded.path)) as facts:
                    loaded = await asyncio.to_thread(load_shard, self.loaded.path, self.override)
                    if loaded.global_.listen_address != self.loaded.global_.listen_address:
                        log.warning("listen_address changed; it takes effect at the next restart")
                    logs.setup_logging(loaded.config.logging)
                    tls_context.cache_clear()  # CA and client certificate files may have changed
                    changes = self._apply(loaded)
                    self._label_shard(loaded)
                    rule_errors = await self.rules.areload(loaded)
                    if alerting_of(loaded) != alerting_of(self.loaded):
                        await asyncio.to_thread(self.notifiers.rebuild, loaded)
                    self.loaded = loaded
                    self.flapping.configure(loaded.global_.flapping)
                    facts.update({k: ",".join(v) or "-" for k, v in changes.items() if k != "kept"})
                    facts["kept"] = len(changes["kept"])
            except Exception as exc:  # noqa: BLE001 - whatever failed, systemd must get READY=1 again
                errors = exc.errors if isinstance(exc, ConfigError) else [f"{type(exc).__name__}: {exc}"]
                logs.setup_logging(self.loaded.config.logging)  # reopen the files all the same
                self.self_metrics.reload_success.set(0)
                self.status.last_reload_ok = False
                log.error("reload failed, keeping the running configuration (%d error%s)",
                          len(errors), "" if len(errors) == 1 else "s")
                self.systemd.ready()
                self.status.update()
                return False, "\n".join(errors)
            if rule_errors:  # the broken rule files keep their previous version; the rest applied
                self.self_metrics.reload_success.set(0)
                self.status.last_reload_ok = False
                self.systemd.ready()
                self.status.update()
                return False, "\n".join(rule_errors)
            self.self_metrics.reload_success.set(1)
            self.self_metrics.reload_timestamp.set(time.time())
            heap.settle()
            self.status.last_reload_ok = True
            self.systemd.ready()
            self.status.update()
            summary = ", ".join(f"{k} {len(v)}" for k, v in changes.items())
            return True, f"configuration reloaded: {summary}"

    def _apply(self, loaded: LoadedConfig) -> dict[str, list[str]]:
        assert self.scheduler is not None
        for target in loaded.targets:
            self.probe_metrics.ensure(target)
        changes = self.scheduler.apply(loaded.targets)
        for name in changes["removed"]:
            self.probe_metrics.remove(name)
            self.flapping.forget(name)
        for name in changes["changed"]:
            self.probe_metrics.set_interval(name, self.scheduler.states[name].interval)
        self.status.recount(self.scheduler.states)
        if self.push_watch is not None:
            self.push_watch.configure(loaded.global_.state_dir, loaded.targets)
        kinds = dict.fromkeys(KINDS, 0)
        for target in loaded.targets:
            kinds[target.kind] += 1
        for kind, count in kinds.items():
            self.self_metrics.targets.labels(kind).set(count)
        return changes

    def _label_shard(self, loaded: LoadedConfig) -> None:
        """tocsin_shard_info and the log's shard/replica fields, from the cluster section in force."""
        cluster = loaded.config.cluster
        self.self_metrics.shard_info.clear()
        self.self_metrics.shard_info.labels(str(cluster.shard), str(cluster.shards), cluster.replica).set(1)
        logs.set_process_fields(shard=f"{cluster.shard}/{cluster.shards}" if cluster.sharded else "",
                                replica=cluster.replica)

    # ---------------------------------------------------------------- results

    def _on_maintenance(self, state: TargetState, inside: bool) -> None:
        """At each run skipped for a maintenance window, and once when the window ends."""
        self.probe_metrics.set_maintenance(state.target.name, inside)
        if inside and self.history is not None:  # the history says "maintenance" for the run, not "down"
            self.history.record(state.target.name, maintenance_result(state.target), state.interval, MAINTENANCE)

    def _on_result(self, state: TargetState, result: ProbeResult, previous: ProbeResult | None) -> None:
        state.flapping = self.flapping.observe(state.target, result.success)
        self.probe_metrics.record(result, state.interval, state.flapping)
        self.status.observe(result, previous)
        if self.history is not None:  # a queue append; the history thread does the rest
            self.history.record(state.target.name, result, state.interval)

    def _on_inconclusive(self, result: ProbeResult) -> None:
        """tocsin's own lag used up the probe's deadline: counted, not a result (overload.py)."""
        self.probe_metrics.record_inconclusive(result.target, time.time())

    # ---------------------------------------------------------------- the listener's control

    def is_ready(self) -> bool:
        return self._ready

    def health_problems(self) -> list[str]:
        """Why the daemon is not doing its job although it runs (for /-/healthy); empty: healthy."""
        return self.notifiers.problems()

    def request_reload(self) -> tuple[bool, str]:
        """Called from a web thread: run the reload on the loop and wait for its verdict."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self.reload(), self.loop).result(timeout=60)


TEST_HOOKS_ENV = "TOCSIN_TEST_HOOKS"


def _install_test_hooks(loop: asyncio.AbstractEventLoop) -> None:
    """Test hook, inert unless TOCSIN_TEST_HOOKS=1: SIGUSR2 hangs the event loop for good.

    It simulates a wedged scheduler (probes, rule evaluation and the watchdog heartbeat all
    stop while the HTTP listener threads still answer), so tests can show that systemd's
    watchdog notices and restarts the service. Never set this variable in production.
    """
    if os.environ.get(TEST_HOOKS_ENV) != "1":
        return

    def hang() -> None:
        log.warning("test hook: SIGUSR2 received, hanging the event loop")
        threading.Event().wait()

    loop.add_signal_handler(signal.SIGUSR2, hang)


def load_shard(path: str | os.PathLike[str], override: ClusterOverride | None = None) -> LoadedConfig:
    """Load the file, then narrow it to this process's shard (every target when unsharded)."""
    return shard_view(load_config(path, lambda tree: target_filter(tree, override)), override)


def run_daemon(config_path: str | os.PathLike[str], override: ClusterOverride | None = None) -> int:
    """`tocsin run`: load, start, and serve until SIGTERM/SIGINT. Returns the exit code."""
    # Start-up allocates the configuration and every target's state and job: hundreds of
    # thousands of objects, none of them garbage. Collecting while they pile up walked
    # them again and again (0.3 s at 10 000 targets); heap.settle() turns the collector
    # back on once start-up is done, with all of them frozen.
    gc.disable()
    heap.map_large_buffers()
    try:
        loaded = load_shard(config_path, override)
    except ConfigError as exc:
        logs.setup_logging()
        for line in exc.errors:
            log.error("%s", line)
        return 78  # EX_CONFIG: systemd does not restart-loop on a broken file with RestartPreventExitStatus
    logs.setup_logging(loaded.config.logging)
    for warning in replica_warnings(loaded, override):
        log.warning("%s", warning)
    daemon = Daemon(loaded, override)
    try:
        return aio.run(daemon.run())
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1

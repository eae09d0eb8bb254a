"""The daemon's lifecycle: start, reload, drain, stop.

Everything runs on one asyncio loop in the main thread (scheduler, probes, signals); the
HTTP listener has its own threads. A reload builds and validates the whole new
configuration first and only then swaps it in, so a broken file never half-applies.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import resource
import signal
import time
from datetime import datetime, timezone
from typing import Any

from . import logs
from .config import LoadedConfig, load_config
from .errors import ConfigError
from .metrics import ProbeMetrics, SelfMetrics
from .probes import ProbeResult
from .probes.net import tls_context
from .scheduler import ProbeScheduler, TargetState
from .systemd_notify import ServiceNotifier
from .web import WebServer

log = logging.getLogger("tocsin")


def _raise_fd_limit() -> None:
    """Each in-flight probe holds a socket: lift the soft fd limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Daemon:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.self_metrics = SelfMetrics()
        self.probe_metrics = ProbeMetrics()
        self.notifier = ServiceNotifier()
        self.scheduler: ProbeScheduler | None = None
        self.web: WebServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._ready = False
        self._up = 0
        logs.on_handler_error = lambda name: self.self_metrics.log_errors.labels(name).inc()

    # ---------------------------------------------------------------- start / stop

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        _raise_fd_limit()
        g = self.loaded.global_
        self.scheduler = ProbeScheduler(self.self_metrics, self._on_result, g.max_concurrent_probes)
        self._apply(self.loaded)
        self.web = WebServer(g.listen_address, self, g.web)
        self.web.start()
        self.scheduler.start()
        for sig, handler in ((signal.SIGHUP, self._on_sighup), (signal.SIGTERM, self._stop.set),
                             (signal.SIGINT, self._stop.set)):
            self.loop.add_signal_handler(sig, handler)
        self._ready = True
        self.notifier.ready()
        self._update_status()
        log.info("tocsin started", extra={"fields": {"listen": g.listen_address, "targets": len(self.loaded.targets),
                                                     "config": str(self.loaded.path)}})
        watchdog = asyncio.create_task(self._watchdog())
        await self._stop.wait()
        watchdog.cancel()
        await self.shutdown()
        return 0

    async def shutdown(self) -> None:
        self.notifier.stopping()
        log.info("tocsin stopping")
        grace = max((t.timeout or 5.0) for t in self.loaded.targets) if self.loaded.targets else 0.0
        if self.scheduler is not None:
            await self.scheduler.stop(grace=grace + 0.5)
        if self.web is not None:
            await asyncio.to_thread(self.web.stop)
        log.info("tocsin stopped")

    def request_stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog only while the scheduler demonstrably makes progress."""
        interval = self.notifier.watchdog_interval()
        if interval is None or self.scheduler is None:
            return
        heartbeat = {"at": time.monotonic()}

        def beat() -> None:
            heartbeat["at"] = time.monotonic()

        self.scheduler.add_heartbeat(beat, interval / 2)
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - heartbeat["at"] < 2 * interval:
                self.notifier.watchdog()
            else:
                log.error("scheduler made no progress for %.1fs; withholding the watchdog ping",
                          time.monotonic() - heartbeat["at"])

    # ---------------------------------------------------------------- reload

    def _on_sighup(self) -> None:
        log.info("SIGHUP received: reloading configuration")
        asyncio.ensure_future(self.reload())

    async def reload(self) -> tuple[bool, str]:
        async with self._reload_lock:
            self.notifier.reloading()
            try:
                loaded = await asyncio.to_thread(load_config, self.loaded.path)
            except ConfigError as exc:
                self.self_metrics.reload_success.set(0)
                for line in exc.errors:
                    log.error("reload failed, keeping the running configuration: %s", line)
                self.notifier.ready()
                return False, str(exc)
            if loaded.global_.listen_address != self.loaded.global_.listen_address:
                log.warning("listen_address changed; it takes effect at the next restart")
            logs.setup_logging(loaded.config.logging)
            tls_context.cache_clear()  # CA and client certificate files may have changed
            changes = self._apply(loaded)
            self.loaded = loaded
            self.self_metrics.reload_success.set(1)
            self.self_metrics.reload_timestamp.set(time.time())
            self.notifier.ready()
            self._update_status()
            summary = ", ".join(f"{k} {len(v)}" for k, v in changes.items())
            log.info("configuration reloaded: %s", summary)
            return True, f"configuration reloaded: {summary}"

    def request_reload(self) -> tuple[bool, str]:
        """Called from a web thread: run the reload on the loop and wait for its verdict."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self.reload(), self.loop).result(timeout=60)

    def _apply(self, loaded: LoadedConfig) -> dict[str, list[str]]:
        assert self.scheduler is not None
        for target in loaded.targets:
            self.probe_metrics.ensure(target)
        changes = self.scheduler.apply(loaded.targets)
        for name in changes["removed"]:
            self.probe_metrics.remove(name)
        for name in changes["changed"]:
            self.probe_metrics.set_interval(name, self.scheduler.states[name].interval)
        self._up = sum(1 for s in self.scheduler.states.values() if s.up)
        kinds: dict[str, int] = {"http": 0, "tcp": 0, "dns": 0}
        for target in loaded.targets:
            kinds[target.kind] += 1
        for kind, count in kinds.items():
            self.self_metrics.targets.labels(kind).set(count)
        self.self_metrics.targets_up.set(self._up)
        return changes

    # ---------------------------------------------------------------- results

    def _on_result(self, state: TargetState, result: ProbeResult, previous: ProbeResult | None) -> None:
        self.probe_metrics.record(result)
        self.probe_metrics.set_interval(result.target, state.interval)
        was_up = previous.success if previous is not None else None
        if result.success != was_up:
            self._up += (1 if result.success else 0) - (1 if was_up else 0)
            self.self_metrics.targets_up.set(self._up)
            self._update_status()
            if result.success:
                log.info("target is up", extra={"fields": {"duration": f"{result.duration:.3f}s"}})
            else:
                log.warning("target is down: %s: %s", result.reason, result.message,
                            extra={"fields": {"reason": result.reason, "attempts": result.attempts}})
        elif not result.success:
            log.debug("probe failed: %s: %s", result.reason, result.message)

    def _update_status(self) -> None:
        states = self.scheduler.states if self.scheduler else {}
        down = sum(1 for s in states.values() if s.up is False)
        self.notifier.status(f"{len(states)} targets: {self._up} up, {down} down")

    # ---------------------------------------------------------------- web views

    def render_metrics(self) -> bytes:
        return (self.self_metrics.render() + self.probe_metrics.render()).encode()

    def is_ready(self) -> bool:
        return self._ready

    def api(self, path: str) -> Any | None:
        if path == "targets":
            return self._targets_view()
        return None

    def _targets_view(self) -> list[dict[str, Any]]:
        assert self.scheduler is not None
        out = []
        for name, state in list(self.scheduler.states.items()):
            target, result = state.target, state.last_result
            next_run = self.scheduler.next_run(name)
            out.append({
                "name": name, "kind": target.kind,
                "endpoint": target.url or (target.tcp.address if target.tcp else target.dns.query if target.dns else ""),
                "labels": target.labels, "interval_seconds": target.interval, "current_interval_seconds": state.interval,
                "timeout_seconds": target.timeout, "health": "unknown" if result is None else "up" if result.success else "down",
                "last_run": _iso(result.started_at) if result else None,
                "next_run": next_run.isoformat() if next_run else None,
                "last_result": None if result is None else {
                    "success": result.success, "reason": result.reason or None, "message": result.message or None,
                    "duration_seconds": round(result.duration, 6), "attempts": result.attempts,
                    "first_attempt_success": result.first_attempt_success, "correlation_id": result.correlation_id,
                    "status_code": int(result.facts["http_status_code"]) if "http_status_code" in result.facts else None,
                },
            })
        return out

    def status_page(self) -> str:
        rows = []
        for item in self._targets_view():
            result = item["last_result"] or {}
            rows.append("<tr class='{h}'><td>{n}</td><td>{k}</td><td>{e}</td><td>{h}</td><td>{r}</td>"
                        "<td>{d}</td><td>{l}</td></tr>".format(
                            h=item["health"], n=html.escape(item["name"]), k=item["kind"],
                            e=html.escape(item["endpoint"]), r=html.escape(str(result.get("reason") or "")),
                            d=f"{result['duration_seconds']:.3f}s" if result else "", l=item["last_run"] or ""))
        return _STATUS_PAGE.format(rows="\n".join(rows), count=len(rows), up=self._up)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


_STATUS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>tocsin</title>
<meta http-equiv="refresh" content="10">
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.3em .8em;
border-bottom:1px solid #ddd;text-align:left}}.up td:nth-child(4){{color:#080}}.down td:nth-child(4){{color:#c00}}</style>
</head><body><h1>tocsin</h1><p>{count} targets, {up} up. <a href="/metrics">metrics</a> ·
<a href="/api/v1/targets">targets API</a></p><table><tr><th>target</th><th>kind</th><th>endpoint</th><th>health</th>
<th>reason</th><th>duration</th><th>last run</th></tr>
{rows}
</table></body></html>
"""


def run_daemon(config_path: str | os.PathLike[str]) -> int:
    """`tocsin run`: load, start, and serve until SIGTERM/SIGINT. Returns the exit code."""
    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        logs.setup_logging()
        for line in exc.errors:
            log.error("%s", line)
        return 78  # EX_CONFIG: systemd does not restart-loop on a broken file with RestartPreventExitStatus
    logs.setup_logging(loaded.config.logging)
    daemon = Daemon(loaded)
    try:
        return asyncio.run(daemon.run())
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1

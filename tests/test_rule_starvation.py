"""One expensive rule group must not stop the others, nor hold up shutdown (a real daemon)."""

from __future__ import annotations

import time

from conftest import free_port, scaled, wait_for

RULES = """
groups:
  - name: runaway
    interval: 1s
    rules:
      - record: expensive
        expr: max_over_time(probe_success[60m:1ms])   # 3.6 million steps: seconds even with no data yet
  - name: healthy
    interval: 500ms
    rules:
      - alert: Down
        expr: probe_success == 0
        for: 1s
"""

CONFIG = """
global: {{listen_address: "127.0.0.1:{{port}}", interval: 500ms, timeout: 400ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: down, tcp: {{address: "127.0.0.1:{closed}"}}}}
rule_files: [rules.yml]
"""


def test_an_expensive_group_neither_starves_the_others_nor_delays_shutdown(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(CONFIG.format(closed=free_port()))
    ready = time.monotonic()
    wait_for(lambda: daemon.sample("ALERTS", alertname="Down", alertstate="firing") == 1, timeout=60,
             what="Down firing")
    # The reference is the expensive group itself: the alert (first probe + `for` 1 s + an
    # interval) fired while its first evaluation was still running. With one rule thread
    # the healthy group waited for that evaluation to finish.
    assert "missed group=" + str(tmp_path / "rules.yml") + ";runaway" not in daemon.output(), daemon.output()
    time.sleep(2)  # an expensive evaluation is in flight now, whatever the code before did

    running = time.monotonic() - ready
    stopping = time.monotonic()
    assert daemon.stop() == 0
    took = time.monotonic() - stopping
    # Not waiting for the expensive evaluation (which has already run for `running` seconds,
    # or, with one thread, restarted in the last 2 s and has ~15 s of idle-machine CPU left).
    assert took < max(scaled(1.0), running / 2), (took, running)


def test_watchdog_pings_stop_while_no_rule_evaluation_completes(daemon_factory, tmp_path):
    """Every worker busy with an evaluation that does not end: the pings stop (RULES_STALL_SECONDS,
    shortened here to 1 s), so systemd restarts the service WatchdogSec later."""
    from test_lifecycle import NotifySocket

    groups = "".join(f"""
  - name: runaway{i}
    interval: 1s
    rules:
      - record: expensive{i}
        expr: max_over_time((max_over_time(probe_success[5m:1ms]))[5m:1s])
""" for i in range(4))  # as many as the pool has workers (rules/workers.py DEFAULT_WORKERS)
    # Each evaluation is 300 inner subqueries of 300 000 steps: it runs until the query
    # deadline (2 min), however fast the machine, and holds little memory at a time.
    (tmp_path / "rules.yml").write_text("groups:" + groups)
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        daemon = daemon_factory(CONFIG.format(closed=free_port()), env={
            "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "600000", "TOCSIN_RULES_STALL_SECONDS": "1"})
        wait_for(lambda: "not pinging the watchdog" in daemon.output(), timeout=30, what="the stall noticed")
        noticed = time.monotonic()
        time.sleep(scaled(3.0))
        pings = [t for t, fields in notify.messages if "WATCHDOG" in fields]
        assert pings and pings[0] < noticed  # it pinged while evaluations were young
        # A completion restarts the pings (progress), so look for the silence, not its end:
        # at least 2.5 watchdog periods (WATCHDOG_USEC=600ms) without a ping after the stall.
        times = [t for t in pings if t >= noticed - 1.0] + [time.monotonic()]
        assert max(b - a for a, b in zip(times, times[1:], strict=False)) >= 1.5, times  # consecutive pairs
        assert daemon.stop() == 0
    finally:
        notify.close()

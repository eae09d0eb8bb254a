"""Wall-clock steps in a real daemon: libfaketime moves CLOCK_REALTIME (only) while it runs.

A step of the wall clock (NTP correcting a drifted clock, an operator's `date -s`) must not
stop probing (a backward step used to freeze the scheduler for as long as the step), nor
resolve and re-fire alerts (a forward step used to leave every lookback window empty). The
daemon detects the step, logs and counts it, and re-anchors what was stamped with wall time.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from conftest import IN_CI, free_port, scaled, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")

RULES = """
groups:
  - name: steps
    interval: 500ms
    rules:
      - alert: Down
        expr: probe_success == 0
        for: 1s
"""

CONFIG = """
global: {{listen_address: "127.0.0.1:{{port}}", interval: 500ms, timeout: 400ms, evaluation_interval: 500ms,
          state_dir: "{{dir}}/state"}}
targets:
  - {{name: up, tcp: {{address: "127.0.0.1:{listening}"}}}}
  - {{name: down, tcp: {{address: "127.0.0.1:{closed}"}}}}
rule_files: [rules.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 200ms, group_interval: 1s, repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink}/hook"}}
"""


def faketime_env(offset_file: Path) -> dict[str, str]:
    """libfaketime reading its offset from `offset_file` (at most a second old); CLOCK_MONOTONIC untouched.

    (With FAKETIME_DONT_FAKE_MONOTONIC, libfaketime 0.9.10 makes time.sleep() fail with EINVAL;
    the daemon never calls it.)"""
    if not LIBFAKETIME.exists():
        if IN_CI:
            pytest.fail("libfaketime is not installed (CI must install it: see .ci/run)")
        pytest.skip("libfaketime is not installed")
    offset_file.write_text("+0\n")
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def accepting_port() -> socket.socket:
    """A TCP port the kernel completes connections on (the probe only connects): no thread needed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


def probes_run(daemon, target: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(daemon.metrics()) for s in f.samples
               if s.name == "tocsin_probes_total" and s.labels.get("target") == target)


@pytest.mark.parametrize("step", ["-3600", "+3600"])
def test_a_clock_step_neither_stops_probing_nor_moves_alerts(daemon_factory, tmp_path, step):
    (tmp_path / "rules.yml").write_text(RULES)
    offset_file = tmp_path / "faketime.rc"
    sink = HTTPSink(validate=validate_webhook_v4)
    listening = accepting_port()
    try:
        daemon = daemon_factory(CONFIG.format(closed=free_port(), listening=listening.getsockname()[1], sink=sink.url),
                                env=faketime_env(offset_file))
        wait_for(lambda: [b for b in sink.bodies() if b["status"] == "firing"], timeout=15,
                 what="Down firing notified")
        before = probes_run(daemon, "up")

        offset_file.write_text(f"{step}\n")
        stepped = time.monotonic()
        watch = scaled(4.0)
        firing_throughout = True
        while time.monotonic() - stepped < watch:
            if daemon.sample("ALERTS", alertname="Down", alertstate="firing") != 1:
                firing_throughout = False
            time.sleep(0.2)
        after = probes_run(daemon, "up")
        elapsed = time.monotonic() - stepped

        # Probing went on at its interval (0.5 s): at least half the runs the time allows.
        assert after - before >= elapsed / 0.5 / 2, (before, after, elapsed)
        assert firing_throughout, "the alert left the firing state after the step"
        statuses = [b["status"] for b in sink.bodies()]
        assert statuses == ["firing"], (statuses, daemon.output()[-3000:])  # nothing resolved or fired again
        assert daemon.sample("tocsin_clock_steps_total") == 1
        assert "wall clock stepped" in daemon.output()
        assert daemon.stop() == 0
    finally:
        offset_file.write_text("+0\n")
        sink.stop()
        listening.close()


def test_faketime_moves_only_the_wall_clock(tmp_path):
    """The premise of the tests above: the environment steps CLOCK_REALTIME and nothing else."""
    import subprocess
    import sys

    offset_file = tmp_path / "faketime.rc"
    env = {**os.environ, **faketime_env(offset_file)}
    code = ("import time, pathlib, sys, threading\n"
            "w, m = time.time(), time.monotonic()\n"
            "pathlib.Path(sys.argv[1]).write_text('-3600\\n')\n"
            "while abs((time.time() - w) - (time.monotonic() - m)) < 1 and time.monotonic() - m < 5:\n"
            "    threading.Event().wait(0.05)\n"
            "print(round((time.time() - w) - (time.monotonic() - m)))\n")
    out = subprocess.run([sys.executable, "-c", code, str(offset_file)], env=env, capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.strip() == "-3600"

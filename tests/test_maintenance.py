"""Per-target maintenance windows: no probes inside, the state says maintenance, not down."""

from __future__ import annotations

import time
from types import SimpleNamespace

from conftest import free_port, scaled, wait_for
from tocsin.maintenance import skip_run
from tocsin.scheduler import TargetState
from tocsin.timeintervals import TimeInterval

ALWAYS = TimeInterval.model_validate({"weekdays": ["sunday:saturday"]})


def test_a_window_skips_runs_and_reports_its_start_and_end():
    target = SimpleNamespace(maintenance=[ALWAYS])
    state = TargetState(target=target, interval=1.0)  # type: ignore[arg-type]
    state.last_started = 0.0
    seen: list[bool] = []
    record = lambda _state, inside: seen.append(inside)  # noqa: E731
    assert skip_run(state, record) and skip_run(state, record)
    assert state.maintenance and state.last_started > 0, "a skipped run is not an overdue one"
    target.maintenance = [TimeInterval.model_validate({"years": ["1999"]})]
    assert not skip_run(state, record) and not skip_run(state, record)
    assert seen == [True, True, False] and not state.maintenance


def test_a_target_in_maintenance_is_not_probed_and_not_down(daemon_factory):
    closed = free_port()
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 200ms}}
targets:
  - name: planned
    tcp: {{address: "127.0.0.1:{closed}"}}
    maintenance: [{{weekdays: ["sunday:saturday"], location: Europe/Berlin}}]
  - name: other
    tcp: {{address: "127.0.0.1:{closed}"}}
    maintenance: [{{years: ["1999"]}}]
""")
    wait_for(lambda: daemon.sample("tocsin_probes_total", target="other", result="failure"), timeout=10,
             what="the other target probed")
    time.sleep(scaled(1))  # a few more intervals of the planned one
    health = {t["name"]: t["health"] for t in daemon.targets()}
    assert health == {"planned": "maintenance", "other": "down"}
    assert daemon.sample("tocsin_probes_total", target="planned", result="failure") is None, "never probed"
    assert daemon.sample("tocsin_target_maintenance", target="planned") == 1.0
    assert daemon.sample("tocsin_target_maintenance", target="other") is None

"""tocsin installed as a service under a real systemd (PID 1 of an nspawn container).

The container is the shared systemd-e2e harness (`../shared/systemd-e2e/boot.sh`): a Debian
rootfs with systemd, booted on a throwaway overlay, loopback-only network. The container
shares nothing with the host's Python, so the test builds wheels of tocsin and its
dependencies on the host, bind-mounts them, and installs with the product's own
`systemd/install.sh` (offline: `pip install --no-index --find-links`). Then it drives the
unit the way an operator does: start, reload, journalctl, a hung scheduler that the
watchdog restarts, stop, and a broken configuration that must not restart-loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

from conftest import IN_CI, REPO, require_tool, wait_for

HARNESS = REPO.parent / "shared" / "systemd-e2e"
BOOT = HARNESS / "boot.sh"
NAME = f"tocsin-e2e-{os.getpid()}"
PACKAGES = "python3-venv"  # the rootfs has python3; the venv module comes separately on Debian

pytestmark = pytest.mark.external


def _skip_or_fail(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _sh(script: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a shell string inside the container."""
    proc = subprocess.run([str(BOOT), "sh", NAME, script], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "SDE_PACKAGES": PACKAGES})
    if check and proc.returncode != 0:
        raise AssertionError(f"in the container: {script!r} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _show(*props: str) -> dict[str, str]:
    out = _sh(f"systemctl show tocsin.service -p {','.join(props)}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _get(path: str) -> str:
    """GET from the daemon's listener, inside the container (its network is its own)."""
    return _sh("python3 -c 'import sys, urllib.request; "
               "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "
               f"http://127.0.0.1:9469{path}").stdout


def _sample(name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(_get("/metrics")):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def _journal() -> list[dict]:
    out = _sh("journalctl -u tocsin.service -o json --no-pager").stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _message(entry: dict) -> str:
    value = entry.get("MESSAGE", "")
    return bytes(value).decode(errors="replace") if isinstance(value, list) else value


def _wheelhouse(tmp: Path) -> Path:
    """tocsin's wheel plus its dependencies' wheels; dependencies cached by their requirements."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    key = hashlib.sha256(("\n".join(deps) + sys.version).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tocsin-e2e" / f"wheels-{key}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    if not cache.is_dir():
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
        subprocess.run([*pip, "wheel", "--wheel-dir", str(partial), *deps], check=True, timeout=600)
        partial.rename(cache)
    wheels = tmp / "wheels"
    shutil.copytree(cache, wheels)
    # Build tocsin from a copy of the tree, so the build leaves nothing behind in the repository.
    src = tmp / "src"
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(src)], check=True, timeout=600)
    return wheels


CONFIG = """
global: {listen_address: "127.0.0.1:9469", interval: 1s, timeout: 500ms, state_dir: /var/lib/tocsin}
logging:
  level: info
  file: {path: /var/log/tocsin/tocsin.log, format: json, max_bytes: 1MiB, backup_count: 2}
  syslog: {address: /dev/log, facility: local3, level: warning}
targets:
  - {name: demo, url: "http://127.0.0.1:8000/health", labels: {service: demo}}
  - {name: closed, tcp: {address: "127.0.0.1:1"}}
  - {name: ping4, icmp: {host: 127.0.0.1, packets: 2, packet_interval: 50ms}}
  - {name: ping6, icmp: {host: "::1"}}
"""

# The test's drop-in: a short watchdog, and the hang hook (never set outside tests).
DROPIN = """[Service]
WatchdogSec=3s
RestartSec=500ms
Environment=TOCSIN_TEST_HOOKS=1
"""


def _write(path: str, text: str) -> None:
    _sh(f"mkdir -p $(dirname {path}) && cat > {path} <<'EOF'\n{text}EOF")


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    require_tool("systemd-nspawn")
    if os.geteuid() != 0:
        _skip_or_fail("systemd-nspawn needs root")
    if not BOOT.exists():
        _skip_or_fail(f"the systemd-e2e harness is missing ({BOOT})")
    tmp = tmp_path_factory.mktemp("e2e")
    wheels = _wheelhouse(tmp)
    env = {**os.environ, "SDE_PACKAGES": PACKAGES}
    up = subprocess.run([str(BOOT), "up", NAME, "--", f"--bind-ro={wheels}:/mnt/wheels", f"--bind-ro={REPO}:/mnt/tocsin"],
                        capture_output=True, text=True, env=env, timeout=600)
    try:
        if up.returncode != 0:
            if not IN_CI and "nspawn" in up.stderr.lower() and "failed" in up.stderr.lower():
                pytest.skip(f"systemd-nspawn cannot run here:\n{up.stderr[-2000:]}")
            raise AssertionError(f"boot.sh up failed:\n{up.stdout}\n{up.stderr}")
        yield
    finally:
        subprocess.run([str(BOOT), "down", NAME], capture_output=True, env=env, timeout=120)


@pytest.mark.usefixtures("container")
def test_service_start_reload_journal_watchdog_stop():
    # Install exactly as an operator would, from the wheels alone.
    install = _sh("WHEELS=/mnt/wheels sh /mnt/tocsin/systemd/install.sh install", timeout=300)
    assert "installing /etc/tocsin/tocsin.yml" in install.stdout, install.stdout
    verify = _sh("systemd-analyze verify /etc/systemd/system/tocsin.service", check=False)
    assert verify.returncode == 0 and not verify.stderr.strip() and not verify.stdout.strip(), verify
    # The shipped configuration loads the shipped rules and routes alerts to the journal; tocsin is on PATH.
    shipped = _sh("tocsin check config /etc/tocsin/tocsin.yml").stdout
    assert "rules in 1 rule files" in shipped and " 0 rules" not in shipped, shipped
    assert _sh("readlink /usr/local/bin/tocsin").stdout.strip() == "/opt/tocsin/venv/bin/tocsin"

    _sh("systemd-run --unit=demo /opt/tocsin/venv/bin/tocsin demo-target --port 8000")
    _write("/etc/tocsin/tocsin.yml", CONFIG)
    _write("/etc/systemd/system/tocsin.service.d/test.conf", DROPIN)
    _sh("systemctl daemon-reload")

    # start returns only after READY=1: the listener answers at once, no polling.
    _sh("systemctl start tocsin.service", timeout=90)
    state = _show("ActiveState", "SubState", "MainPID", "StatusText", "NRestarts")
    assert (state["ActiveState"], state["SubState"]) == ("active", "running"), state
    assert _get("/-/ready").strip() != ""
    first_pid = state["MainPID"]
    wait_for(lambda: _sample("probe_success", target="demo", service="demo") == 1, timeout=20,
             what="the demo target probed")
    try:
        wait_for(lambda: "4 targets: 3 up, 1 down" in _show("StatusText")["StatusText"], timeout=10,
                 what="STATUS= with the targets' health")
    except AssertionError as exc:  # say which target is not as expected, and why
        raise AssertionError(f"{exc}\n{_get('/api/v1/targets')}") from None
    # ICMP under the hardened unit: an unprivileged ping socket, no capability (install.sh opened ping_group_range).
    assert _sample("probe_success", target="ping4") == 1 and _sample("probe_icmp_packets_received", target="ping4") == 2
    assert _sample("probe_success", target="ping6") == 1 and _sample("probe_ip_protocol", target="ping6") == 6

    # reload: a new target is probed, the removed one leaves /metrics, same process.
    _write("/etc/tocsin/tocsin.yml", CONFIG.replace("name: closed", "name: demo-again")
           .replace('tcp: {address: "127.0.0.1:1"}', 'url: "http://127.0.0.1:8000/"'))
    _sh("systemctl reload tocsin.service")
    wait_for(lambda: _sample("probe_success", target="demo-again") == 1, timeout=20,
             what="the target added by reload probed")
    assert 'target="closed"' not in _get("/metrics")
    assert _show("MainPID")["MainPID"] == first_pid

    # The journal has the daemon's own lines with the right priorities, no timestamps of their own.
    entries = _journal()
    ours = [e for e in entries if e.get("_PID") == first_pid and e.get("_TRANSPORT") == "stdout"]
    by_message = {_message(e).split(" target=")[0].split(" listen=")[0]: e["PRIORITY"] for e in ours}
    assert by_message.get("tocsin started") == "6", by_message
    assert by_message.get("target is down: connect: connection refused") == "4" or any(
        m.startswith("target is down") and p == "4" for m, p in by_message.items()), by_message
    assert by_message.get("SIGHUP received: reloading configuration") == "6", by_message
    assert not any(_message(e)[:4].isdigit() or _message(e).startswith("<") for e in ours)
    # /dev/log reaches journald under the unit's sandbox (PrivateDevices=yes and all).
    syslog = [e for e in entries if e.get("_TRANSPORT") == "syslog" and "target is down" in _message(e)]
    assert syslog and syslog[0]["PRIORITY"] == "4" and syslog[0]["SYSLOG_FACILITY"] == "19", syslog[:1]
    # The JSON log file is written under LogsDirectory= (DynamicUser keeps it in /var/log/private).
    lines = _sh("cat /var/log/tocsin/tocsin.log").stdout.splitlines()
    assert any(json.loads(line)["message"] == "tocsin started" for line in lines)

    # A hung scheduler stops the watchdog pings: systemd kills and restarts the service.
    _sh("systemctl kill --kill-who=main -s SIGUSR2 tocsin.service")
    wait_for(lambda: _show("NRestarts")["NRestarts"] == "1", timeout=20, interval=0.5, what="the watchdog restart")
    wait_for(lambda: _show("ActiveState")["ActiveState"] == "active", timeout=20, what="active again")
    second_pid = _show("MainPID")["MainPID"]
    assert second_pid not in ("0", first_pid)
    assert any("Watchdog timeout" in _message(e) for e in _journal()), "systemd's own watchdog verdict"
    wait_for(lambda: "demo-again" in _get("/api/v1/targets"), what="the restarted daemon serving")

    # stop: SIGTERM, a clean exit 0, well inside TimeoutStopSec.
    from conftest import scaled

    started = time.monotonic()
    _sh("systemctl stop tocsin.service", timeout=60)
    assert time.monotonic() - started < scaled(10)
    state = _show("ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    assert state["ActiveState"] == "inactive" and state["Result"] == "success", state
    assert state["ExecMainStatus"] == "0", state
    assert any(_message(e).startswith("tocsin stopped") and e.get("_PID") == second_pid for e in _journal())

    # A broken configuration exits 78 and is not restarted in a loop.
    _write("/etc/tocsin/tocsin.yml", CONFIG.replace("interval: 1s", "interval: often"))
    assert _sh("systemctl start tocsin.service", check=False, timeout=60).returncode != 0
    restarts = _show("NRestarts")["NRestarts"]
    time.sleep(1.5)  # three RestartSec= periods: a restart would have happened
    state = _show("ActiveState", "ExecMainStatus", "NRestarts")
    assert state == {"ActiveState": "failed", "ExecMainStatus": "78", "NRestarts": restarts}, state
    errors = [e for e in _journal() if e.get("PRIORITY") == "3" and "global.interval" in _message(e)]
    assert errors and re.search(r"/etc/tocsin/tocsin\.yml:\d+:\d+: global\.interval", _message(errors[-1])), errors

    # uninstall removes the service and the program, keeps the configuration.
    _sh("sh /mnt/tocsin/systemd/install.sh uninstall")
    assert _sh("test -e /etc/systemd/system/tocsin.service || test -e /opt/tocsin || test -e /usr/local/bin/tocsin",
               check=False).returncode != 0
    assert _sh("test -f /etc/tocsin/tocsin.yml", check=False).returncode == 0


SHARDED = """
global: {listen_address: "127.0.0.1:9469", interval: 1s, timeout: 500ms, state_dir: /var/lib/tocsin}
cluster: {shards: 2}
logging:
  file: {path: /var/log/tocsin/tocsin.log, format: json}
targets:
""" + "".join(f'  - {{name: t{i}, tcp: {{address: "127.0.0.1:1"}}}}\n' for i in range(8))


@pytest.mark.usefixtures("container")
def test_two_shards_run_as_instances_of_the_template_unit():
    from tocsin.cluster.config import shard_of

    _write("/etc/tocsin/tocsin.yml", SHARDED)  # kept by the install, which checks it
    _sh("WHEELS=/mnt/wheels sh /mnt/tocsin/systemd/install.sh install", timeout=300)
    assert _sh("systemd-analyze verify /etc/systemd/system/tocsin@0.service", check=False).returncode == 0
    _sh("systemctl daemon-reload && systemctl start tocsin@0.service tocsin@1.service", timeout=90)
    for shard in (0, 1):
        out = _sh("python3 -c 'import sys, urllib.request; "
                  "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "
                  f"http://127.0.0.1:{9469 + shard}/api/v1/targets").stdout
        names = {t["name"] for t in json.loads(out)["data"]}
        assert names == {f"t{i}" for i in range(8) if shard_of(f"t{i}", 2) == shard}, (shard, names)
        state = _sh(f"systemctl show tocsin@{shard}.service -p ActiveState,SubState").stdout
        assert "ActiveState=active" in state and "SubState=running" in state, state
    # One file, separate state and log files, one shared dynamic user.
    _sh("test -d /var/lib/tocsin/shard-0 && test -d /var/lib/tocsin/shard-1")
    wait_for(lambda: _sh("test -s /var/log/tocsin/tocsin-shard1.log", check=False).returncode == 0,
             timeout=10, what="shard 1's log file")
    journal = _sh("journalctl -u tocsin@1.service -o cat --no-pager").stdout
    assert "tocsin started" in journal and "shard=1/2" in journal, journal[-2000:]
    _sh("systemctl stop tocsin@0.service tocsin@1.service", timeout=60)
    _sh("sh /mnt/tocsin/systemd/install.sh uninstall")
    assert _sh("test -e /etc/systemd/system/tocsin@.service", check=False).returncode != 0

"""Logging of a real daemon: rotating JSON files, syslog, journal priorities, failing sinks.

Every destination is real: files in tmp_path, a syslog server that is an AF_UNIX datagram
socket bound by the test, stderr recognised as the journal by JOURNAL_STREAM's device:inode,
a directory that cannot exist (its parent is a file) and /dev/full as a full disk.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from conftest import free_port, wait_for


def _down_target(interval: str = "100ms") -> str:
    """A target on a closed port: a failure (and a debug or warning line) every interval."""
    return f'  - {{name: gone, tcp: {{address: "127.0.0.1:{free_port()}"}}, interval: {interval}, timeout: 50ms}}'


def _config(logging_yaml: str, targets: str | None = None) -> str:
    return f"""global: {{listen_address: "127.0.0.1:{{port}}", interval: 1s, timeout: 500ms}}
logging:
{logging_yaml}
targets:
{targets or _down_target()}
"""


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_file_lines_parse_carry_fields_and_rotate(daemon_factory, tmp_path):
    logdir = tmp_path / "logs"
    daemon = daemon_factory(_config(f"""  level: debug
  file: {{path: "{logdir}/tocsin.log", format: json, max_bytes: 4000, backup_count: 2}}"""))
    wait_for(lambda: (logdir / "tocsin.log.2").exists(), timeout=20, what="two rotations")
    time.sleep(0.3)
    files = sorted(logdir.iterdir())
    assert [f.name for f in files] == ["tocsin.log", "tocsin.log.1", "tocsin.log.2"], files  # backup_count
    for f in files[1:]:
        assert f.stat().st_size <= 4000 + 1000, f  # rotated before the record that would pass max_bytes
    records = [r for f in files for r in _json_lines(f)]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    failures = [r for r in records if r["message"].startswith("probe failed")]
    assert failures, records[:5]
    # Structured fields from the context: the target and the run's correlation id.
    assert all(r["target"] == "gone" and re.fullmatch(r"[0-9a-f]{32}", r["correlation_id"]) for r in failures)
    assert len({r["correlation_id"] for r in failures}) == len(failures), "one correlation id per run"
    assert daemon.sample("tocsin_log_errors_total", handler="file") in (None, 0)

    # logrotate's way: rename the file, then SIGHUP; the daemon reopens its path.
    (logdir / "tocsin.log").rename(logdir / "rotated-away.log")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: (logdir / "tocsin.log").exists() and any(
        r["message"].startswith("reload finished") for r in _json_lines(logdir / "tocsin.log")),
        what="the log file reopened at its path")
    assert daemon.stop() == 0


def test_syslog_records_reach_a_unix_datagram_socket(daemon_factory, tmp_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = tmp_path / "syslog.sock"
    server.bind(str(address))
    server.settimeout(10)
    try:
        daemon = daemon_factory(_config(f"""  level: info
  syslog: {{address: "{address}", facility: local3, level: warning}}""", _down_target("300ms")))
        datagram = server.recv(65536).decode()
        # <PRI> = facility local3 (19) * 8 + severity warning (4); ident with the pid; fields appended.
        assert datagram.startswith(f"<156>tocsin[{daemon.proc.pid}]: tocsin: target is down: connect"), datagram
        assert "target=gone" in datagram and "correlation_id=" in datagram
        server.settimeout(0.5)
        with pytest.raises(socket.timeout):  # info lines (started, target up) stay below the level
            while True:
                extra = server.recv(65536).decode()
                assert "<156>" in extra and "target is down" not in extra, extra  # down once, not every run
        assert daemon.stop() == 0
    finally:
        server.close()


def test_missing_syslog_socket_is_reported_once_counted_and_picked_up_later(daemon_factory, tmp_path):
    address = tmp_path / "later.sock"
    daemon = daemon_factory(_config(f"""  syslog: {{address: "{address}", facility: daemon, level: debug}}"""))
    wait_for(lambda: (daemon.sample("tocsin_log_errors_total", handler="syslog") or 0) >= 3,
             what="failed syslog records counted")
    wait_for(lambda: (daemon.sample("tocsin_probes_total", target="gone", result="failure") or 0) >= 3,
             what="probing goes on")
    output = daemon.output()
    assert output.count(f"syslog socket {address} does not exist") == 1, output
    assert "log handler syslog failed" not in output, "reported once, then only counted"

    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(address))
    server.settimeout(10)
    try:
        daemon.proc.send_signal(signal.SIGHUP)  # something to log
        assert "SIGHUP received" in server.recv(65536).decode()  # the handler reconnects by itself
    finally:
        server.close()
    assert daemon.stop() == 0


def test_journal_lines_carry_priority_prefixes_and_no_timestamp(daemon_factory):
    daemon = daemon_factory(_config("  level: info", _down_target("300ms")), start=False)
    daemon.log.touch()  # the daemon's stderr: journald's stream, as far as JOURNAL_STREAM says
    st = os.stat(daemon.log)
    daemon._env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    daemon.start()
    wait_for(lambda: "target is down" in daemon.output(), what="a warning line")
    assert daemon.stop() == 0
    lines = daemon.output().splitlines()
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert any(line.startswith("<6>tocsin started") for line in lines), lines
    assert any(line.startswith("<4>target is down: connect") and "target=gone" in line for line in lines), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines), "journald adds the time"


def test_journal_stream_of_another_file_is_not_the_journal(daemon_factory, tmp_path):
    """A child whose stderr was redirected inherits JOURNAL_STREAM; its identity must match."""
    other = tmp_path / "elsewhere"
    other.touch()
    st = os.stat(other)
    daemon = daemon_factory(_config("  level: info"), env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert daemon.stop() == 0
    first = daemon.output().splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO tocsin: tocsin started", first), first


def test_unwritable_log_dir_does_not_stop_the_daemon(daemon_factory, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be\n")  # fails even for root
    daemon = daemon_factory(_config(f"""  file: {{path: "{blocker}/logs/tocsin.log"}}"""))
    assert daemon.sample("tocsin_log_errors_total", handler="file") >= 1  # counted from before the daemon existed
    wait_for(lambda: (daemon.sample("tocsin_probes_total", target="gone", result="failure") or 0) >= 3,
             what="probing goes on")
    assert daemon.output().count("cannot open log file") == 1
    assert daemon.stop() == 0


def test_full_disk_is_counted_per_record_and_reported_once(daemon_factory):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    daemon = daemon_factory(_config("""  level: debug
  file: {path: /dev/full, format: json}"""))
    wait_for(lambda: (daemon.sample("tocsin_log_errors_total", handler="file") or 0) >= 5,
             what="records lost to a full disk counted")
    wait_for(lambda: (daemon.sample("tocsin_probes_total", target="gone", result="failure") or 0) >= 5,
             what="probing goes on")
    output = daemon.output()
    assert output.count("log handler file failed") == 1, output
    assert "No space left on device" in output or "ENOSPC" in output or "Errno 28" in output, output
    assert daemon.stop() == 0


def test_journal_json_console_lines_carry_priority_prefixes(daemon_factory):
    daemon = daemon_factory(_config("  console: {format: json}", _down_target("300ms")), start=False)
    daemon.log.touch()
    st = os.stat(daemon.log)
    daemon._env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    daemon.start()
    wait_for(lambda: "target is down" in daemon.output(), what="a warning line")
    assert daemon.stop() == 0
    records = {}
    for line in daemon.output().splitlines():
        match = re.fullmatch(r"<([0-7])>(\{.*\})", line)
        assert match, line
        record = json.loads(match.group(2))
        records[record["message"].split(":")[0]] = (match.group(1), record)
    assert records["tocsin started"][0] == "6"
    assert records["target is down"][0] == "4" and records["target is down"][1]["target"] == "gone"

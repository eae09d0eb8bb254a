"""`make demo`'s promise: with etc/demo.yml, a newcomer sees an alert fire and resolve in the
daemon's log within two minutes, driven by `tocsin load` against the demo target."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import requests

from conftest import free_port, scaled, wait_for
from tocsin import demo

ROOT = Path(__file__).resolve().parent.parent


def _serve_demo() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), demo._DemoHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_overload_endpoint_fails_while_busy_and_recovers_after():
    server = _serve_demo()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with requests.Session() as session:
            assert session.get(url + "/simulate/overload", timeout=5).status_code == 200
            for _ in range(int(demo.BUSY_RATE * demo.BUSY_WINDOW) + 5):
                session.get(url + "/health", timeout=5)
            assert session.get(url + "/simulate/overload", timeout=5).status_code == 503
            time.sleep(demo.BUSY_WINDOW + 0.2)
            assert session.get(url + "/simulate/overload", timeout=5).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_make_demo_shows_an_alert_fire_and_resolve_within_two_minutes(tmp_path):
    """The same files `make demo` uses, on free ports: target, daemon, then 15 s of load."""
    started = time.monotonic()
    demo_port, daemon_port = free_port(), free_port()
    config = (ROOT / "etc" / "demo.yml").read_text().replace("127.0.0.1:8000", f"127.0.0.1:{demo_port}")
    config = config.replace("127.0.0.1:9469", f"127.0.0.1:{daemon_port}")
    (tmp_path / "demo.yml").write_text(config)
    (tmp_path / "demo-rules.yml").write_text((ROOT / "etc" / "demo-rules.yml").read_text())
    log = tmp_path / "daemon.out"
    tocsin = [sys.executable, "-m", "tocsin.cli"]
    target = subprocess.Popen([*tocsin, "demo-target", "--port", str(demo_port)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with log.open("wb") as out:
        daemon = subprocess.Popen([*tocsin, "run", "--config", "demo.yml"], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{daemon_port}/-/ready", timeout=2).ok, timeout=20,
                 what="daemon ready")
        time.sleep(2)  # a few good probes first, as `make demo` waits
        assert "alert firing" not in log.read_text(), "nothing fires before the load"
        load = subprocess.run([*tocsin, "load", "--duration", "15s", "--concurrency", "10", "--no-progress",
                               f"http://127.0.0.1:{demo_port}/simulate/error"],
                              capture_output=True, text=True, timeout=scaled(60))
        assert load.returncode == 0, load.stderr
        def resolved() -> str:
            text = log.read_text(errors="replace")
            return text if "alert resolved: DemoServiceDown on demo-api" in text else ""

        text = wait_for(resolved, timeout=100, interval=0.5, what="the alert to resolve")
    finally:
        for process in (daemon, target):
            process.terminate()
            process.wait(timeout=scaled(20))
    elapsed = time.monotonic() - started
    firing = text.index("alert firing: DemoServiceDown on demo-api")
    assert firing < text.index("alert resolved: DemoServiceDown on demo-api")
    assert elapsed < scaled(120), f"{elapsed:.0f}s from start to resolution"

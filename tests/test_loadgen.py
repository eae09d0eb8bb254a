"""`tocsin load` against the demo target: every request counted, failures by reason, percentiles."""

from __future__ import annotations

import re
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from conftest import free_port, scaled
from tocsin.cli import main
from tocsin.demo import _DemoHandler
from tocsin.loadgen import percentile, run_load


@pytest.fixture
def demo_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DemoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50, 95, 99)
    assert percentile([7.0], 0.99) == 7.0


def test_load_the_demo_target_and_summarise(demo_url, capsys):
    status = main(["load", f"{demo_url}/health", f"{demo_url}/simulate/error", "--requests", "200",
                   "--concurrency", "8", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("load: 200 requests to 2 URLs in "), out
    ok = int(re.search(r"success +(\d+)", out).group(1))
    failed = int(re.search(r"failures +(\d+)", out).group(1))
    assert ok + failed == 200
    # /health always answers 200; /simulate/error fails 80 % of the time, with HTTP 500.
    assert f"{demo_url}/health: 100 requests, 100 succeeded" in out
    assert 50 <= failed <= 100 and f"HTTP 500 ×{failed}" in out
    assert re.search(r"latency +min [\d.]+ ms +avg [\d.]+ ms +p50 [\d.]+ ms +p95 [\d.]+ ms +p99 [\d.]+ ms +max", out)
    assert re.search(r"throughput +[\d.]+ requests/s", out)


def test_the_error_rate_limit_sets_the_exit_status(demo_url, capsys):
    args = ["load", f"{demo_url}/simulate/error", "-n", "50", "-c", "5", "--no-progress"]
    assert main([*args, "--max-error-rate", "0.05"]) == 1
    assert "exceeds 5.0 %" in capsys.readouterr().err
    assert main([*args, "--max-error-rate", "1"]) == 0


def test_a_closed_port_is_counted_not_raised():
    run = run_load([f"http://127.0.0.1:{free_port()}/"], requests_total=20, concurrency=4, timeout=2)
    assert len(run.outcomes) == 20 and run.failures == 20
    assert {o.reason for o in run.outcomes} == {"connection refused"}


def test_a_duration_bounds_the_run(demo_url):
    started = time.monotonic()
    run = run_load([f"{demo_url}/health"], requests_total=None, concurrency=4, duration=0.5)
    assert time.monotonic() - started < 0.5 + scaled(2)
    assert len(run.outcomes) > 0 and run.failures == 0

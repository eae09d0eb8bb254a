"""The gRPC health probe against a real grpcio server with grpcio-health-checking's servicer."""

from __future__ import annotations

import asyncio
import datetime
from concurrent import futures

import grpc
import pytest
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import free_port
from tocsin import aio
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.metrics.probe_series import ProbeMetrics
from tocsin.probes import run_probe
from tocsin.probes.grpc import decode_status, encode_request

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServer:
    """A grpcio server whose health servicer says SERVING for "" and "app", NOT_SERVING for "down"."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.health.set("", SERVING)
        self.health.set("app", SERVING)
        self.health.set("down", NOT_SERVING)
        self.port = free_port()
        if credentials is None:
            self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        else:
            self.server.add_secure_port(f"127.0.0.1:{self.port}", credentials)

    def __enter__(self) -> "HealthServer":
        self.server.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.stop(0).wait(5)


def _probe(grpc_options: dict, timeout: str = "3s") -> tuple:
    target = parse_config({"targets": [{"name": "svc", "timeout": timeout, "grpc": grpc_options}]}, "test").targets[0]

    async def once():
        return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)

    result = aio.run(once())
    metrics = ProbeMetrics()
    metrics.ensure(target)
    metrics.record(result)
    return result, metrics.render()


def _serving_samples(text: str) -> dict[str, str]:
    prefix = 'probe_grpc_healthcheck_response{target="svc",serving_status="'
    return dict(line[len(prefix):].split('"} ') for line in text.splitlines() if line.startswith(prefix))


def test_health_messages_round_trip_with_the_generated_code():
    for service in ("", "app", "x" * 300, "ünï"):
        assert health_pb2.HealthCheckRequest.FromString(encode_request(service)).service == service
    for status in (0, 1, 2, 3):
        assert decode_status(health_pb2.HealthCheckResponse(status=status).SerializeToString()) == status


def test_healthy_server_and_service():
    with HealthServer() as server:
        for service in ("", "app"):
            result, text = _probe({"address": f"127.0.0.1:{server.port}", "service": service})
            assert result.success, result
            assert _serving_samples(text) == {"UNKNOWN": "0", "SERVING": "1", "NOT_SERVING": "0", "SERVICE_UNKNOWN": "0"}
            assert 'probe_grpc_status_code{target="svc"} 0\n' in text
            assert 'probe_grpc_ssl{target="svc"} 0\n' in text
            assert 'probe_grpc_duration_seconds{target="svc",phase="check"} ' in text
            assert 'probe_ip_protocol{target="svc"} 4\n' in text


def test_not_serving_service():
    with HealthServer() as server:
        result, text = _probe({"address": f"127.0.0.1:{server.port}", "service": "down"})
    assert (result.success, result.reason) == (False, "not_serving"), result
    assert "NOT_SERVING" in result.message
    assert _serving_samples(text) == {"UNKNOWN": "0", "SERVING": "0", "NOT_SERVING": "1", "SERVICE_UNKNOWN": "0"}
    assert 'probe_grpc_status_code{target="svc"} 0\n' in text


def test_unknown_service_is_status_not_found():
    with HealthServer() as server:
        result, text = _probe({"address": f"127.0.0.1:{server.port}", "service": "nope"})
    assert (result.success, result.reason) == (False, "not_serving"), result
    assert "does not know the service" in result.message
    assert 'probe_grpc_status_code{target="svc"} 5\n' in text  # NOT_FOUND, as blackbox reports it
    assert set(_serving_samples(text).values()) == {"0"}


def test_closed_port_is_unavailable():
    result, text = _probe({"address": f"127.0.0.1:{free_port()}"}, timeout="2s")
    assert (result.success, result.reason) == (False, "connect"), result
    assert 'probe_grpc_status_code{target="svc"} 14\n' in text  # UNAVAILABLE


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1",
                         not_after=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30))
    directory = tmp_path_factory.mktemp("grpc-tls")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    credentials = grpc.ssl_server_credentials([(cert.private_key_pem.bytes(), b"".join(
        blob.bytes() for blob in cert.cert_chain_pems))])
    return str(ca_file), credentials


def test_tls_verified_with_ca_and_reports_the_chain(tls_files):
    ca_file, credentials = tls_files
    with HealthServer(credentials) as server:
        address = f"127.0.0.1:{server.port}"
        result, text = _probe({"address": address, "tls": True, "tls_config": {"ca_file": ca_file,
                                                                              "server_name": "localhost"}})
        assert result.success, result
        assert 'probe_grpc_ssl{target="svc"} 1\n' in text
        days = (result.facts["ssl_leaf_cert_expiry"] - datetime.datetime.now().timestamp()) / 86400
        assert 29 < days < 31
        assert result.info["tls_version"].startswith("TLS")
        # Without the CA the server's certificate is refused; plain text to a TLS port fails too.
        untrusted, _ = _probe({"address": address, "tls": True})
        assert not untrusted.success and untrusted.reason == "tls", untrusted
        plain, _ = _probe({"address": address}, timeout="2s")
        assert not plain.success, plain


def test_insecure_skip_verify_is_refused_at_load():
    with pytest.raises(ConfigError, match="insecure_skip_verify is not available for gRPC"):
        parse_config({"targets": [{"name": "svc", "grpc": {"address": "127.0.0.1:1", "tls": True,
                                                            "tls_config": {"insecure_skip_verify": True}}}]}, "test")


def test_tocsin_probe_command_takes_the_kinds_options():
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with HealthServer() as server:
        def probe(*options: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "tocsin.cli", "probe", "--kind", "grpc",
                                   f"127.0.0.1:{server.port}", *options], capture_output=True, text=True, env=env,
                                  timeout=60)

        healthy = probe("--set", "service=app")
        assert healthy.returncode == 0 and f"grpc probe of 127.0.0.1:{server.port}: success" in healthy.stdout
        down = probe("--set", "service=down")
        assert down.returncode == 1 and "not_serving" in down.stdout, down.stdout
        bad = probe("--set", "service")
        assert bad.returncode == 2 and "give KEY=VALUE" in bad.stderr
    push = subprocess.run([sys.executable, "-m", "tocsin.cli", "probe", "--kind", "push", "job"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert push.returncode == 2 and "a push target is not probed" in push.stderr


def test_daemon_probes_grpc_on_its_event_loop(daemon_factory):
    with HealthServer() as server:
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", state_dir: "{{dir}}/state"}}
targets:
  - {{name: app, interval: 500ms, grpc: {{address: "127.0.0.1:{server.port}", service: app}}}}
  - {{name: down, interval: 500ms, grpc: {{address: "127.0.0.1:{server.port}", service: down}}}}
""")
        from conftest import wait_for

        wait_for(lambda: daemon.sample("probe_success", target="app") == 1
                 and daemon.sample("probe_success", target="down") == 0, timeout=10, what="both gRPC targets probed")
        assert daemon.sample("probe_grpc_healthcheck_response", target="app", serving_status="SERVING") == 1
        assert daemon.sample("probe_grpc_healthcheck_response", target="down", serving_status="NOT_SERVING") == 1
        assert daemon.sample("tocsin_probe_failure_reason", target="down", reason="not_serving") == 1
        server.health.set("app", NOT_SERVING)
        wait_for(lambda: daemon.sample("probe_success", target="app") == 0, timeout=5, what="app no longer serving")
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.output(), daemon.output()

"""Configuration: every error names file, key path and what was expected; secrets stay secret."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tocsin.config import load_config, parse_config
from tocsin.errors import ConfigError
from tocsin.units import format_duration, parse_duration, parse_size

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400),
                                           ("1d", 86400), ("2w", 1209600), ("1m30s500ms", 90.5), ("0", 0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1.5s", "30x", "5s1m", "-1s", "1 h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_round_trip():
    assert format_duration(5400.5) == "1h30m500ms"


@pytest.mark.parametrize("value, size", [("10MiB", 10 * 2**20), ("1KB", 1000), ("512", 512), (2048, 2048), ("1.5KiB", 1536)])
def test_sizes(value, size):
    assert parse_size(value) == size


def errors_of(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "tocsin.yml")
    return info.value.errors


def test_every_error_reported_with_file_and_key_path():
    errors = errors_of({
        "global": {"interval": "10s", "bogus": 1},
        "targets": [
            {"name": "a", "url": "http://x/", "http": {"valid_status_codes": ["abc"]}},
            {"name": "b", "tcp": {"address": "nohost"}},
            {"name": "c", "url": "ftp://x", "interval": 5},
        ],
    })
    assert "tocsin.yml: global.bogus: unknown key" in errors
    assert "tocsin.yml: targets[0].http.valid_status_codes[0]: expected an integer" in errors
    assert "tocsin.yml: targets[1].tcp.address: expected host:port, such as 127.0.0.1:5432" in errors
    assert any(e.startswith("tocsin.yml: targets[2].url: expected an http") for e in errors)
    assert "tocsin.yml: targets[2].interval: expected a duration such as 30s, 5m or 1h30m" in errors


def test_cross_field_rules():
    assert errors_of({"targets": [{"name": "a", "url": "http://x/"}, {"name": "a", "url": "http://y/"}]}) == [
        "tocsin.yml: targets[1].name: duplicate target name 'a' (first at targets[0])"]
    assert any("give exactly one of url (HTTP), tcp, dns, icmp, grpc or push" in e
               for e in errors_of({"targets": [{"name": "a", "url": "http://x/", "tcp": {"address": "x:1"}}]}))
    assert errors_of({"targets": [{"name": "a", "url": "http://x/", "interval": "5s", "timeout": "10s"}]}) == [
        "tocsin.yml: targets[0].timeout: must not exceed the interval (10s > 5s)"]
    assert any("reserved" in e for e in errors_of({"targets": [{"name": "a", "url": "http://x/", "labels": {"target": "x"}}]}))


def test_cross_checks_apply_to_inherited_values():
    """A timeout longer than the inherited interval is refused exactly as one longer than a written one."""
    inherited = errors_of({"global": {"interval": "30s"}, "targets": [{"name": "a", "url": "http://x/", "timeout": "60s"}]})
    written = errors_of({"targets": [{"name": "a", "url": "http://x/", "timeout": "60s", "interval": "30s"}]})
    assert inherited == written == ["tocsin.yml: targets[0].timeout: must not exceed the interval (60s > 30s)"]
    assert errors_of({"global": {"interval": "1m"}, "targets": [
        {"name": "a", "tcp": {"address": "x:1"}, "backoff_when_down": {"max_interval": "30s"}}]}) == [
        "tocsin.yml: targets[0].backoff_when_down.max_interval: must be at least the interval"]
    # an inherited timeout is cut to the target's own interval, not refused
    (target,) = parse_config({"global": {"timeout": "10s"}, "targets": [
        {"name": "a", "url": "http://x/", "interval": "2s"}]}, "x").targets
    assert (target.interval, target.timeout) == (2, 2)


def test_kind_and_endpoint_come_from_the_probe_registry():
    config = parse_config({"targets": [{"name": "a", "url": "http://x/"}, {"name": "b", "tcp": {"address": "x:1"}},
                                       {"name": "c", "dns": {"query": "db.internal"}}]}, "x")
    assert [(t.kind, t.endpoint) for t in config.targets] == [
        ("http", "http://x/"), ("tcp", "x:1"), ("dns", "db.internal")]
    assert errors_of({"targets": [{"name": "a", "http": {}, "tcp": {"address": "x:1"}}]}) == [
        "tocsin.yml: targets[0]: http options need a url"]


def test_defaults_come_from_global():
    config = parse_config({"global": {"interval": "20s", "timeout": "3s", "retry": {"attempts": 3}},
                           "targets": [{"name": "a", "url": "http://x/"},
                                       {"name": "b", "url": "http://y/", "interval": "1m", "timeout": "10s"}]}, "x")
    a, b = config.targets
    assert (a.interval, a.timeout, a.retry.attempts) == (20, 3, 3)
    assert (b.interval, b.timeout) == (60, 10)
    assert config.global_.listen_address == "127.0.0.1:9469"


def test_config_objects_are_immutable():
    from pydantic import ValidationError

    config = parse_config({"targets": [{"name": "a", "url": "http://x/"}]}, "x")
    with pytest.raises(ValidationError):
        config.targets[0].name = "b"  # type: ignore[misc]


def test_secrets_from_file_and_env_are_never_shown(tmp_path, monkeypatch):
    secret_file = tmp_path / "password"
    secret_file.write_text("hunter2-from-file\n")
    monkeypatch.setenv("TOKEN", "token-from-env")
    config = parse_config({"targets": [{"name": "a", "url": "http://x/", "http": {
        "basic_auth": {"username": "u", "password_file": str(secret_file)},
        "bearer_token": "${TOKEN}"}}]}, "x")
    options = config.targets[0].http
    assert options.basic_auth.secret("password") == "hunter2-from-file"
    assert options.secret("bearer_token") == "token-from-env"
    text = repr(config) + str(config) + config.model_dump_json()
    assert "hunter2" not in text and "token-from-env" not in text


def test_missing_env_and_unreadable_secret_file_are_errors(tmp_path):
    errors = errors_of({"targets": [{"name": "a", "url": "http://x/", "http": {
        "bearer_token": "${TOCSIN_TEST_UNSET_VARIABLE}",
        "basic_auth": {"username": "u", "password_file": str(tmp_path / "missing")}}}]})
    assert "tocsin.yml: targets[0].http.bearer_token: environment variable TOCSIN_TEST_UNSET_VARIABLE is not set" in errors
    assert any(e.startswith("tocsin.yml: targets[0].http.basic_auth.password_file: cannot read secret file") for e in errors)


def test_both_inline_and_file_secret_is_an_error(tmp_path):
    (tmp_path / "s").write_text("x")
    errors = errors_of({"targets": [{"name": "a", "url": "http://x/", "http": {
        "bearer_token": "a", "bearer_token_file": str(tmp_path / "s")}}]})
    assert any("give bearer_token or bearer_token_file, not both" in e for e in errors)


def test_yaml_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("targets:\n  - name: a\n    url: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(bad) in str(info.value) and "line" in str(info.value)
    dup = tmp_path / "dup.yml"
    dup.write_text("global: {}\nglobal: {}\n")
    with pytest.raises(ConfigError, match="duplicate key 'global'"):
        load_config(dup)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tocsin.cli", *args], capture_output=True, text=True, timeout=60)


def test_check_config_command(tmp_path):
    ok = run_cli("check", "config", str(REPO / "etc" / "tocsin.yml"))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("global: {interval: often}\ntargets: [{name: a, url: 'http://x/', typo: 1}]\n")
    result = run_cli("check", "config", str(bad))
    assert result.returncode == 1
    assert f"{bad}:1:10: global.interval: expected a duration such as 30s, 5m or 1h30m, got 'often'" in result.stderr
    assert f"{bad}:2:39: targets[0].typo: unknown key" in result.stderr


def test_reload_reuses_unchanged_targets_but_rereads_secret_files(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("first")
    raw = {"targets": [{"name": "a", "url": "http://x/"},
                       {"name": "b", "url": "http://y/", "http": {"bearer_token_file": str(secret)}}]}
    first = parse_config(raw, "x")
    secret.write_text("rotated")
    raw["targets"].append({"name": "c", "url": "http://z/"})
    second = parse_config(raw, "x")
    assert [t.name for t in second.targets] == ["a", "b", "c"]
    assert second.targets[0] == first.targets[0]
    assert second.targets[1].http.secret("bearer_token") == "rotated"  # a file is always read again
    with pytest.raises(ConfigError):  # a broken load does not poison what the next one reuses
        parse_config({"targets": [{"name": "a", "url": "http://x/"}, {"name": "d", "url": "ftp://bad"}]}, "x")
    assert parse_config(raw, "x").targets[2].name == "c"


@pytest.mark.parametrize("text", ["293y", "106751d23h47m16s855ms", "10000000000y", "9" * 30 + "ms"])
def test_durations_beyond_what_go_holds_are_refused(text):
    with pytest.raises(ValueError, match="duration out of range"):
        parse_duration(text)
    assert parse_duration("106751d23h47m16s854ms") == 9223372036.854  # Go's time.Duration maximum, to the ms


@pytest.mark.parametrize("value", ["9" * 400 + "TiB", 2**63, "8388608TiB"])
def test_sizes_beyond_int64_are_refused(value):
    with pytest.raises(ValueError, match="size out of range"):
        parse_size(value)


def test_errors_from_a_file_name_the_line_and_column_and_suggest_the_key_meant(tmp_path):
    path = tmp_path / "tocsin.yml"
    path.write_text("global:\n  interval: 10s\n  Timeout: 5s\n"
                    "targets:\n  - name: a\n    url: http://x/\n    intervl: 5s\n"
                    "  - name: b\n    tcp: {adress: 'x:1'}\n"
                    "alerting:\n  route: {reciever: r}\n  receivers: [{name: r}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    errors = info.value.errors
    assert f"{path}:3:3: global.Timeout: unknown key (did you mean timeout?)" in errors
    assert f"{path}:7:5: targets[0].intervl: unknown key (did you mean interval?)" in errors
    assert f"{path}:9:11: targets[1].tcp.adress: unknown key (did you mean address?)" in errors
    assert f"{path}:11:11: alerting.route.reciever: unknown key (did you mean receiver?)" in errors


def test_merge_keys_and_anchors_work_and_keep_positions(tmp_path):
    path = tmp_path / "tocsin.yml"
    path.write_text("targets:\n  - &first {name: a, url: 'http://x/', interval: 10s, timeout: 2s}\n"
                    "  - <<: *first\n    name: b\n    timeout: 20s\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [f"{path}:5:5: targets[1].timeout: must not exceed the interval (20s > 10s)"]
    path.write_text(path.read_text().replace("20s", "3s"))
    targets = load_config(path).targets
    assert [(t.name, t.endpoint, t.interval, t.timeout) for t in targets] == [
        ("a", "http://x/", 10, 2), ("b", "http://x/", 10, 3)]


def test_listen_address_must_resolve():
    addresses = ["[::1]:9469", "127.0.0.1:9469"]
    try:  # a minimal container may have no /etc/hosts, and then no name for localhost either
        socket.getaddrinfo("localhost", 9469)
        addresses.append("localhost:9469")
    except OSError:
        pass
    for address in addresses:
        parse_config({"global": {"listen_address": address}}, "x")
    (error,) = errors_of({"global": {"listen_address": "no-such-host.invalid:9469"}})
    assert error.startswith("tocsin.yml: global.listen_address: cannot listen on 'no-such-host.invalid:9469': "
                            "host 'no-such-host.invalid' does not resolve ("), error

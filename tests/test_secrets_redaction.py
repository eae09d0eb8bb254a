"""The redaction rules one by one: which values are secrets, and the forms they are found in."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import quote

import hostile
from hostile import HostileServer
from tocsin import aio, redaction
from tocsin.config import parse_config
from tocsin.probes import run_probe


def _config(**receiver: object) -> dict:
    return {"targets": [{"name": "a", "url": "http://u:p%2Fw0rd-1@127.0.0.1:1/x",
                         "http": {"headers": {"Accept": "application/json", "X-Api-Key": "KeyHdr-77"}}}],
            "global": {"web": {"basic_auth_users": {"prom": "$2b$04$wCFxM5ak.phGZNThrOk6o.PleWxE.BzV1hBiTSqLhNDv3KEcr5NMO"}}},
            "alerting": {"route": {"receiver": "w"}, "receivers": [{"name": "w", **receiver}]}}


def test_every_kind_of_secret_is_collected_in_its_encodings():
    found = redaction.collect(parse_config(_config(webhook={
        "url": "http://127.0.0.1:2/hook/Path Sec", "headers": {"Authorization": "Basic " + base64.b64encode(
            b"hookuser:HookPw-3").decode()}}), "t.yml")).forms
    for form in ("p/w0rd-1", "p%2Fw0rd-1", base64.b64encode(b"u:p/w0rd-1").decode(),  # userinfo
                 "KeyHdr-77",                                                                        # header
                 "http://127.0.0.1:2/hook/Path Sec", "/hook/Path%20Sec", quote("/hook/Path%20Sec", safe=""),
                 "HookPw-3", "$2b$04$wCFxM5ak.phGZNThrOk6o.PleWxE.BzV1hBiTSqLhNDv3KEcr5NMO"):
        assert form in found, form
    assert "application/json" not in found, "a header that carries no credential is not a secret"


def test_redact_replaces_every_form_and_keeps_the_rest():
    redaction.install(["S3cr\u00e9t/val"])
    secret = "S3cr\u00e9t/val"
    for form in (secret, quote(secret, safe=""), quote(quote(secret), safe=""), json.dumps(secret)[1:-1],
                 quote(secret, safe="").replace("%C3%A9", "%c3%a9")):
        assert redaction.redact(f"before {form} after") == "before <secret> after", form
    assert redaction.redact("nothing to hide") == "nothing to hide"
    assert redaction.redact("S3CR%C3%A9T%2FVAL") == "S3CR%C3%A9T%2FVAL", "only the escapes ignore case"


def test_short_secrets_are_not_searched_for_in_free_text():
    redaction.install(["abc"])
    assert redaction.redact("abc abcdef") == "abc abcdef"


def test_a_url_shows_its_user_but_not_its_password():
    assert redaction.display_url("https://me:pa%40ss@h:8443/p?q=1") == "https://me:<secret>@h:8443/p?q=1"
    assert redaction.display_url("http://me@h/") == "http://me@h/"
    assert redaction.display_url("http://h/a@b") == "http://h/a@b"
    assert redaction.url_credentials("http://me:pa%40ss@h/") == ("me", "pa@ss")


def test_an_invalid_alertmanager_url_is_named_without_its_password():
    raw = _config(alertmanager={"urls": ["ftp://am:AmPw-55@h:9093"]})
    try:
        parse_config(raw, "t.yml")
    except Exception as exc:  # noqa: BLE001 - ConfigError, checked by its text
        text = "\n".join(getattr(exc, "errors", [str(exc)]))
    assert "alerting.receivers[0].alertmanager.urls" in text and "AmPw-55" not in text, text



def _sends(url: str, pattern: str, **http: object) -> bool:
    """Whether the HTTP probe of `url` ({host} filled in) sends a request matching `pattern`."""
    with HostileServer(hostile.echo_headers()) as server:  # the body is the request the probe sent
        host = server.url().split("//", 1)[1].split("/", 1)[0]
        target = parse_config({"targets": [{"name": "t", "url": url.format(host=host), "timeout": "2s", "http": {
            "fail_if_body_matches_regexp": [pattern], **http}}]}, "t").targets[0]

        async def once():
            return await run_probe(target.probe, asyncio.get_running_loop().time() + 2)

        result = aio.run(once())
    assert result.reason in ("", "body"), result.message
    return result.reason == "body"


def test_probe_url_userinfo_is_basic_auth_unless_credentials_are_given():
    userinfo = "Authorization: Basic " + base64.b64encode(b"me:pa@ss").decode()
    assert _sends("http://me:pa%40ss@{host}/", userinfo)
    assert _sends("http://me@{host}/", "Authorization: Basic " + base64.b64encode(b"me:").decode())
    assert not _sends("http://{host}/", "Authorization")
    # Credentials given explicitly win, as curl's -u and Go's Authorization header do.
    assert not _sends("http://me:pa%40ss@{host}/", userinfo, bearer_token="Tok-99")
    assert not _sends("http://me:pa%40ss@{host}/", userinfo, basic_auth={"username": "x", "password": "y"})
    assert not _sends("http://me:pa%40ss@{host}/", userinfo, headers={"authorization": "Token t"})
    assert not _sends("http://me:pa%40ss@{host}/", "me:pa")  # the request line and Host carry no userinfo

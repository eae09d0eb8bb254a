"""The one place that knows every secret of the configuration and keeps it out of text.

A secret leaks in forms other than the one in the file: percent-encoded in a URL or an
error message, as the path of a webhook URL in an HTTP library's log line, base64-encoded
in an `Authorization: Basic` header a receiver echoes back, JSON- or repr-escaped. So the
configuration is walked once per load (`collect`), every secret is expanded into the forms
it can take, and `redact(text)` replaces any of them with `<secret>`. Logging, receivers'
errors, the API and the status page all call `redact`, so a secret added to the
configuration is covered everywhere without anyone listing it again.

What counts as a secret: every `SecretStr` and `*_file` value, the password of a URL's
userinfo (`user:pass@host`), the values of headers whose name says they carry
credentials, and the web listener's password hashes. Secrets shorter than
`MIN_LENGTH` are not searched for in free text (a 2-character password would blank every
occurrence of those letters); the places that show them structurally still hide them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import re2
from pydantic import BaseModel, SecretStr

from .fields import SecretFile

MIN_LENGTH = 4
MASK = "<secret>"
# Header names whose values are credentials (compared lower-case; a name containing any of the
# words counts, so `X-Api-Key`, `X-Auth-Token` and `Private-Token` do).
_CREDENTIAL_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "key", "auth", "password", "passwd",
                            "credential", "session", "signature")
# Fields holding credentials that are neither SecretStr nor a header: name -> every value is one.
_CREDENTIAL_MAPS = frozenset({"basic_auth_users"})
# What requests keeps unescaped when it re-quotes a URL (requote_uri): the form in its errors.
_REQUOTE_SAFE = "!#$%&'()*+,/:;=?@[]~"
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # URL-unreserved: no encoding changes them


def _canonical(text: str) -> str:
    """Percent-escapes in upper case: `%2f` and `%2F` are the same byte."""
    return _PERCENT.sub(lambda m: m.group(0).upper(), text) if "%" in text else text


def _pattern_of(form: str) -> str:
    """An RE2 pattern for `form` whose percent-escapes match in either case."""
    parts = _PERCENT.split(form)
    escapes = _PERCENT.findall(form)
    out = [re2.escape(parts[0])]
    for escape, rest in zip(escapes, parts[1:], strict=True):
        out.append("%" + "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in escape[1:]))
        out.append(re2.escape(rest))
    return "".join(out)


def is_credential_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _CREDENTIAL_HEADER_WORDS)


def display_url(url: str) -> str:
    """`url` for people: the userinfo's password (if any) replaced by `<secret>`."""
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return url.replace(parts.netloc, f"{user}:{MASK}@{hostport}", 1)


def url_credentials(url: str) -> tuple[str, str] | None:
    """(user, password) of a URL's userinfo, percent-decoded; None without userinfo."""
    if "@" not in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def _encodings(text: str) -> set[str]:
    """`text` as it is and as URLs, requests, JSON and repr() write it."""
    if _PLAIN.fullmatch(text):  # most tokens: every encoding leaves them as they are
        return {text}
    return {text, quote(text, safe=""), quote(text, safe="/"), quote(text, safe=_REQUOTE_SAFE), quote_plus(text),
            json.dumps(text)[1:-1], repr(text)[1:-1]}


@functools.lru_cache(maxsize=65536)  # a reload finds the same secrets again: 10 000 targets' worth
def _forms_of(secret: str) -> frozenset[str]:
    # Twice: a path the HTTP library percent-encoded is encoded again by whoever echoes it.
    forms = {twice for once in _encodings(secret) for twice in _encodings(once)}
    return frozenset(form for form in forms if len(form) >= MIN_LENGTH)


class Secrets:
    """The secrets of one configuration, each with every form it can take in text."""

    def __init__(self) -> None:
        self.forms: dict[str, str] = {}  # form -> what replaces it

    def add(self, secret: str, replacement: str = MASK) -> None:
        """`secret` and its encoded forms (percent, JSON, repr), each replaced by `replacement`."""
        if len(secret) < MIN_LENGTH:
            return
        for form in _forms_of(secret):
            self.forms.setdefault(form, replacement)

    def add_url(self, url: str) -> None:
        """A URL that is a secret as a whole (a Slack or webhook URL): also its path and query."""
        self.add(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.scheme and len(path) > 1:
            self.add(path, "/" + MASK if path.startswith("/") else MASK)
        credentials = url_credentials(url)
        if credentials:
            self.add_basic(*credentials)

    def add_basic(self, user: str, password: str, smtp: bool = False) -> None:
        """A username and password: the password, and the base64 forms HTTP (and SMTP) send."""
        self.add(password)
        if not password:
            return
        tokens = [f"{user}:{password}"] + ([f"\0{user}\0{password}", password] if smtp else [])
        for token in tokens:
            self.add(base64.b64encode(token.encode()).decode())

    def add_header(self, value: str) -> None:
        """A credential header's value; for `Scheme token`, the token too (decoded if Basic)."""
        self.add(value)
        scheme, _, token = value.strip().partition(" ")
        if not token:
            return
        self.add(token.strip())
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return
            self.add_basic(user, password)


# The forms found in each model object of the last configuration, by identity. Models are
# immutable, and a reload reuses the validated objects of unchanged targets, so a reload of
# 10 000 targets walks only what changed (the walk was 0.2 s of such a reload).
_Memo = dict[int, tuple[BaseModel, dict[str, str]]]
_memo: _Memo = {}
_memo_lock = threading.Lock()


def collect(config: Any) -> Secrets:
    """Every secret of a validated configuration (a pydantic model tree)."""
    global _memo
    found = Secrets()
    used: _Memo = {}
    with _memo_lock:
        _walk(config, "", found, used)
        _memo = used
    return found


def _secret_text(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretFile):
        return value.value.get_secret_value()
    return None


def _walk(value: Any, name: str, found: Secrets, used: _Memo) -> None:
    text = _secret_text(value)
    if text is not None:
        if "://" in text:
            found.add_url(text)
        else:
            found.add(text)
    elif isinstance(value, BaseModel):
        hit = _memo.get(id(value))
        if hit is not None and hit[0] is value:
            forms = hit[1]
        else:
            own = Secrets()
            for field in type(value).model_fields:
                _walk(getattr(value, field), field, own, used)
            _walk_pairs(value, own)
            forms = own.forms
        used[id(value)] = (value, forms)
        for form, replacement in forms.items():
            found.forms.setdefault(form, replacement)
    elif isinstance(value, str):
        if "@" in value and "://" in value:
            credentials = url_credentials(value)
            if credentials:
                found.add_basic(*credentials)
    elif isinstance(value, dict):
        if name == "headers":
            for header, header_value in value.items():
                if isinstance(header_value, str) and is_credential_header(str(header)):
                    found.add_header(header_value)
        elif name in _CREDENTIAL_MAPS:
            for credential in value.values():
                if isinstance(credential, str):
                    found.add(credential)
        else:
            for item in value.values():
                _walk(item, "", found, used)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, name, found, used)


def _walk_pairs(model: BaseModel, found: Secrets) -> None:
    """A `*password` next to its `*username`: the encodings of the pair (Basic, SMTP AUTH)."""
    for field in type(model).model_fields:
        if not field.endswith("password"):
            continue
        user = getattr(model, field.replace("password", "username"), None)
        password = model.secret(field) if hasattr(model, "secret") else None
        if isinstance(user, str) and password:
            found.add_basic(user, password, smtp=field.startswith("auth_"))  # SMTP AUTH PLAIN and LOGIN


class Redactor:
    """Replaces every form of every known secret in a text, in RE2 passes linear in the text.

    One alternation per `CHUNK` forms: RE2's automaton for one alternation of 100 000 forms
    (10 000 targets with a password each) outgrows its memory budget and falls back to a
    slow path, while a few hundred forms in one pass cost about what one form does.
    """

    CHUNK = 2000

    def __init__(self, forms: dict[str, str]) -> None:
        self._forms = {_canonical(form): replacement for form, replacement in forms.items()}
        # Longest first: the whole URL is replaced before its path could be.
        alternatives = sorted(self._forms, key=len, reverse=True)
        options = re2.Options()
        options.max_mem = 64 << 20
        self._patterns = [re2.compile("|".join(_pattern_of(a) for a in alternatives[i:i + self.CHUNK]), options)
                          for i in range(0, len(alternatives), self.CHUNK)]

    def __call__(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(self._replacement, text)
        return text

    def _replacement(self, match: Any) -> str:
        return self._forms[_canonical(match.group(0))]


_lock = threading.Lock()
_known: dict[str, str] = {}
_active = Redactor({})


def install(secrets: Secrets | Iterable[str]) -> None:
    """Add these secrets to what `redact` removes, for the life of the process.

    Secrets are added, never dropped: after a reload, notifications queued under the old
    configuration may still be delivered (and fail) with the old secrets, and a rotated
    secret is no less secret for being old.
    """
    global _active
    if not isinstance(secrets, Secrets):
        plain = Secrets()
        for secret in secrets:
            plain.add(secret)
        secrets = plain
    with _lock:
        new = {form: replacement for form, replacement in secrets.forms.items() if form not in _known}
        if not new:
            return
        _known.update(new)
        _active = Redactor(_known)


def redact(text: str) -> str:
    """`text` with every form of every installed secret replaced by `<secret>`."""
    return _active(text)


def redact_json(value: Any) -> Any:
    """A JSON-like value with every string, keys included, passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_json(k): redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value

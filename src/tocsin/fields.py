"""The configuration's field vocabulary: durations, sizes, host:port, regexps, files, secrets.

Every part of tocsin that owns options (probes, receivers, logging, the web listener)
builds its models from these types, so this module imports nothing of tocsin but `units`:
any module can import it first, and the root schema can import the parts without a cycle.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    model_validator,
)

from .units import parse_duration, parse_size, shown

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset({"target", "result", "job", "instance", "le"})


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    return parse_duration(value)


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("expected a duration greater than 0")
    return value


def _size(value: Any) -> int:
    return parse_size(value)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit() and len(port) <= 5) or not 0 < int(port) < 65536:
        raise ValueError("expected host:port, such as 127.0.0.1:5432")
    return value


def _listen_address(value: str) -> str:
    """A host:port whose host resolves now: a name that does not is a mistake in the file, not
    something to find out at start-up (a port in use, on the other hand, is found at start-up)."""
    host, _, port = _host_port(value).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cannot listen on {shown(value)}: host {shown(host)} does not resolve ({reason})") from None
    return value


@functools.cache
def _re2_options() -> Any:
    import re2  # RE2: linear time on hostile input, same dialect as Prometheus

    options = re2.Options()
    options.log_errors = False  # the reason goes into the error, not to stderr from the C++ library
    return options


def _regexp(value: str) -> str:
    import re2

    try:
        re2.compile(value, options=_re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        detail = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise ValueError(f"invalid regular expression {shown(value)}: {detail}") from None
    return value


def _readable_file(value: str) -> str:
    if not os.access(value, os.R_OK):
        raise ValueError(f"cannot read file {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), AfterValidator(_positive)]
Size = Annotated[int, BeforeValidator(_size)]
HostPort = Annotated[str, AfterValidator(_host_port)]
ListenAddress = Annotated[str, AfterValidator(_listen_address)]
Regexp = Annotated[str, AfterValidator(_regexp)]
ReadableFile = Annotated[str, AfterValidator(_readable_file)]


class SecretFile(BaseModel):
    """A secret read from a file at load time; the path may be shown, the content never."""

    model_config = ConfigDict(frozen=True)
    path: str
    value: SecretStr


def _read_secret_file(value: Any) -> SecretFile:
    if isinstance(value, SecretFile):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a file path")
    try:
        text = Path(value).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {value!r}: {exc.strerror}") from None
    return SecretFile(path=value, value=SecretStr(text.rstrip("\r\n")))


SecretFromFile = Annotated[SecretFile, BeforeValidator(_read_secret_file)]


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
        if name in RESERVED_LABELS:
            raise ValueError(f"label name {name!r} is reserved")
    return labels


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


class Model(BaseModel):
    """Base of every config section: immutable, and a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def secret(self, name: str) -> str | None:
        """The secret `name`, given inline (possibly via ${ENV}) or through `name_file`."""
        inline: SecretStr | None = getattr(self, name, None)
        if inline is not None:
            return inline.get_secret_value()
        from_file: SecretFile | None = getattr(self, f"{name}_file", None)
        return from_file.value.get_secret_value() if from_file else None

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> "Model":
        for name in _secret_pairs(type(self)):
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                raise ValueError(f"give {name} or {name}_file, not both")
        return self


@functools.cache
def _secret_pairs(model: type[BaseModel]) -> tuple[str, ...]:
    """Secret fields that also have a `*_file` variant (computed once per class: it is hot at 10 000 targets)."""
    fields = model.model_fields
    return tuple(name for name, field in fields.items()
                 if f"{name}_file" in fields and field.annotation in (SecretStr, SecretStr | None))

"""The configuration's shape: the parts' options assembled into one immutable `Config`.

Each part owns its options (probes in `probes/`, receivers in `notify/config.py`,
logging in `logs.py`); this module puts them together, makes targets inherit `interval`,
`timeout` and `retry` from `global`, and checks what spans several keys. Validation is
done by pydantic (frozen models, unknown keys rejected), so a file either loads whole or
is refused with every problem listed; a reload never half-applies.
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
)

from .. import redaction
from ..errors import ConfigError
from ..fields import HostPort, Labels, Model, PositiveDuration, ReadableFile
from ..logs import LoggingConfig
from ..notify.config import AlertingConfig
from ..probes import KINDS, Probe
from ..probes.retry import BackoffWhenDown, RetryConfig
from .load import error_lines, expand_env, load_yaml


def _target_name(name: str) -> str:
    if name.startswith("__"):
        raise ValueError("names starting with __ are reserved")
    return name


# ---------------------------------------------------------------------------- global


class WebConfig(Model):
    """The daemon's own HTTP listener: TLS and basic auth (users -> bcrypt hashes)."""

    tls_cert_file: ReadableFile | None = None
    tls_key_file: ReadableFile | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _both_or_neither(self) -> "WebConfig":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        return self


class GlobalConfig(Model):
    listen_address: HostPort = "127.0.0.1:9469"
    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    evaluation_interval: PositiveDuration = 15.0
    state_dir: str = "./state"
    external_labels: Labels = Field(default_factory=dict)
    retry: RetryConfig = RetryConfig()
    max_concurrent_probes: int = Field(default=4096, ge=1)
    web: WebConfig = WebConfig()


# ---------------------------------------------------------------------------- targets


# The `global` section the targets being validated inherit from; set by `Config` around the
# validation of its targets (a target validated on its own inherits the defaults).
_inherited: ContextVar[GlobalConfig] = ContextVar("inherited_global")
_DEFAULT_GLOBAL = GlobalConfig()


def _global() -> GlobalConfig:
    return _inherited.get(_DEFAULT_GLOBAL)


class _TargetCommon(Model):
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_target_name)]
    interval: PositiveDuration = Field(default_factory=lambda: _global().interval)
    timeout: PositiveDuration = Field(default_factory=lambda: _global().timeout)
    labels: Labels = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=lambda: _global().retry)
    backoff_when_down: BackoffWhenDown | None = None

    @model_validator(mode="after")
    def _inherited_timeout_within_interval(self) -> "_TargetCommon":
        """An inherited timeout is cut to the target's interval; one given is checked, not cut."""
        if "timeout" not in self.model_fields_set and self.timeout > self.interval:
            object.__setattr__(self, "timeout", self.interval)  # still being built; frozen from now on
        return self


# The keys of every probe kind (`url` and `http`, `tcp`, `dns`), from the registry.
_TargetKeys = create_model(  # type: ignore[call-overload]  # fields known only at run time
    "_TargetKeys", __base__=_TargetCommon, __module__=__name__,
    **{key: spec for kind in KINDS.values() for key, spec in kind.target_fields.items()})

_ONE_KIND = "give exactly one of {}".format(
    " or ".join(filter(None, (", ".join(k.key_text for k in list(KINDS.values())[:-1]),
                              list(KINDS.values())[-1].key_text))))


class Target(_TargetKeys):  # type: ignore[misc, valid-type]  # a base built at run time
    """One monitored service: one kind of probe (one of the kinds' keys given) and when to run it.

    `interval`, `timeout` and `retry` are always set: those not given are `global`'s (the
    timeout no longer than the interval). `probe` is what the scheduler runs.
    """

    _probe: Probe = PrivateAttr()

    @model_validator(mode="after")
    def _one_kind(self) -> "Target":
        kinds = [kind for kind in KINDS.values() if getattr(self, kind.key) is not None]
        if len(kinds) != 1:
            raise ValueError(_ONE_KIND)
        for kind in KINDS.values():
            if getattr(self, kind.key) is None:
                for key in kind.target_fields:
                    if getattr(self, key) is not None:
                        raise ValueError(f"{key} options need a {kind.key}")
        kind = kinds[0]
        self._probe = Probe(self.name, kind, kind.settings(lambda key: getattr(self, key)), self.retry)
        return self

    @property
    def probe(self) -> Probe:
        return self._probe

    @property
    def kind(self) -> str:
        return self._probe.kind.name

    @property
    def endpoint(self) -> str:
        """What is probed, for people: the URL, host:port or DNS query."""
        return self._probe.endpoint


# Validated targets of the previous load, by their raw mapping (after ${ENV} expansion) and
# what they inherit: a reload of 10 000 targets that changes one validates one. Targets
# naming any file (secrets, CA, client certificates) are always validated again: the file
# may have changed.
_validated_targets: dict[tuple[Any, ...], Target] = {}
_seen_targets: dict[tuple[Any, ...], Target] = {}


def _reuse_validated(value: Any, handler: ValidatorFunctionWrapHandler) -> Target:
    if not isinstance(value, dict):
        return handler(value)
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return handler(value)
    if '_file"' in text:
        return handler(value)
    inherited = _global()
    key = (inherited.interval, inherited.timeout, inherited.retry, text)
    target = _validated_targets.get(key) or handler(value)
    _seen_targets[key] = target
    return target


# ---------------------------------------------------------------------------- the file


class Config(Model):
    global_: GlobalConfig = Field(default=GlobalConfig(), alias="global")
    logging: LoggingConfig = LoggingConfig()
    targets: list[Annotated[Target, WrapValidator(_reuse_validated)]] = Field(default_factory=list)
    rule_files: list[str] = Field(default_factory=list)
    alerting: AlertingConfig | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, hide_input_in_errors=True)

    @field_validator("targets", mode="wrap")
    @classmethod
    def _inherit_global(cls, targets: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Validate the targets against this file's `global` (its defaults if `global` is invalid)."""
        token = _inherited.set(info.data.get("global_") or _DEFAULT_GLOBAL)
        try:
            return handler(targets)
        finally:
            _inherited.reset(token)

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, targets: list[Target]) -> list[Target]:
        seen: set[str] = set()
        for target in targets:
            if target.name in seen:
                raise ValueError(f"duplicate target name {target.name!r}")
            seen.add(target.name)
        return targets


class LoadedConfig(BaseModel):
    """A validated configuration plus where it came from (rule file globs resolve against it)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    path: Path
    config: Config

    @property
    def global_(self) -> GlobalConfig:
        return self.config.global_

    @property
    def targets(self) -> list[Target]:
        return self.config.targets


def _cross_checks(config: Config) -> list[str]:
    """What spans keys, on the values in force (a target's own or inherited from `global`)."""
    errors = []
    for index, target in enumerate(config.targets):
        if target.timeout > target.interval:
            errors.append(f"targets[{index}].timeout: must not exceed the interval "
                          f"({target.timeout:g}s > {target.interval:g}s)")
        if target.backoff_when_down and target.backoff_when_down.max_interval < target.interval:
            errors.append(f"targets[{index}].backoff_when_down.max_interval: must be at least the interval")
    return errors


def parse_config(raw: Any, source: str) -> Config:
    """Validate an already parsed YAML tree; raise ConfigError listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    raw, errors = expand_env(raw)
    messages = [f"{source}: {e}" for e in errors]
    _seen_targets.clear()
    try:
        config = Config.model_validate(raw)
        _validated_targets.clear()  # keep only what this (good) load used
        _validated_targets.update(_seen_targets)
    except ValidationError as exc:
        messages += error_lines(exc, source)
        raise ConfigError(f"{source}: invalid configuration", messages) from None
    messages += [f"{source}: {e}" for e in _cross_checks(config)]
    if messages:
        raise ConfigError(f"{source}: invalid configuration", messages)
    redaction.install(redaction.collect(config))  # from now on, no log line or page shows them
    return config


def load_config(path: str | os.PathLike[str]) -> LoadedConfig:
    """Read, expand and validate a configuration file. Raises ConfigError; never half-loads."""
    path = Path(path)
    raw = load_yaml(path)
    if raw is None:  # empty, or only comments: a truncated write must not drop every target and rule
        raise ConfigError(f"{path}: the file is empty; expected a configuration (at least `targets:`)")
    return LoadedConfig(path=path.resolve(), config=parse_config(raw, str(path)))

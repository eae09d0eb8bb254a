"""E-mail: a plain-text message through an SMTP smarthost (stdlib smtplib), STARTTLS when asked."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from ...errors import NotificationError
from ...fields import HostPort, Model, ReadableFile, SecretFromFile
from ...gofmt import rfc3339_millis
from ..notification import Notification
from .base import Receiver, ReceiverOptions


class EmailConfig(ReceiverOptions):
    model_config = ConfigDict(**Model.model_config, populate_by_name=True)

    to: list[str]
    from_: str = Field(alias="from")
    smarthost: HostPort
    hello: str = "localhost"
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    auth_password_file: SecretFromFile | None = None
    require_tls: bool = True
    insecure_skip_verify: bool = False
    ca_file: ReadableFile | None = None     # trust this CA for STARTTLS (default: the system's)
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _alertmanager_tls_config(cls, data: Any) -> Any:
        """Alertmanager's `tls_config: {ca_file, insecure_skip_verify}`, the two keys tocsin has here."""
        if not isinstance(data, dict) or "tls_config" not in data:
            return data
        out = dict(data)
        tls = out.pop("tls_config") or {}
        if not isinstance(tls, dict):
            raise ValueError("tls_config: expected a mapping")
        unsupported = sorted(set(tls) - {"ca_file", "insecure_skip_verify"})
        if unsupported:
            raise ValueError(f"tls_config: {', '.join(unsupported)} not supported for e-mail "
                             "(ca_file and insecure_skip_verify are)")
        for key, value in tls.items():
            if key in out:
                raise ValueError(f"give {key} or tls_config.{key}, not both")
            out[key] = value
        return out

    @field_validator("to", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> "EmailConfig":
        if not self.to:
            raise ValueError("to: expected at least one address")
        if (self.auth_password is not None or self.auth_password_file is not None) and not self.auth_username:
            raise ValueError("auth_password needs auth_username")
        return self


class EmailReceiver(Receiver):
    kind = "email"
    config_model: ClassVar = EmailConfig
    send_resolved_default = False
    config: EmailConfig

    def body(self, n: Notification) -> str:
        out = [n.title(), ""]
        for title, alerts in (("Firing", n.firing), ("Resolved", n.resolved)):
            if not alerts:
                continue
            out.append(f"{title} ({len(alerts)}):")
            for alert in alerts:
                out.append(f"  - {alert.labels.get('alertname', 'alert')}")
                for key in ("summary", "description"):
                    if alert.annotations.get(key):
                        out.append(f"    {alert.annotations[key]}")
                out.append("    labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())))
                out.append(f"    since: {rfc3339_millis(alert.starts_at)}"
                           + (f", until: {rfc3339_millis(alert.ends_at)}" if not alert.firing else ""))
                if alert.generator_url:
                    out.append(f"    source: {alert.generator_url}")
            out.append("")
        if n.external_url:
            out.append(f"Sent by tocsin ({n.external_url}).")
        return "\n".join(out) + "\n"

    def payload(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = n.title()
        msg["From"] = self.config.from_
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=n.key.replace("-", ""), domain="tocsin")
        msg["Idempotency-Key"] = n.key
        for name, value in self.config.headers.items():
            msg[name] = value
        msg.set_content(self.body(n))
        return msg

    def deliver(self, n: Notification) -> None:
        host, _, port = self.config.smarthost.rpartition(":")
        try:
            smtp_cls = smtplib.SMTP_SSL if port == "465" else smtplib.SMTP
            with smtp_cls(host.strip("[]"), int(port), local_hostname=self.config.hello, timeout=self.timeout) as smtp:
                if smtp_cls is smtplib.SMTP:
                    smtp.ehlo()
                    if smtp.has_extn("starttls"):
                        context = ssl.create_default_context(cafile=self.config.ca_file)
                        if self.config.insecure_skip_verify:
                            context.check_hostname = False
                            context.verify_mode = ssl.CERT_NONE
                        smtp.starttls(context=context)
                        smtp.ehlo()
                    elif self.config.require_tls:
                        raise NotificationError("the SMTP server does not offer STARTTLS and require_tls is set",
                                                {"receiver": self.name})
                if self.config.auth_username:
                    smtp.login(self.config.auth_username, self.config.secret("auth_password") or "")
                smtp.send_message(self.payload(n))
        except NotificationError:
            raise
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise NotificationError(self.redact(f"{type(exc).__name__}: {exc}"), {"receiver": self.name}) from None

"""Logging: console for the journal, an optional rotating JSON file, optional syslog.

Every record carries structured fields (target, rule, receiver, correlation_id) taken
from a context variable, so code deep in a probe need not pass them around. Under
systemd (JOURNAL_STREAM is set) console lines start with the `<N>` syslog priority so
journald records the right PRIORITY, and carry no timestamp of their own (journald adds
one). A log destination that fails (no /dev/log, a full disk) is reported once and
counted; it never stops probing or alerting.

Every line is passed through `redaction.redact` as it is written, whoever logged it
(tocsin, requests and urllib3 at debug level, a traceback), so no secret of the
configuration reaches any destination. Log files are created 0600: they name targets,
receivers and errors that are nobody else's business.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.config
import logging.handlers
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Callable, Iterator, Literal

from pydantic import Field
from pythonjsonlogger.json import JsonFormatter

from .fields import Model, Size
from .redaction import redact


class ConsoleLog(Model):
    format: Literal["text", "json"] = "text"


class FileLog(Model):
    path: str = "logs/tocsin.log"
    format: Literal["text", "json"] = "json"
    max_bytes: Size = 10 * 2**20
    backup_count: int = Field(default=5, ge=0)


class SyslogLog(Model):
    address: str = "/dev/log"
    facility: Literal["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "cron", "authpriv",
                      "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"] = "daemon"
    level: Literal["debug", "info", "warning", "error"] = "warning"


class LoggingConfig(Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    console: ConsoleLog = ConsoleLog()
    file: FileLog | None = None
    syslog: SyslogLog | None = None


FIELDS = ("target", "rule", "receiver", "correlation_id", "shard", "replica")
# Never mutated: log_context() sets a new mapping, so the shared empty default is safe.
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "tocsin_log_context", default=MappingProxyType({}))
_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

# Failures seen before anyone listens (logging is set up before the daemon and its metrics
# exist), replayed to the hook when it is installed so no failure goes uncounted.
_early_errors: Counter[str] = Counter()
_error_hook: Callable[[str], None] | None = None


def on_handler_error(handler: str) -> None:
    """Count one record that `handler` could not write (tocsin_log_errors_total{handler})."""
    if _error_hook is None:
        _early_errors[handler] += 1
    else:
        _error_hook(handler)


def set_error_hook(hook: Callable[[str], None] | None) -> None:
    """Route handler failures to `hook` (the daemon's metric), including those seen so far."""
    global _error_hook
    _error_hook = hook
    if hook is not None:
        for handler, count in _early_errors.items():
            for _ in range(count):
                hook(handler)
        _early_errors.clear()


def set_process_fields(**fields: str) -> None:
    """Fields every record of this process carries (a shard's index, a replica's name)."""
    global _process_fields
    _process_fields = MappingProxyType({k: v for k, v in fields.items() if v})


_process_fields: Mapping[str, str] = MappingProxyType({})


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Attach fields to every record logged inside the block (and tasks it starts)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copy the context fields onto the record, so every formatter can use them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for fields in (_context.get(), _process_fields):
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    """`message key=value …`; with a `<N>` priority prefix and no time under the journal."""

    def __init__(self, journal: bool = False, timestamps: bool = True, level: bool = True) -> None:
        fmt = "%(message)s" if journal else "%(levelname)s %(name)s: %(message)s" if level else "%(name)s: %(message)s"
        super().__init__(f"%(asctime)s {fmt}" if timestamps and not journal else fmt)
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{key}={getattr(record, key)}" for key in FIELDS if getattr(record, key, None)]
        for key, value in getattr(record, "fields", {}).items():
            extras.append(f"{key}={_text_value(value)}")
        if extras:
            text += " " + " ".join(extras)
        if self.journal:
            priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
            text = "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])
        return text


def _text_value(value: Any) -> str:
    """A field in a text line: mappings and lists as compact JSON, never Python's repr."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


class JSONFormatter(JsonFormatter):
    """python-json-logger with the context fields and `fields={...}` flattened in."""

    def __init__(self, journal: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{text}" if self.journal else text

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        for key in FIELDS:
            value = getattr(record, key, None)
            if value:
                log_record[key] = value
        for name in ("fields", "json_fields"):  # `json_fields`: structure for JSON logs only, not for text lines
            fields = log_record.pop(name, None)
            if isinstance(fields, dict):
                log_record.update(fields)


def _report(message: str) -> None:
    """A problem with logging itself: straight to stderr (the journal), never through logging."""
    with contextlib.suppress(Exception):
        sys.stderr.write(redact(f"tocsin: {message}\n"))
        sys.stderr.flush()


class _ReportOnce:
    """Mixin: a failing handler reports once on stderr, counts every failure, and never raises.

    It also redacts: every handler of tocsin is one of these, so every formatted line (message,
    fields, traceback) is cleaned of secrets just before it is written.
    """

    handler_name = "handler"
    _reported = False

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))  # type: ignore[misc]  # a mixin of logging.Handler

    def handleError(self, _record: logging.LogRecord) -> None:  # noqa: N802 - logging's API
        on_handler_error(self.handler_name)
        if not self._reported:
            self._reported = True
            exc = sys.exc_info()[1]
            _report(f"log handler {self.handler_name} failed: {exc!r}; "
                    "further failures are only counted (tocsin_log_errors_total)")


class SafeRotatingFileHandler(_ReportOnce, logging.handlers.RotatingFileHandler):
    handler_name = "file"

    def _open(self) -> Any:  # logging's hook that opens the file, also at each rollover
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=lambda path, flags: os.open(path, flags, 0o600))


class SafeSysLogHandler(_ReportOnce, logging.handlers.SysLogHandler):
    """The stdlib handler reconnects on each emit while the socket is missing."""

    handler_name = "syslog"


class SafeStreamHandler(_ReportOnce, logging.StreamHandler):
    handler_name = "console"


def under_journal(stream: Any = None) -> bool:
    """Whether `stream` (stderr) is connected to the journal.

    systemd sets JOURNAL_STREAM=<device>:<inode> of the stream it connected; a child that
    redirected stderr elsewhere inherits the variable, so the identity is compared, as
    systemd.exec(5) recommends.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def _syslog_handler(cfg: SyslogLog) -> logging.Handler:
    address: str | tuple[str, int] = cfg.address
    if not cfg.address.startswith("/"):
        host, _, port = cfg.address.rpartition(":")
        address = (host, int(port))
    names = logging.handlers.SysLogHandler.facility_names
    handler = SafeSysLogHandler(address=address, facility=names.get(cfg.facility, names["daemon"]))
    if isinstance(address, str) and not os.path.exists(address):
        # Reported once here; the records it cannot take are counted, not reported again.
        handler._reported = True
        on_handler_error("syslog")
        _report(f"syslog socket {address} does not exist; will keep trying "
                "(failures are counted in tocsin_log_errors_total)")
    handler.ident = f"tocsin[{os.getpid()}]: "
    handler.setFormatter(TextFormatter(timestamps=False, level=False))  # syslog stamps and prioritises
    handler.setLevel(cfg.level.upper())
    return handler


def setup_logging(cfg: LoggingConfig | None = None, base_dir: str | None = None) -> None:
    """(Re)configure the root logger from the `logging` section; safe to call on every reload."""
    cfg = cfg or LoggingConfig()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.close()
    root.setLevel(cfg.level.upper())
    context = ContextFilter()

    console = SafeStreamHandler(sys.stderr)
    journal = under_journal()
    console.setFormatter(JSONFormatter(journal) if cfg.console.format == "json" else TextFormatter(journal))
    handlers: list[logging.Handler] = [console]
    if cfg.file is not None:
        path = cfg.file.path if os.path.isabs(cfg.file.path) or base_dir is None else os.path.join(base_dir, cfg.file.path)
        try:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            file_handler = SafeRotatingFileHandler(path, maxBytes=cfg.file.max_bytes,
                                                   backupCount=cfg.file.backup_count, encoding="utf-8")
            file_handler.setFormatter(JSONFormatter() if cfg.file.format == "json" else TextFormatter())
            handlers.append(file_handler)
        except OSError as exc:
            on_handler_error("file")
            _report(f"cannot open log file {path}: {exc.strerror or exc}; logging without it "
                    "(failures are counted in tocsin_log_errors_total)")
    if cfg.syslog is not None:
        handlers.append(_syslog_handler(cfg.syslog))
    for handler in handlers:
        handler.addFilter(context)
        root.addHandler(handler)
    # APScheduler logs every job run at INFO: thousands of lines a minute that say nothing.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # ... and a warning per missed or skipped run: the scheduler counts and summarises those.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)


@contextlib.contextmanager
def error_context(operation: str, logger: logging.Logger | None = None, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log the start, the end and any failure of `operation`, with its duration and `fields`.

    The fields also reach every record logged inside the block. A failure is logged once
    here (each of a ConfigError's errors on its own line, naming file and key path) and
    re-raised, so callers decide what it means without logging it again. The yielded dict
    may be filled with facts learned along the way; they are logged with the outcome.
    """
    logger = logger or logging.getLogger("tocsin")
    facts: dict[str, Any] = {}
    started = time.monotonic()
    context = {k: str(v) for k, v in fields.items() if k in FIELDS and v is not None}
    extra_fields = {k: v for k, v in fields.items() if k not in FIELDS and v is not None}
    with log_context(**context):
        logger.debug("%s started", operation, extra={"fields": {"operation": operation, **extra_fields}})
        try:
            yield facts
        except Exception as exc:
            duration = time.monotonic() - started
            out = {"operation": operation, "duration": f"{duration:.3f}s", "error": type(exc).__name__,
                   **extra_fields, **facts}
            details = getattr(exc, "errors", None) or [str(exc) or type(exc).__name__]
            for line in details:
                logger.error("%s failed: %s", operation, line, extra={"fields": out},
                             exc_info=None if hasattr(exc, "to_dict") else exc)
            raise
        duration = time.monotonic() - started
        logger.info("%s finished in %.3fs", operation, duration,
                    extra={"fields": {"operation": operation, "duration": f"{duration:.3f}s", **extra_fields, **facts}})

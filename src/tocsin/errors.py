"""The product's exception hierarchy.

Every error a person may see carries a message and structured details, so the same
error can be logged as a line, served as JSON, or shown by the CLI without string
parsing.
"""

from __future__ import annotations

from typing import Any


class TocsinError(Exception):
    """Base of every error tocsin raises on purpose."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, "details": self.details}


class ConfigError(TocsinError):
    """A configuration or rule file cannot be used; `errors` lists every problem found."""

    def __init__(self, message: str, errors: list[str] | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, {**(details or {}), "errors": list(errors or [message])})
        self.errors = list(errors or [message])

    def __str__(self) -> str:
        return "\n".join(self.errors)


class ProbeError(TocsinError):
    """A probe could not run at all (a bug or bad configuration, never a target's fault)."""


class RuleError(TocsinError):
    """A rule cannot be loaded or evaluated."""


class NotificationError(TocsinError):
    """A notification could not be delivered."""

"""What one probe produced. A probe never raises for a target's fault: it returns this."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

# The bounded set of failure reasons: a metric label, so it must never grow with input.
REASONS = (
    "dns",            # the name did not resolve
    "connect",        # refused, unreachable, or closed before a response started
    "tls",            # handshake or certificate verification failed
    "timeout",        # the total deadline passed (a hang, a slow drip, an endless body)
    "reset",          # the connection was reset or closed mid-response
    "bad_response",   # bytes that are not the protocol (garbage, malformed status line)
    "status",         # an HTTP status outside valid_status_codes
    "redirects",      # more redirects than max_redirects
    "body_too_large", # the body exceeded max_body_bytes
    "body",           # fail_if_body_(not_)matches_regexp
    "expect",         # TCP expect pattern not seen
    "rcode",          # DNS response code not in valid_rcodes
    "no_answer",      # DNS answer section empty
    "not_serving",    # gRPC health: not SERVING, an unknown service, or the check failed with a status
    "push",           # a push target: no push within interval + grace, or its job pushed status=down
    "error",          # anything else; logged with its message
)

# The fact of the kinds that check content against a pattern (HTTP body, TCP expect).
PATTERN_FAMILIES = {
    "probe_failed_due_to_regex": ("gauge", "Whether the probe failed on a body or expect pattern."),
}


class ProbeFailure(Exception):
    """Raised inside an attempt to end it with a reason; caught by the probe, never escapes it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class Attempt:
    """The outcome of one try; retries produce several, the last one wins."""

    success: bool
    reason: str = ""
    message: str = ""
    # kind-specific gauges, named after the blackbox metric without the `probe_` prefix
    facts: dict[str, float] = field(default_factory=dict)
    # per-phase durations (resolve, connect, tls, processing, transfer; summed over redirects)
    phases: dict[str, float] = field(default_factory=dict)
    # label-carrying facts such as the TLS version, kept separate so gauges stay plain floats
    info: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ProbeResult:
    """A whole probe: the final attempt plus how many were needed, and when it ran."""

    target: str
    kind: str
    success: bool
    reason: str
    message: str
    duration: float
    attempts: int
    first_attempt_success: bool
    correlation_id: str
    started_at: float  # unix time
    timeout: float
    facts: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


# The attempt in progress in this task, so that one the deadline interrupts is reported with
# what it learnt so far (a status code, an address), as blackbox_exporter does, rather than
# as an empty failure. A kind opts in by passing its Attempt to `in_progress` when it starts.
_IN_PROGRESS: ContextVar[Attempt | None] = ContextVar("tocsin_attempt_in_progress", default=None)


def in_progress(attempt: Attempt | None) -> Attempt | None:
    """Name the attempt now running in this task (None before a new one starts)."""
    _IN_PROGRESS.set(attempt)
    return attempt


def interrupted(reason: str, message: str) -> Attempt:
    """The attempt in progress, ended with `reason`; an empty one if the kind did not say."""
    attempt = _IN_PROGRESS.get()
    _IN_PROGRESS.set(None)
    if attempt is None:
        return Attempt(False, reason, message)
    attempt.success, attempt.reason, attempt.message = False, reason, message
    return attempt

"""A failed probe's reason in words people read on a status page: "HTTP 500", "TLS:
certificate has expired", "connection refused" — not the metric label `status` or `tls`.

The words are also the keys of a rollup's reason counts, so they must stay few per target:
they carry no addresses, times or byte counts, only what kind of failure it was.
"""

from __future__ import annotations

from ..probes import ProbeResult

MAX_WORDS = 60

_PLAIN = {
    "timeout": "timeout", "reset": "connection reset", "bad_response": "not a valid response",
    "redirects": "too many or bad redirects", "body_too_large": "body too large",
    "body": "body check failed", "expect": "expected reply not seen", "rcode": "DNS: bad response code",
    "no_answer": "DNS: no answer", "error": "error",
}


def reason_words(result: ProbeResult) -> str:
    """What failed, in words; "" for a success."""
    if result.success:
        return ""
    reason, message = result.reason, result.message or ""
    if reason == "status" and "http_status_code" in result.facts:
        words = f"HTTP {int(result.facts['http_status_code'])}"
    elif reason == "tls":
        detail = message.split(": ", 1)[-1] if "verification failed" in message else "handshake failed"
        words = f"TLS: {detail}"
    elif reason == "connect":
        words = "connection refused" if "refused" in message else "cannot connect"
    elif reason == "dns":
        words = "DNS: no such host" if "no such host" in message else "DNS: cannot resolve"
    else:
        words = _PLAIN.get(reason, reason.replace("_", " ") or "error")
    return words.replace(",", ";")[:MAX_WORDS]

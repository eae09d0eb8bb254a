"""What every page shares: escaping, the page frame and its stylesheet, times as people say them.

Every text that came from outside (target names, labels, messages, expressions) goes
through `esc`, which escapes for HTML and passes the text through `redaction` first, so a
secret a message happens to quote is never shown. The stylesheet is written for a phone
first: tables scroll inside their own box, long words wrap, nothing is wider than 400 px.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from ..redaction import redact

HTML = "text/html; charset=utf-8"


@dataclass
class Page:
    status: int
    body: str | bytes
    content_type: str = HTML
    headers: list[tuple[str, str]] = field(default_factory=list)


def esc(value: object) -> str:
    return html.escape(redact(str(value)), quote=True)


def href(*parts: str) -> str:
    """A path from parts, each quoted (a target name may hold '/', '?' or spaces)."""
    return "/" + "/".join(quote(part, safe="") for part in parts)


def ago(seconds: float) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 d ago'."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def span(seconds: float) -> str:
    """A duration in two units at most: '6 min 0 s', '1 h 12 min', '3 d 4 h'."""
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def short_span(seconds: float) -> str:
    """`span`, with tenths under ten seconds (an incident of one failed probe lasts 0.3 s)."""
    return f"{max(0.0, seconds):.1f} s" if seconds < 10 else span(seconds)


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def utc(ts: float, with_time: bool = True) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if with_time else "%Y-%m-%d", time.gmtime(ts))


def state_badge(state: str) -> str:
    """The state as a word and a colour: the word is what counts (text, not only colour)."""
    symbol = {"up": "▲", "down": "▼", "flapping": "◆", "unknown": "?", "maintenance": "■",
              "firing": "●", "pending": "○"}.get(state, "")
    return f"<span class='state {esc(state)}'>{symbol} {esc(state)}</span>"


def layout(title: str, body: str, refresh: int | None = 30, nav: str = "") -> str:
    refresh_script = "" if not refresh else (
        # Optional: the page works without it; it only reloads the page while it is visible.
        f"<script>setTimeout(function(){{if(!document.hidden)location.reload()}},{refresh * 1000})</script>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><a class='home' href='/'>{esc(title)}</a>{nav}</header><main>{body}</main>"
            f"{refresh_script}</body></html>")


CSS = """
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
color:#1b1f24;background:#f6f7f9}header{background:#1b1f24;color:#fff;padding:.6em 1em;display:flex;
flex-wrap:wrap;gap:.4em 1em;align-items:baseline}header a{color:#fff}.home{font-weight:600;font-size:1.1em;
text-decoration:none}main{padding:1em;max-width:1200px;margin:auto}h1{font-size:1.4em;margin:.2em 0 .6em;
overflow-wrap:anywhere}h2{font-size:1.1em;margin:1.4em 0 .5em}section{background:#fff;border:1px solid #dde1e6;
border-radius:6px;padding:.8em;margin:0 0 1em}.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;
width:100%}th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #eceef1;vertical-align:top}
th{font-size:.85em;color:#555;font-weight:600}td{overflow-wrap:anywhere}.num{text-align:right;white-space:nowrap}
.state{font-weight:600;white-space:nowrap}.state.up{color:#17733a}.state.down{color:#b42318}
.state.flapping{color:#b54708}.state.unknown{color:#666}.state.maintenance{color:#3657a8}.state.firing{color:#b42318}
.state.pending{color:#b54708}section>h2:first-child{margin-top:0}
.banner{background:#fef3f2;border:1px solid #f3b8b2;color:#8a1c12;padding:.6em .8em;border-radius:6px;margin-bottom:1em}
.muted{color:#666;font-size:.9em}svg{max-width:100%;height:auto;display:block}svg.bar{width:100%;height:20px;margin:.2em 0}
svg.chart{width:100%}.bar-cell{min-width:160px}
.target-name{font-weight:600}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}code,pre{font:13px ui-monospace,monospace;background:#f0f2f5;
border-radius:4px;padding:.1em .3em;white-space:pre-wrap;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr));gap:.8em}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.7em}.card h3{margin:0 0 .3em;font-size:1em;
display:flex;justify-content:space-between;gap:.5em;flex-wrap:wrap}.card h3 a{overflow-wrap:anywhere}
.figures{display:flex;flex-wrap:wrap;gap:.2em 1em;font-size:.9em}.figures b{font-weight:600}
"""

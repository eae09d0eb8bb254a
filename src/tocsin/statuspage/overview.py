"""The overview (`/`) and the public page (`/status`): every target's state, 90-day bar,
uptime, response time, why it fails and when it was last checked, grouped by a label, with
the firing and pending alerts on top and a banner when the last reload failed.

One table with real headers; on a narrow screen its rows become blocks, each cell led by
its header's name (the table stays a table for screen readers, and nothing scrolls
sideways at 400 px).
"""

from __future__ import annotations

import time
from datetime import datetime

from ..history.summary import uptime_percent
from .html import Page, ago, esc, href, layout, ms, state_badge, utc
from .model import Sources, TargetRow, alerts_with_fingerprints, grouped, target_rows
from .svg import BarCache

NARROW_CSS = """<style>@media (max-width:760px){table.stack thead{position:absolute;left:-9999px}
table.stack tr{display:block;border-bottom:1px solid #dde1e6;padding:.4em 0}table.stack td{display:flex;
gap:.6em;border:0;padding:.1em .2em;text-align:left}table.stack td::before{content:attr(data-label);flex:0 0 7.5em;
color:#555;font-size:.85em}table.stack td.bar-cell{display:block}table.stack td.bar-cell::before{display:none}}</style>"""


def overview(sources: Sources) -> Page:
    config = sources.config()
    rows = target_rows(sources)
    parts = [f"<h1>{esc(config.title)}</h1>"]
    if not sources.reload_ok():
        parts.append("<p class='banner' role='alert'>The last configuration reload failed: the previous "
                     "configuration is still running. See the log, or <code>tocsin check config</code>.</p>")
    parts.append(_counts(rows))
    parts.append(_silences(sources))
    parts.append(_alerts(sources))
    parts.append(_tables(rows, config.group_by, public=False, show_reasons=True, drawn=sources.drawn))
    parts.append("<p class='muted'><a href='/status'>public status page</a> · <a href='/api/v1/targets'>targets "
                 "API</a> · <a href='/api/v1/incidents'>incidents API</a> · <a href='/metrics'>metrics</a></p>")
    return Page(200, layout(config.title, NARROW_CSS + "".join(parts)))


def public_status(sources: Sources) -> Page:
    """For end users: the chosen targets only; no endpoints, configuration or alerts, and
    reasons only when `show_reasons`."""
    config = sources.config()
    rows = target_rows(sources, config.shows)
    body = f"<h1>{esc(config.title)}</h1>{_counts(rows)}{_tables(rows, config.group_by, True, config.show_reasons, sources.drawn)}"
    return Page(200, layout(config.title, NARROW_CSS + body))


def _counts(rows: list[TargetRow]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    words = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"<p>{len(rows)} targets{': ' + esc(words) if words else ''}.</p>"


def _silences(sources: Sources) -> str:
    """Active and pending silences: who, why, what they match, until when."""
    if sources.silences is None:
        return ""
    silences = sources.silences()
    if not silences:
        return ""
    items = "".join(f"<li>{esc(s.get('comment', ''))} <span class='muted'>{esc(s.get('matchers', ''))} · by "
                    f"{esc(s.get('created_by', ''))} · {esc(s.get('state', ''))} until {esc(utc(s['ends_at']))}"
                    "</span></li>" for s in silences)
    return f"<section aria-labelledby='silences'><h2 id='silences'>Silences</h2><ul>{items}</ul></section>"


def _alerts(sources: Sources) -> str:
    alerts = alerts_with_fingerprints(sources)
    if not alerts:
        return "<section aria-labelledby='alerts'><h2 id='alerts'>Alerts</h2><p>No alert is firing or pending.</p></section>"
    rows = []
    for alert in alerts:
        labels = alert.get("labels", {})
        summary = alert.get("annotations", {}).get("summary", "")
        since = _since(alert.get("activeAt"))
        rows.append(f"<tr><td data-label='State'>{state_badge(alert.get('state', ''))}</td><td data-label='Alert'>"
                    f"<a href='{href('alerts', alert['fingerprint'])}'>{esc(labels.get('alertname', '?'))}</a></td>"
                    f"<td data-label='Target'>{esc(labels.get('target', ''))}</td><td data-label='Summary'>"
                    f"{esc(summary)}</td><td data-label='Active since' class='num'>{esc(since)}</td></tr>")
    return ("<section aria-labelledby='alerts'><h2 id='alerts'>Alerts</h2><div class='scroll'><table class='stack'><thead><tr>"
            "<th scope='col'>State</th><th scope='col'>Alert</th><th scope='col'>Target</th><th scope='col'>Summary"
            "</th><th scope='col'>Active since</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div></section>")


def _since(rfc3339: str | None) -> str:
    if not rfc3339:
        return ""
    try:
        return ago(time.time() - datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return rfc3339


def _tables(rows: list[TargetRow], group_by: str | None, public: bool, show_reasons: bool, drawn: BarCache) -> str:
    now = time.time()
    out = []
    for group, members in grouped(rows, group_by):
        heading = f"{group_by}: {group}" if group_by and group else "Targets" if not group_by else f"no {group_by}"
        cells = "".join(_row(row, now, public, show_reasons, drawn) for row in members)
        out.append(f"<section><h2>{esc(heading)}</h2><table class='targets stack'><thead><tr><th scope='col'>Target</th>"
                   "<th scope='col'>State</th><th scope='col'>Last 90 days</th><th scope='col' class='num'>24 h</th>"
                   "<th scope='col' class='num'>7 d</th><th scope='col' class='num'>30 d</th><th scope='col' "
                   "class='num'>Response (p95)</th><th scope='col'>Reason</th><th scope='col' class='num'>Certificate"
                   "</th><th scope='col' class='num'>Last check</th></tr></thead><tbody>"
                   f"{cells}</tbody></table></section>")
    return "".join(out) or "<p>No targets.</p>"


def _row(row: TargetRow, now: float, public: bool, show_reasons: bool, drawn: BarCache) -> str:
    name = esc(row.name) if public else (f"<a class='target-name' href='{href('targets', row.name)}'>{esc(row.name)}</a>"
                                         f"<div class='muted endpoint'>{esc(row.kind)} {esc(row.endpoint)}</div>")
    reason = esc(row.reason) if (show_reasons and row.state in ("down", "flapping")) else ""
    cert = "" if row.cert_days is None else "expired" if row.cert_days < 0 else f"{int(row.cert_days)} days"
    last = ago(now - row.last_check) if row.last_check else "never"
    bar = row.bar(drawn)
    return (f"<tr class='{esc(row.state)}' data-target='{esc(row.name)}'><td data-label='Target'>{name}</td>"
            f"<td data-label='State'>{state_badge(row.state)}</td><td data-label='Last 90 days' class='bar-cell'>{bar}</td>"
            + "".join(f"<td data-label='{label}' class='num uptime' data-span='{span}'>{uptime_percent(row.uptime[span])}</td>"
                      for span, label in (("24h", "Uptime 24 h"), ("7d", "Uptime 7 d"), ("30d", "Uptime 30 d")))
            + f"<td data-label='Response' class='num'>{ms(row.response)} ({ms(row.p95)})</td>"
            f"<td data-label='Reason'>{reason}</td><td data-label='Certificate' class='num'>{cert}</td>"
            f"<td data-label='Last check' class='num'>{last}</td></tr>")

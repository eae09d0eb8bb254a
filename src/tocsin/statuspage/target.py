"""The target page (`/targets/<name>`): its state and figures, response time over 24 h and
7 d, uptime bars, incidents with reasons and durations, its current alerts and its
configuration (secrets redacted)."""

from __future__ import annotations

import json
import time

from ..history.queries import series
from ..history.summary import uptime_percent
from .html import Page, ago, esc, href, layout, ms, short_span, state_badge, utc
from .model import Sources, alerts_with_fingerprints, target_row
from .svg import response_chart, result_bar, uptime_bar


def target_page(sources: Sources, name: str) -> Page | None:
    state = sources.targets.states.get(name)
    if state is None:
        return None
    now = time.time()
    row = target_row(sources, name, state, now)
    history = sources.history
    title = f"{name} · {sources.config().title}"
    figures = [("State", state_badge(row.state)),
               ("Last check", ago(now - row.last_check) if row.last_check else "never"),
               ("Response", ms(row.response)), ("p95 (24 h)", ms(row.p95)),
               *((f"Uptime {s}", uptime_percent(row.uptime[s])) for s in ("24h", "7d", "30d")),
               ("Certificate", "" if row.cert_days is None else f"{row.cert_days:.0f} days left")]
    if row.state in ("down", "flapping"):
        figures.append(("Reason", esc(row.reason) + (f" <span class='muted'>({esc(row.message)})</span>"
                                                      if row.message else "")))
    facts = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in figures if value)
    day = [(t, r.mean_duration(), r.quantile(0.95)) for t, r in series(history, name, 86400, 300, now)]
    week = series(history, name, 7 * 86400, 3600, now)
    hours = [(t, r.count, r.failures) for t, r in series(history, name, 86400, 3600, now)]
    body = [
        f"<h1>{esc(name)}</h1>",
        f"<section><dl>{facts}</dl></section>",
        _alerts(sources, name),
        "<section aria-labelledby='rt'><h2 id='rt'>Response time</h2>"
        "<p class='muted'>Mean (solid) and p95 (dashed), last 24 hours in 5-minute steps:</p>"
        + response_chart(day, f"response time of {name}, last 24 hours")
        + "<p class='muted'>Last 7 days in hourly steps:</p>"
        + response_chart([(t, r.mean_duration(), r.quantile(0.95)) for t, r in week],
                         f"response time of {name}, last 7 days") + "</section>",
        "<section aria-labelledby='up'><h2 id='up'>Uptime</h2><p class='muted'>Last 24 hours, one bar an hour:</p>"
        + result_bar(hours, f"probe results of {name} per hour, last 24 hours")
        + "<p class='muted'>Last 90 days, one bar a day:</p>"
        + uptime_bar(row.bars, f"uptime of {name} per day over 90 days") + "</section>",
        _incidents(sources, name, now),
        _configuration(state.target),
        f"<p class='muted'><a href='{href('api', 'v1', 'targets', name, 'history')}?range=1d&amp;step=1h'>history API"
        f"</a> · <a href='{href('api', 'v1', 'incidents')}?target={esc(name)}'>incidents API</a> · badges: "
        f"<a href='{href('badges', name, 'health.svg')}'>health</a>, "
        f"<a href='{href('badges', name, 'uptime', '30d.svg')}'>uptime</a>, "
        f"<a href='{href('badges', name, 'response-time.svg')}'>response time</a></p>",
    ]
    return Page(200, layout(title, "".join(body)))


def _alerts(sources: Sources, name: str) -> str:
    alerts = [a for a in alerts_with_fingerprints(sources) if a.get("labels", {}).get("target") == name]
    if not alerts:
        return "<section aria-labelledby='al'><h2 id='al'>Alerts</h2><p>No alert about this target.</p></section>"
    items = "".join(f"<li>{state_badge(a.get('state', ''))} <a href='{href('alerts', a['fingerprint'])}'>"
                    f"{esc(a['labels'].get('alertname', '?'))}</a> {esc(a.get('annotations', {}).get('summary', ''))}</li>"
                    for a in alerts)
    return f"<section aria-labelledby='al'><h2 id='al'>Alerts</h2><ul>{items}</ul></section>"


def _incidents(sources: Sources, name: str, now: float) -> str:
    incidents = sources.history.db.incidents(name, limit=50)
    if not incidents:
        return "<section aria-labelledby='inc'><h2 id='inc'>Incidents</h2><p>No incident recorded.</p></section>"
    rows = "".join(
        f"<tr><td>{esc(utc(i.start))}</td><td>{'ongoing' if i.end is None else esc(utc(i.end))}</td>"
        f"<td class='num'>{short_span((i.end or now) - i.start)}</td><td>{esc(i.reason)}"
        f"<div class='muted'>{esc(i.message)}</div></td><td>{esc(', '.join(i.alerts))}</td></tr>" for i in incidents)
    return ("<section aria-labelledby='inc'><h2 id='inc'>Incidents</h2><div class='scroll'><table class='incidents'>"
            "<thead><tr><th scope='col'>Start</th><th scope='col'>End</th><th scope='col' class='num'>Duration</th>"
            "<th scope='col'>Reason</th><th scope='col'>Alerts</th></tr></thead><tbody>"
            f"{rows}</tbody></table></div></section>")


def _configuration(target: object) -> str:
    dump = getattr(target, "model_dump", None)
    config = dump(mode="json", exclude_none=True, by_alias=True) if dump else {}
    return (f"<section aria-labelledby='cfg'><h2 id='cfg'>Configuration</h2><pre>{esc(json.dumps(config, indent=1))}"
            "</pre></section>")

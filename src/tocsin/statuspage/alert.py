"""The alert page (`/alerts/<fingerprint>`) and the rule page that notifications link to
(`/graph?g0.expr=…`, the `generatorURL` every alert carries, as Prometheus builds it): the
rule's expression, the alert's labels and annotations, and its recorded state changes.

So every link in a Slack or e-mail message opens something useful, even when the alert has
resolved since: the state log in history.db still knows it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .html import Page, esc, href, layout, state_badge, utc
from .model import Sources, alerts_with_fingerprints


def _expression(alert: dict[str, Any]) -> str:
    query = parse_qs(urlsplit(alert.get("generatorURL", "")).query)
    return (query.get("g0.expr") or [""])[0]


def alert_page(sources: Sources, fp: str) -> Page | None:
    alert = next((a for a in alerts_with_fingerprints(sources) if a["fingerprint"] == fp), None)
    events = sources.history.db.alert_events(fp)
    if alert is None and not events:
        return None
    title = sources.config().title
    labels: dict[str, str] = alert["labels"] if alert else next((e["labels"] for e in events if e["labels"]), {})
    name = labels.get("alertname", "alert")
    state = alert.get("state", "") if alert else "inactive"
    parts = [f"<h1>{esc(name)} {state_badge(state)}</h1>"]
    if alert is not None:
        expr = _expression(alert)
        facts = [("Expression", f"<code>{esc(expr)}</code> <a href='{href('graph')}?g0.expr={esc(_quote(expr))}'>"
                                "rule</a>"),
                 ("Group", esc(alert.get("group", ""))), ("Active since", esc(alert.get("activeAt") or "")),
                 ("Firing since", esc(alert.get("startsAt") or "not yet (pending)")),
                 ("Value", esc(alert.get("value", "")))]
        parts.append("<section><dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl></section>")
        parts.append(f"<div class='alert-actions'>{_acknowledgement(sources, alert)}</div>")
    target = labels.get("target")
    if target and target in sources.targets.states:
        parts.append(f"<p>Target: <a href='{href('targets', target)}'>{esc(target)}</a></p>")
    parts.append(_table("Labels", labels))
    if alert is not None:
        parts.append(_table("Annotations", alert.get("annotations", {})))
    rows = "".join(f"<tr><td>{esc(utc(e['at']))}</td><td>{state_badge(e['state'])}</td></tr>" for e in events)
    parts.append("<section aria-labelledby='hist'><h2 id='hist'>State history</h2>" + (
        "<table><thead><tr><th scope='col'>When</th><th scope='col'>State</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>" if rows else "<p>No change recorded yet.</p>") + "</section>")
    return Page(200, layout(f"{name} · {title}", "".join(parts)))


def rule_page(sources: Sources, query: str) -> Page:
    """What `generatorURL` opens: the rule's expression and the alerts it has now."""
    expr = (parse_qs(query).get("g0.expr") or [""])[0]
    alerts = [a for a in alerts_with_fingerprints(sources) if _expression(a) == expr]
    names = sorted({a["labels"].get("alertname", "") for a in alerts})
    parts = [f"<h1>Rule{': ' + esc(', '.join(names)) if names else ''}</h1>",
             f"<section><h2>Expression</h2><pre>{esc(expr)}</pre></section>"]
    if alerts:
        items = "".join(f"<li>{state_badge(a.get('state', ''))} <a href='{href('alerts', a['fingerprint'])}'>"
                        f"{esc(_label_text(a['labels']))}</a></li>" for a in alerts)
        parts.append(f"<section><h2>Alerts now</h2><ul>{items}</ul></section>")
    else:
        parts.append("<section><h2>Alerts now</h2><p>This expression has no pending or firing alert now.</p></section>")
    return Page(200, layout(f"Rule · {sources.config().title}", "".join(parts)))


def _quote(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text)


def _label_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _table(title: str, values: dict[str, str]) -> str:
    if not values:
        return ""
    rows = "".join(f"<tr><th scope='row'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in sorted(values.items()))
    return f"<section><h2>{esc(title)}</h2><table><tbody>{rows}</tbody></table></section>"


def _acknowledgement(sources: Sources, alert: dict[str, Any]) -> str:
    """Who acknowledged this firing and why; else, for a firing alert, the button that does it."""
    fingerprint = re.sub(r"[^0-9a-f]", "", str(alert.get("fingerprint", "")))
    for ack in (sources.acks() if sources.acks is not None else []):
        if ack["fingerprint"] == fingerprint and ack["active"]:
            return (f"<p>Acknowledged by {esc(ack['created_by'] or 'someone')} at {esc(utc(ack['created_at']))}"
                    f"{': ' + esc(ack['comment']) if ack['comment'] else ''}. Quiet until it resolves.</p>")
    if alert.get("state") != "firing" or sources.acks is None:
        return ""
    # A JSON POST from this page (the listener refuses form posts, which another site could send);
    # the browser adds the basic-auth credentials it already has.
    return (f"<button onclick=\"var c=prompt('Acknowledge: why?');if(c!==null)fetch('/api/v1/alerts/{fingerprint}/ack',"
            f"{{method:'POST',headers:{{'Content-Type':'application/json'}},body:JSON.stringify({{comment:c}})}})"
            f".then(function(){{location.reload()}})\">acknowledge until resolved</button>")

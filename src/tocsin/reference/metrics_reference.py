"""docs/metrics.md, generated from what a running tocsin exports plus the probe kinds' families.

The names, types and help texts are the daemon's own (its `/metrics`, read while it probes
sample targets of every kind, evaluates the shipped rules and routes alerts), so the
reference says what tocsin really exports; the probe families that a short run may not
show (a TLS certificate's expiry, a DNS answer) come from the probe kinds' registry, which
is what the exposition is built from. A test starts a daemon and fails when it exports a
family the committed reference does not list, or the reference lists one nothing exports.

    python -m tocsin.reference.metrics_reference -o docs/metrics.md    (make docs)
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# A configuration exercising every part that exports metrics; {port} and {demo} are filled in.
SAMPLE_CONFIG = """
global: {{listen_address: "127.0.0.1:{port}", interval: 1s, timeout: 900ms, evaluation_interval: 1s,
          state_dir: ./state}}
logging: {{level: error}}
targets:
  - {{name: web, url: "http://127.0.0.1:{demo}/health"}}
  - {{name: flaky, url: "http://127.0.0.1:{demo}/simulate/error", retry: {{attempts: 2, initial_backoff: 10ms}}}}
  - {{name: tcp, tcp: {{address: "127.0.0.1:{demo}"}}}}
  - {{name: closed, tcp: {{address: "127.0.0.1:1"}}}}
  - {{name: dns, dns: {{query: localhost, server: "127.0.0.1:1"}}}}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: journal, group_wait: 0s}}
  receivers: [{{name: journal, log: {{}}}}]
"""

# Sections of the reference, by name prefix, in order; the first that matches takes a family.
SECTIONS: list[tuple[str, tuple[str, ...], str]] = [
    ("Probe results", ("probe_",),
     "blackbox_exporter's names and meanings, so its dashboards and rules work unchanged. Every series has "
     "the `target` label (the target's `name`) and the target's own `labels`."),
    ("Probe accounting", ("tocsin_probe", "tocsin_targets"),
     "What blackbox_exporter leaves to Prometheus: counters over every probe (for SLOs and error rates), "
     "the failure reason, attempts and retries, the duration histogram."),
    ("Rules and alerts", ("tocsin_rule", "ALERTS"),
     "Prometheus's `ALERTS` and `ALERTS_FOR_STATE`, and the rule groups' health (Prometheus calls these "
     "`prometheus_rule_*`)."),
    ("Notifications", ("tocsin_notif", "tocsin_outbox", "tocsin_receiver", "tocsin_notify"),
     "The outbox and the receivers (Alertmanager calls these `alertmanager_notifications_*`)."),
    ("The daemon", ("tocsin_",), "Configuration reloads, the scheduler, the clock, logging and state writes."),
    ("Process", ("process_", "python_"), "The standard process collector's metrics."),
    ("Other", ("",), ""),
]


@dataclass
class Family:
    name: str
    type: str
    help: str
    labels: set[str] = field(default_factory=set)
    kinds: list[str] = field(default_factory=list)


_SUFFIXES = ("_bucket", "_sum", "_count", "_created", "_total", "_info")


def parse_exposition(text: str) -> dict[str, Family]:
    """Families by their `# TYPE` name, with help and the label names their samples carry.

    prometheus_client declares a counter's `_created` timestamp as a gauge family of its own:
    it says when the counter started, not anything measured, and is not listed.
    """
    families: dict[str, Family] = {}
    helps: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            helps[name] = help_text.replace("\\n", " ").replace("\\\\", "\\")
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            if not name.endswith("_created"):
                families[name] = Family(name, kind.strip(), helps.get(name, ""))
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s", line)
        if not match:
            continue
        family = family_of(match.group(1), families)
        if family is not None and match.group(2):
            family.labels.update(n for n in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', match.group(2)) if n != "le")
    return families


def family_of(sample: str, families: dict[str, Family]) -> Family | None:
    if sample in families:
        return families[sample]
    for suffix in _SUFFIXES:
        if sample.endswith(suffix) and sample[: -len(suffix)] in families:
            return families[sample[: -len(suffix)]]
    return None


def probe_families() -> dict[str, Family]:
    """Every `probe_*` family some probe kind can report, with the kinds that do."""
    from ..probes import KINDS

    families: dict[str, Family] = {}
    for kind in KINDS.values():
        for name, (type_, help_text) in kind.families.items():
            family = families.setdefault(name, Family(name, type_, help_text, {"target"}))
            family.kinds.append(kind.name)
        if kind.phase_family in families:
            families[kind.phase_family].labels.add("phase")
        for _, family_name, label_names in kind.info_gauges:
            if family_name in families:
                families[family_name].labels.update([label_names] if isinstance(label_names, str) else label_names)
    return families


def merge(live: dict[str, Family]) -> list[Family]:
    families = probe_families()
    for name, family in live.items():
        known = families.get(name)
        if known is None:
            families[name] = family
        else:
            known.labels |= family.labels
            known.help = family.help or known.help
    return sorted(families.values(), key=lambda f: f.name)


def _section_of(name: str) -> str:
    return next(title for title, prefixes, _ in SECTIONS if name.startswith(prefixes))


def render(live: dict[str, Family]) -> str:
    families = merge(live)
    out = ["# Metrics reference", "",
           "<!-- Generated by `python -m tocsin.reference.metrics_reference` (make docs) from a running tocsin's",
           "     /metrics and the probe kinds' registry. A test fails when tocsin exports a metric missing here. -->",
           "",
           "tocsin serves these on `http://127.0.0.1:9469/metrics` (`global.listen_address`), in the Prometheus",
           "text format. Labels are those a series carries; a target's own `labels` are added to every",
           "per-target series. The shipped rules (`etc/rules/tocsin.yml`) and the Grafana dashboard",
           "(`contrib/grafana/tocsin.json`) use them.", ""]
    for title, _, intro in SECTIONS:
        mine = [f for f in families if _section_of(f.name) == title]
        if not mine:
            continue
        out += [f"## {title}", ""]
        if intro:
            out += [intro, ""]
        with_kinds = title == "Probe results"
        out.append("| metric | type | labels |" + (" probe kinds |" if with_kinds else "") + " meaning |")
        out.append("| --- | --- | --- |" + (" --- |" if with_kinds else "") + " --- |")
        for f in mine:
            labels = ", ".join(f"`{label}`" for label in sorted(f.labels)) or "—"
            kinds = f" {', '.join(f.kinds) or 'all'} |" if with_kinds else ""
            meaning = f.help.replace("|", "\\|") or "—"
            out.append(f"| `{f.name}` | {f.type} | {labels} |{kinds} {meaning} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def documented_names(markdown: str) -> set[str]:
    """The metric names a reference lists (the first cell of its table rows)."""
    return set(re.findall(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \|", markdown, re.MULTILINE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tocsin.reference.metrics_reference", description=__doc__)
    parser.add_argument("--output", "-o", default="-", help="write here (default: stdout)")
    parser.add_argument("--from-url", help="read this /metrics instead of running a sample daemon")
    args = parser.parse_args(argv)
    if args.from_url:
        import requests

        text = requests.get(args.from_url, timeout=10).text
    else:
        text = run_sample_daemon()
    markdown = render(parse_exposition(text))
    if args.output == "-":
        sys.stdout.write(markdown)
    else:
        Path(args.output).write_text(markdown, encoding="utf-8")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_sample_daemon(settle: float = 3.0) -> str:
    """The /metrics of a daemon on SAMPLE_CONFIG, `settle` seconds after an alert became pending."""
    import requests

    with sample_daemon() as url:
        time.sleep(settle)
        return requests.get(f"{url}/metrics", timeout=10).text


@contextlib.contextmanager
def sample_daemon(patience: float = 60.0) -> Iterator[str]:
    """The demo target and a daemon on SAMPLE_CONFIG (with the shipped rules), running; yields
    the daemon's base URL once an alert is pending (probes ran, rules evaluated)."""
    import requests

    root = Path(__file__).resolve().parents[3]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "rules").mkdir()
        for rules in (root / "etc" / "rules").glob("*.yml"):
            (work / "rules" / rules.name).write_text(rules.read_text())
        port, demo = _free_port(), _free_port()
        (work / "tocsin.yml").write_text(SAMPLE_CONFIG.format(port=port, demo=demo))
        command = [sys.executable, "-m", "tocsin.cli"]
        procs = [subprocess.Popen([*command, "demo-target", "--port", str(demo)], cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 subprocess.Popen([*command, "run", "--config", "tocsin.yml"], cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=(work / "daemon.err").open("wb"))]
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + patience
            while time.monotonic() < deadline:
                if procs[1].poll() is not None:
                    raise RuntimeError(f"the sample daemon exited: {(work / 'daemon.err').read_text()[-2000:]}")
                try:
                    if "\nALERTS{" in requests.get(f"{url}/metrics", timeout=5).text:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            else:
                raise RuntimeError(f"no alert pending on {url}/metrics within {patience:g}s")
            yield url
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())

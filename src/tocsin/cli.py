"""The `tocsin` command: run the daemon, check files, probe once, serve the demo target."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import __version__, ack_command, aio
from .config import LoadedConfig, load_config, parse_config
from .errors import ConfigError
from .probes import KINDS, run_probe
from .probes.kind import set_option

DEFAULT_CONFIG = "etc/tocsin.yml"


def _cmd_run(args: argparse.Namespace) -> int:
    from .cluster.view import ClusterOverride
    from .daemon import run_daemon

    return run_daemon(args.config, ClusterOverride(args.shard, args.replica))


def _load_or_report(path: str) -> LoadedConfig | None:
    """Load a configuration, or print every error (file: key.path: reason) and return None."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return None


def _cmd_check_config(args: argparse.Namespace) -> int:
    """Each file and the rule files it names; every problem as `FILE[:LINE]: key.path: reason` on stderr."""
    failed = False
    for path in args.files:
        if not _check_config_file(path):
            failed = True
    return 1 if failed else 0


def _check_config_file(path: str) -> bool:
    loaded = _load_or_report(path)
    if loaded is None:
        return False
    from .rules.files import RuleFileError, load_rule_file, resolve_rule_files

    files, warnings = resolve_rule_files(loaded.path, loaded.config.rule_files)
    errors = [f"{path}: rule_files: {w}" for w in warnings]
    rules = 0
    for rule_path in files:
        try:
            rules += sum(len(g.rules) for g in load_rule_file(rule_path, loaded.global_.evaluation_interval))
        except RuleFileError as exc:
            errors += exc.errors
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return False
    from .cluster.view import replica_warnings

    for warning in replica_warnings(loaded):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK ({len(loaded.targets)} targets, {rules} rules in {len(files)} rule files)")
    return True


def _cmd_check_rules(args: argparse.Namespace) -> int:
    from .rules.files import check_rules_cli

    return check_rules_cli(args.files)


def _cmd_test_rules(args: argparse.Namespace) -> int:
    from .rules.unit_tests import run_files

    return run_files(args.files)


def _probe_target(endpoint: str, kind: str | None, timeout: float, insecure: bool = False,
                  ca_file: str | None = None, options: list[str] | None = None) -> dict:
    """The configuration of a target probing `endpoint` (a URL is HTTP, anything else TCP by default),
    with `options` (`KEY=VALUE`, dotted keys, YAML values) set in the kind's own section."""
    from .probes.report import tls_keys

    if kind is None:
        kind = "http" if endpoint.startswith(("http://", "https://")) else "tcp"
    deadline = f"{int(timeout * 1000)}ms"
    keys = KINDS[kind].target_keys(endpoint)
    tls = tls_keys(kind, insecure, ca_file)
    if tls:
        keys[kind] = {**(keys.get(kind) or {}), **tls}
    for option in options or []:
        set_option(keys, KINDS[kind], option)
    return {"name": endpoint, "timeout": deadline, "interval": deadline, **keys}


def _cmd_probe(args: argparse.Namespace) -> int:
    from .probes.report import report_lines

    try:
        target_spec = _probe_target(args.endpoint, args.kind, args.timeout, args.insecure, args.ca_file, args.set)
        config = parse_config({"targets": [target_spec]}, "command line")
    except ValueError as exc:  # an option that is not KEY=VALUE, or a kind with nothing to probe
        print(f"tocsin probe: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for line in exc.errors:
            print(line.replace("command line: targets[0].", ""), file=sys.stderr)
        return 2
    target = config.targets[0]

    async def once():
        return await run_probe(target.probe, asyncio.get_running_loop().time() + args.timeout)

    result = aio.run(once())
    verdict = "success" if result.success else f"failure ({result.reason}: {result.message})"
    print(f"{target.kind} probe of {target.endpoint}: {verdict}")  # the endpoint shows no password
    print(f"  duration        {result.duration * 1000:.1f} ms, attempts {result.attempts}")
    print(f"  correlation id  {result.correlation_id}")
    print("\n".join(report_lines(result)))
    return 0 if result.success else 1


def _cmd_prometheus_config(args: argparse.Namespace) -> int:
    """Print the scrape configuration for every shard and replica; write file_sd and fleet rules if asked."""
    from .cluster import prometheus

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    try:
        replicas = [prometheus.parse_replica(text) for text in args.replica]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.file_sd:
        with open(args.file_sd, "w", encoding="utf-8") as f:
            f.write(prometheus.file_sd(loaded, replicas))
    if args.rules:
        quorum = args.quorum or len(replicas) // 2 + 1
        with open(args.rules, "w", encoding="utf-8") as f:
            f.write(prometheus.fleet_rules(job=args.job, quorum=quorum, for_=args.for_))
    print(prometheus.scrape_config(loaded, replicas, job=args.job, file_sd=args.file_sd,
                                   interval=args.scrape_interval), end="")
    return 0


def _cmd_import_blackbox(args: argparse.Namespace) -> int:
    from .importers.blackbox import command

    return command(args.blackbox_config, args.prometheus_config)


def _cmd_config_reference(args: argparse.Namespace) -> int:
    from .reference.config_reference import render, undescribed

    text = render()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    for key in undescribed():
        print(f"note: {key} has no description", file=sys.stderr)
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    from . import loadgen
    from .units import parse_duration

    try:
        duration = parse_duration(args.duration) if args.duration else None
    except ValueError as exc:
        print(f"--duration: {exc}", file=sys.stderr)
        return 2
    return loadgen.main(args.urls, args.requests, args.concurrency, duration, args.timeout, args.max_error_rate,
                        False if args.no_progress else None)


def _cmd_config_schema(args: argparse.Namespace) -> int:
    from .reference.json_schema import render

    if args.output == "-":
        sys.stdout.write(render())
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(render())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import serve_demo

    serve_demo(args.host, args.port)
    return 0


def _cmd_notify_test(args: argparse.Namespace) -> int:
    """Send one test notification through the real receiver, now; exit 0 if it was accepted."""
    from .errors import NotificationError
    from .notify import send_test
    from .notify.notifier import build_receivers

    loaded = _load_or_report(args.config)
    if loaded is None:
        return 1
    alerting = loaded.config.alerting
    if alerting is None:
        print(f"{args.config}: no alerting section", file=sys.stderr)
        return 1
    receivers = build_receivers(alerting)
    if args.receiver not in receivers:
        print(f"{args.config}: no receiver named {args.receiver!r} (have: {', '.join(sorted(receivers))})",
              file=sys.stderr)
        return 1
    receiver = receivers[args.receiver]
    if receiver is None:
        print(f"receiver {args.receiver!r} has no kind configured; it drops every alert", file=sys.stderr)
        return 1
    try:
        send_test(receiver, loaded.global_.external_labels, alerting.external_url or "")
    except NotificationError as exc:
        print(f"receiver {args.receiver} ({receiver.kind}): test notification failed: {exc.message}",
              file=sys.stderr)
        return 1
    print(f"receiver {args.receiver} ({receiver.kind}): test notification accepted")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tocsin", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tocsin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon in the foreground (what systemd runs)")
    run.add_argument("--config", default=DEFAULT_CONFIG, help=f"configuration file (default {DEFAULT_CONFIG})")
    run.add_argument("--shard", metavar="I[/N]", help="run shard I of N (N defaults to cluster.shards): "
                     "only the targets that hash to it, on the listen port + I, state under state_dir/shard-I")
    run.add_argument("--replica", metavar="NAME", help="this copy's name in an HA pair (cluster.replica); "
                     "labels tocsin_shard_info and the log, never the alerts")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate files without running anything")
    check_sub = check.add_subparsers(dest="what", required=True)
    check_config = check_sub.add_parser("config", help="validate configuration files")
    check_config.add_argument("files", nargs="+", metavar="FILE")
    check_config.set_defaults(func=_cmd_check_config)
    check_rules = check_sub.add_parser("rules", help="validate Prometheus-format rule files")
    check_rules.add_argument("files", nargs="+", metavar="FILE")
    check_rules.set_defaults(func=_cmd_check_rules)

    test = sub.add_parser("test", help="run unit tests")
    test_sub = test.add_subparsers(dest="what", required=True)
    test_rules = test_sub.add_parser("rules", help="run promtool-format rule unit tests with tocsin's engine")
    test_rules.add_argument("files", nargs="+", metavar="FILE")
    test_rules.set_defaults(func=_cmd_test_rules)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="what", required=True)
    reference = config_sub.add_parser("reference", help="write the configuration reference (docs/configuration.md)")
    reference.add_argument("--output", "-o", default="-", metavar="FILE", help="write here (default: stdout)")
    reference.set_defaults(func=_cmd_config_reference)
    schema = config_sub.add_parser("schema", help="write a JSON Schema of the configuration (docs/tocsin.schema.json)")
    schema.add_argument("--output", "-o", default="-", metavar="FILE", help="write here (default: stdout)")
    schema.set_defaults(func=_cmd_config_schema)

    probe = sub.add_parser("probe", help="probe one endpoint now and print the result")
    probe.add_argument("endpoint", help="URL, host:port, or name[@server:port] with --kind dns")
    probe.add_argument("--kind", choices=list(KINDS))
    probe.add_argument("--timeout", type=float, default=5.0, help="total deadline in seconds (default 5)")
    probe.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    probe.add_argument("--ca-file", help="verify the TLS certificate against these CAs (PEM)")
    probe.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="an option of the kind, as in the configuration (e.g. packets=3, service=app, "
                            "tls=true, tls_config.ca_file=ca.pem); repeatable")
    probe.set_defaults(func=_cmd_probe)

    importer = sub.add_parser("import", help="convert another tool's configuration to tocsin targets")
    import_sub = importer.add_subparsers(dest="what", required=True)
    blackbox = import_sub.add_parser("blackbox", help="blackbox_exporter modules and the Prometheus jobs using them")
    blackbox.add_argument("--blackbox-config", required=True, help="blackbox_exporter's configuration (modules)")
    blackbox.add_argument("--prometheus-config", required=True, help="Prometheus's configuration (scrape jobs)")
    blackbox.set_defaults(func=_cmd_import_blackbox)

    notify = sub.add_parser("notify", help="notification tools")
    notify_sub = notify.add_subparsers(dest="what", required=True)
    notify_test = notify_sub.add_parser("test", help="send a test notification through a receiver")
    notify_test.add_argument("receiver", metavar="RECEIVER")
    notify_test.add_argument("--config", default=DEFAULT_CONFIG, help=f"configuration file (default {DEFAULT_CONFIG})")
    notify_test.set_defaults(func=_cmd_notify_test)

    prom = sub.add_parser("prometheus-config", help="print a Prometheus scrape configuration for every shard "
                          "and replica (and write the fleet's rule file)")
    prom.add_argument("--config", default=DEFAULT_CONFIG, help=f"configuration file (default {DEFAULT_CONFIG})")
    prom.add_argument("--replica", action="append", default=[], metavar="NAME=HOST",
                      help="a replica and the host its shards run on; repeat for each (default: this host)")
    prom.add_argument("--job", default="tocsin", help="the scrape job's name (default tocsin)")
    prom.add_argument("--scrape-interval", default="15s", help="scrape_interval (default 15s)")
    prom.add_argument("--file-sd", metavar="FILE", help="write the targets to FILE (file_sd JSON) and scrape from it")
    prom.add_argument("--rules", metavar="FILE", help="write the fleet's rule file to FILE")
    prom.add_argument("--quorum", type=int, help="replicas that must see a target down for TargetDownFromQuorum "
                      "(default: a majority)")
    prom.add_argument("--for", dest="for_", default="1m", help="the fleet alerts' `for:` (default 1m)")
    prom.set_defaults(func=_cmd_prometheus_config)

    ack_command.register(sub, DEFAULT_CONFIG)

    load = sub.add_parser("load", help="send concurrent requests to URLs and summarise latency and errors")
    load.add_argument("urls", nargs="+", metavar="URL")
    load.add_argument("--concurrency", "-c", type=int, default=20, help="parallel requests (default 20)")
    load.add_argument("--requests", "-n", type=int, help="total requests (default 500, or no limit with --duration)")
    load.add_argument("--duration", "-d", help="stop after this long, e.g. 30s or 2m")
    load.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    load.add_argument("--max-error-rate", type=float, metavar="FRACTION",
                      help="exit 1 when more than this fraction of requests fail (e.g. 0.05)")
    load.add_argument("--no-progress", action="store_true", help="no progress bar (default: on a terminal)")
    load.set_defaults(func=_cmd_load)

    demo = sub.add_parser("demo-target", help="serve the flaky demo service")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--host", default="127.0.0.1")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

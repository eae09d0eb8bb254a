"""Hostile configuration, rule and rule-test files: each refused with `FILE:LINE: key.path: reason`.

The files are generated here and checked by the real command in a child process whose
address space is capped (RLIMIT_AS), under a timeout: a traceback, a hang or an allocation
without bound fails the test. A running daemon given each kind of hostile file by SIGHUP
keeps its configuration and reports the same error.
"""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port, scaled, wait_for

ADDRESS_SPACE = 1024 * 2**20  # the daemon's own imports take ~400 MiB of it


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def alias_bomb(levels: int, width: int = 9, key: str = "targets") -> str:
    """Each level an anchored list of `width` aliases of the one before: width**levels nodes through aliases."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\n{key}: *a{levels - 1}\n"


def merge_bomb(levels: int) -> str:
    """The same through merge keys: each mapping merges the one before under 9 keys."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{" + ", ".join(f"k{j}: {{<<: *m{i - 1}}}" for j in range(9)) + "}")
    return "\n".join(lines) + f"\nglobal: *m{levels - 1}\n"


TARGET = "targets:\n  - {name: a, url: 'http://127.0.0.1:1/'}\n"


@dataclass
class Case:
    name: str
    content: str | bytes
    line: int | None  # the line the error must name (None: no line, e.g. the whole file)
    reason: str  # a regular expression the rest of the error line must match

    def write(self, directory: Path) -> Path:
        path = directory / f"{self.name}.yml"
        if isinstance(self.content, bytes):
            path.write_bytes(self.content)
        else:
            path.write_text(self.content, encoding="utf-8")
        return path


# Hostile to any YAML reader: configuration and rule files alike.
YAML_CASES = [
    Case("alias_bomb_452", alias_bomb(7), 5, r"excessive aliasing"),
    Case("alias_bomb_deeper", alias_bomb(9), 5, r"excessive aliasing"),
    Case("merge_bomb", merge_bomb(8), 4, r"excessive aliasing"),
    Case("recursive_alias", "a: &a [1, *a]\n", 1, r"alias \*a is inside its own anchor"),
    Case("undefined_alias", "a: *nothing\n", 1, r"found undefined alias 'nothing'"),
    Case("deep_flow", "a: " + "[" * 5000 + "]" * 5000 + "\n", 1, r"(nested more than 100 levels|exceeded maximum)"),
    Case("deep_flow_900", "a: " + "[" * 900 + "]" * 900 + "\n", 1, r"nested more than 100 levels deep"),
    Case("deep_block", "a:\n" + "".join(" " * i + "- \n" for i in range(1, 400)), 101,
         r"nested more than 100 levels deep"),
    Case("deep_mappings", "a: " + "{a: " * 300 + "1" + "}" * 300 + "\n", 1, r"nested more than 100 levels"),
    Case("not_utf8", b"a: 1\nb: \"caf\xe9\"\n", 2, r"not valid UTF-8 \(byte 0xe9\)"),
    Case("utf16", "a: 1\n".encode("utf-16"), 1, r"not valid UTF-8 \(byte 0xff\)"),
    Case("control_character", "a: 1\nb: \x07bell\n", 2, r"character U\+0007 is not allowed"),
    Case("bad_indentation", "a:\n  b: 1\n c: 2\n", 3, r"did not find expected key"),
    Case("duplicate_key", "a: 1\nb: 2\na: 3\n", 3, r"duplicate key 'a'"),
    Case("collection_key", "? [a]\n: 1\n", 1, r"a mapping key must be a scalar"),
    Case("huge_int", "a: " + "9" * 5000 + "\n", 1, r"cannot read '9{40}\.\.\.' as int: Exceeds the limit"),
    Case("bad_date", "a: 2001-02-30\n", 1, r"cannot read '2001-02-30' as timestamp: day is out of range"),
    Case("python_tag", "a: !!python/object/apply:os.system [echo]\n", 1, r"could not determine a constructor"),
    Case("two_documents", "a: 1\n---\na: 2\n", 2, r"but found another document"),
    Case("million_nodes", "a: [" + "0," * 1_000_001 + "]\n", 1, r"more than 1000000 nodes"),
]

CONFIG_CASES = [
    Case("duration_overflow", "global: {interval: 10000000000y}\n" + TARGET, 1,
         r"global\.interval: duration out of range: '10000000000y' \(at most 292y\)"),
    Case("duration_digits", f"global:\n  timeout: {'9' * 5000}s\n" + TARGET, 2,
         r"global\.timeout: duration out of range: '9{39}\.\.\."),
    Case("size_overflow", f"logging:\n  file: {{path: x.log, max_bytes: {'9' * 400}TiB}}\n" + TARGET, 2,
         r"logging\.file\.max_bytes: size out of range"),
    Case("unresolvable_listen_address", "global: {listen_address: 'no-such-host.invalid:9469'}\n" + TARGET, 1,
         r"global\.listen_address: cannot listen on 'no-such-host\.invalid:9469': host 'no-such-host\.invalid' "
         r"does not resolve"),
    Case("listen_port_digits", "global: {listen_address: '127.0.0.1:\u0663\u0663'}\n" + TARGET, 1,
         r"global\.listen_address: expected host:port"),
    Case("typo", "global:\n  interval: 10s\n  evaluation_intervall: 10s\n" + TARGET, 3,
         r"global\.evaluation_intervall: unknown key \(did you mean evaluation_interval\?\)"),
    Case("typo_in_target", "targets:\n  - name: a\n    url: http://x/\n    http: {valid_status_code: [200]}\n", 4,
         r"targets\[0\]\.http\.valid_status_code: unknown key \(did you mean valid_status_codes\?\)"),
    Case("bad_regexp", "targets:\n  - name: a\n    url: http://x/\n    http:\n      fail_if_body_matches_regexp:\n"
         "        - ok\n        - '(?<x'\n", 7,
         r"targets\[0\]\.http\.fail_if_body_matches_regexp\[1\]: invalid regular expression '\(\?<x': "
         r"invalid named capture group"),
    Case("duplicate_target_among_errors", "targets:\n  - {name: a, url: http://x/}\n  - {name: b, url: ftp://x/}\n"
         "  - {name: a, url: http://y/}\n", 4, r"targets\[2\]\.name: duplicate target name 'a' \(first at targets\[0\]\)"),
    Case("huge_key", "global:\n  ? " + "k" * 100_000 + "\n  : 1\n" + TARGET, 2, r"global\.k{60}\.\.\.: unknown key$"),
    Case("targets_not_a_list", "targets: {name: a}\n", 1, r"targets: expected a list"),
    Case("list_at_top", "- a\n- b\n", None, r"expected a mapping at the top level"),
    Case("missing_env", "targets:\n  - name: a\n    url: http://x/${TOCSIN_HOSTILE_UNSET}\n", 3,
         r"targets\[0\]\.url: environment variable TOCSIN_HOSTILE_UNSET is not set"),
    Case("name_not_a_string", "targets:\n  - url: http://x/\n    name: [a, b]\n", 3, r"targets\[0\]\.name: expected a string"),
    Case("null_target", "targets:\n  - {name: a, url: http://x/}\n  - null\n", 3, r"targets\[1\]: expected a mapping"),
    Case("oversized_file", b"", None, r"larger than 64 MiB"),  # written sparse, below
]

RULE_CASES = [
    Case("rule_for_overflow", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"
         "        for: 10000000000y\n", None, r'4:\d+: group "g", rule 1, "A": not a valid duration string'),
    Case("rule_unknown_key", "groups:\n  - name: g\n    intervall: 1m\n    rules: []\n", None,
         r"yaml: line 3: field intervall not found"),
]

RULE_TEST_CASES = [
    Case("test_alias_bomb", alias_bomb(7, key="tests"), 5, r"excessive aliasing"),
    Case("test_not_utf8", b"tests:\n  - name: \"\xff\"\n", 2, r"not valid UTF-8"),
    Case("test_deep", "tests: " + "[" * 500 + "]" * 500 + "\n", 1, r"nested more than 100 levels deep"),
]


def _write(cases: list[Case], directory: Path) -> dict[str, Path]:
    paths = {case.name: case.write(directory) for case in cases}
    if "oversized_file" in paths:
        with paths["oversized_file"].open("r+b") as fh:
            fh.truncate(65 * 2**20)  # sparse: costs no disk, reads as 65 MiB of NUL
    return paths


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "tocsin.cli", *args], capture_output=True, text=True,
                              cwd=cwd, timeout=scaled(60), preexec_fn=_cap_memory)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`tocsin {' '.join(args[:2])}` did not finish: a hostile file hangs it\n{exc.stdout!r}")


def _check(cases: list[Case], paths: dict[str, Path], proc: subprocess.CompletedProcess) -> None:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "MemoryError" not in output, output[-3000:]
    assert proc.returncode == 1, output[-3000:]
    missing = []
    for case in cases:
        where = re.escape(str(paths[case.name])) + (f":{case.line}" if case.line else "")
        if not re.search(rf"^{where}(:\d+)?: (.*: )?{case.reason}", proc.stderr, re.MULTILINE):
            found = [line[:300] for line in proc.stderr.splitlines() if str(paths[case.name]) in line]
            missing.append(f"{case.name}: expected {where}: {case.reason}\n    got {found}")
    assert not missing, "\n".join(missing)


def test_hostile_configuration_files_are_refused_with_file_line_and_reason(tmp_path):
    cases = YAML_CASES + CONFIG_CASES
    paths = _write(cases, tmp_path)
    proc = _run("check", "config", *map(str, paths.values()), cwd=tmp_path)
    assert "OK" not in proc.stdout, proc.stdout
    _check(cases, paths, proc)


def test_hostile_rule_files_are_refused_with_file_line_and_reason(tmp_path):
    cases = [case for case in YAML_CASES if case.name != "million_nodes"] + RULE_CASES  # the same loader: once is enough
    paths = _write(cases, tmp_path)
    proc = _run("check", "rules", *map(str, paths.values()), cwd=tmp_path)
    assert "SUCCESS" not in proc.stdout, proc.stdout
    _check(cases, paths, proc)


def test_hostile_rule_test_files_are_refused_with_file_line_and_reason(tmp_path):
    paths = _write(RULE_TEST_CASES, tmp_path)
    proc = _run("test", "rules", *map(str, paths.values()), cwd=tmp_path)
    _check(RULE_TEST_CASES, paths, proc)


def test_the_largest_duration_go_holds_runs(daemon_factory):
    """292 years, Go's time.Duration's limit and so the bound, is one the scheduler and the event loop take."""
    daemon = daemon_factory("global: {listen_address: '127.0.0.1:{port}', interval: 292y, timeout: 292y, "
                            "evaluation_interval: 292y, state_dir: '{dir}/state'}\n"
                            "targets:\n  - {name: a, url: 'http://127.0.0.1:1/', backoff_when_down: {max_interval: 292y},"
                            " retry: {attempts: 2, initial_backoff: 292y, max_backoff: 292y}}\n")
    assert [t["name"] for t in daemon.targets()] == ["a"]
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output(), daemon.output()


GOOD_RULES = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: up_count\n        expr: count(probe_success)\n"


def test_sighup_with_each_kind_of_hostile_file_keeps_the_running_configuration(daemon_factory):
    good = ("global: {listen_address: '127.0.0.1:{port}', interval: 1s, timeout: 500ms, state_dir: '{dir}/state'}\n"
            "targets:\n  - {name: kept, tcp: {address: '127.0.0.1:" + str(free_port()) + "'}}\n"
            "rule_files: [rules.yml]\n")
    daemon = daemon_factory(good, start=False)
    rules = daemon.dir / "rules.yml"
    rules.write_text(GOOD_RULES)
    daemon.start()
    hostile_configs = {case.name: case for case in YAML_CASES + CONFIG_CASES
                       if case.name in ("alias_bomb_452", "merge_bomb", "recursive_alias", "deep_flow_900", "not_utf8",
                                        "million_nodes", "duration_overflow", "unresolvable_listen_address",
                                        "bad_regexp", "typo")}
    hostile_rules = {case.name: case for case in YAML_CASES + RULE_CASES
                     if case.name in ("alias_bomb_452", "deep_block", "not_utf8", "rule_for_overflow")}
    reloads = [(case, daemon.config, good.replace("{port}", str(daemon.port)).replace("{dir}", str(daemon.dir)))
               for case in hostile_configs.values()]
    reloads += [(case, rules, GOOD_RULES) for case in hostile_rules.values()]
    for case, path, restore in reloads:
        offset = len(daemon.output())
        if isinstance(case.content, bytes):
            path.write_bytes(case.content)
        else:
            path.write_text(case.content)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 0, timeout=30,
                 what=f"the reload of {case.name} to be refused")
        error = re.compile(re.escape(str(path)) + (f":{case.line}" if case.line else "") + rf"(:\d+)?: (.*: )?{case.reason}")
        wait_for(lambda error=error, offset=offset: error.search(daemon.output()[offset:]), timeout=5,
                 what=f"the error of {case.name} in the log")
        assert "Traceback" not in daemon.output()[offset:], daemon.output()[offset:]
        assert [t["name"] for t in daemon.targets()] == ["kept"]
        path.write_text(restore)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 1, timeout=30,
                 what=f"the good file to load again after {case.name}")
    assert daemon.sample("tocsin_rule_group_rules", rule_group=f"{rules};g") == 1  # the good rule file is back
    assert daemon.stop() == 0

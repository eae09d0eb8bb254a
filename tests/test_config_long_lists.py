"""A configuration with a huge list of broken items: reported in bounded memory, the first 100 problems.

pydantic validated such a list whole and built an error object for every item (a file of
900 000 broken targets took 1.5 GB); now long lists are validated a chunk at a time and
checking stops after 100 problems. The peak RSS of `tocsin check config` is measured in a
subprocess, against the same command on a one-item file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO, scaled
from tocsin.config import schema
from tocsin.config.load import load_yaml
from tocsin.errors import ConfigError

_PEAK = """
import resource, runpy, sys
sys.argv = ["tocsin", "check", "config", sys.argv[1]]
code = 0
try:
    runpy.run_module("tocsin.cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("peak-kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _check(path: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, cwd=REPO,
                          timeout=scaled(120))
    lines = proc.stderr.splitlines()
    assert lines and lines[-1].startswith("peak-kb "), proc.stderr[-2000:]
    return proc, int(lines[-1].split()[1]) * 1024


def _targets(path: Path, count: int) -> Path:
    with path.open("w") as fh:
        fh.write("global: {interval: 30s}\ntargets:\n")
        for i in range(count):
            fh.write(f"  - {{nme: t{i}}}\n")  # a misspelt key: two problems per item
    return path


def test_a_hundred_thousand_broken_targets_cost_memory_in_proportion_to_the_file(tmp_path: Path) -> None:
    small, small_peak = _check(_targets(tmp_path / "one.yml", 1))
    assert small.returncode == 1
    big_path = _targets(tmp_path / "many.yml", 100_000)
    big, big_peak = _check(big_path)
    assert big.returncode == 1 and "Traceback" not in big.stderr, big.stderr[-2000:]
    errors = big.stderr.splitlines()[:-1]
    shown = [line for line in errors if ": targets[" in line]
    assert len(shown) == 100, len(shown)
    assert shown[0] == f"{big_path}:3:5: targets[0].name: required key is missing"
    assert "(did you mean name?)" in shown[1]
    # The first chunk of 1 000 items (2 000 problems) was checked, the rest not.
    assert errors[-2].endswith(": … and 1900 more problems not shown"), errors[-3:]
    assert errors[-1].endswith(": … and 99000 more list items not checked"), errors[-3:]
    size = big_path.stat().st_size
    # Reading 600 000 YAML nodes costs about 100 bytes of memory per byte of file; one
    # pydantic error per item cost twice that more (745 MB over the baseline for twice as many).
    assert big_peak - small_peak < 130 * size, (big_peak - small_peak, size)


def test_problems_of_the_rest_of_the_file_are_reported_with_those_of_a_long_list(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    items = "".join(f"  - {{name: t{i}, tcp: {{address: '127.0.0.1:{1 + i % 60000}'}}}}\n" for i in range(12_000))
    path.write_text(f"global: {{interval: 5x}}\ntargets:\n{items}  - {{name: bad, tcp: {{address: nope}}}}\n")
    try:
        schema.parse_config(load_yaml(path), str(path))
    except ConfigError as exc:
        text = str(exc)
    else:
        raise AssertionError("accepted")
    assert "global.interval" in text, text
    assert "targets[12000].tcp.address" in text, text


def test_a_long_valid_list_inherits_global_while_checked_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    items = "".join(f"  - {{name: t{i}, timeout: 20s, tcp: {{address: '127.0.0.1:{1 + i}'}}}}\n" for i in range(12_000))
    path.write_text(f"global: {{interval: 30s}}\ntargets:\n{items}")
    config = schema.parse_config(load_yaml(path), str(path))
    assert len(config.targets) == 12_000 and config.targets[-1].interval == 30.0

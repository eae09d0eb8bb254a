"""The configuration mistakes a newcomer makes, as `tocsin check config` reports them."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = {
    "typo": ("targets:\n  - name: a\n    url: http://127.0.0.1:1/\n    http:\n      valid_status_code: [200]\n",
             ["typo.yml:5:7: targets[0].http.valid_status_code: unknown key (did you mean valid_status_codes?)"]),
    "indentation": ("targets:\n  - name: a\n   url: http://x/\n", ["indentation.yml:3:"]),
    "regex": ("targets:\n  - name: a\n    url: http://127.0.0.1:1/\n    http:\n"
              "      fail_if_body_matches_regexp: ['(a']\n",
              ["regex.yml:5:37: targets[0].http.fail_if_body_matches_regexp[0]: invalid regular expression '(a': "
               "missing ): (a"]),
    "duplicate": ("targets:\n  - name: a\n    url: http://127.0.0.1:1/\n  - name: a\n    url: http://127.0.0.1:1/\n"
                  "    interval: often\n",
                  ["duplicate.yml:4:5: targets[1].name: duplicate target name 'a' (first at targets[0])",
                   "duplicate.yml:6:5: targets[1].interval: expected a duration"]),
    "one line": ("targets: [{name: a, url: 'http://127.0.0.1:1/', intervall: 5s, timeout: soon}]\n",
                 ["one line.yml:1:64: targets[0].timeout: expected a duration",
                  "one line.yml:1:49: targets[0].intervall: unknown key (did you mean interval?)"]),
    "empty": ("", ["empty.yml: the file is empty"]),
    "comments": ("# nothing yet\n", ["comments.yml: the file is empty"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_mistake_is_one_clean_line_per_problem_naming_the_file(case, tmp_path):
    text, expected = CASES[case]
    (tmp_path / f"{case}.yml").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "tocsin.cli", "check", "config", f"{case}.yml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == len(expected), proc.stderr  # nothing else: no library noise, no traceback
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), proc.stderr
    for noise in ("<unicode string>", "b'", "re2.cc", "Traceback", "pydantic"):
        assert noise not in proc.stderr

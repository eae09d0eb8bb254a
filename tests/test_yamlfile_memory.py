"""What reading a large YAML file costs, and that the cheaper tree still knows every position.

A configuration of 10 000 targets is about two million bytes and a quarter of a million
YAML nodes; the parser's node graph and the built tree used to be held whole at once, with
an 80-byte parser mark (and a tuple) kept for every key, value and item.
"""

from __future__ import annotations

import tracemalloc

from tocsin import yamlfile

TARGETS = 2000
TARGET = ("  - name: t{i}\n    url: http://host{i}.example:8080/health\n"
          "    http: {{method: GET, headers: {{X-A: b}}, valid_status_codes: [200, 204]}}\n"
          "    labels: {{team: a{team}, env: prod}}\n")
NODES_PER_TARGET = 24


def test_reading_a_large_file_costs_under_450_bytes_a_node_at_its_peak() -> None:
    text = "targets:\n" + "".join(TARGET.format(i=i, team=i % 7) for i in range(TARGETS))
    tracemalloc.start()
    try:
        tree = yamlfile.loads(text, "big.yml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / (TARGETS * NODES_PER_TARGET) < 450  # 515 with the node graph and parser marks kept whole
    last = tree["targets"][TARGETS - 1]
    line = 1 + 4 * (TARGETS - 1) + 1  # the last target's `- name:` line
    assert (tree["targets"].item_pos(TARGETS - 1).line, tree["targets"].item_pos(TARGETS - 1).col) == (line, 5)
    assert (last.key_pos("labels").line, last.key_pos("labels").col) == (line + 3, 5)
    assert (last.val_pos("labels").line, last.val_pos("labels").col) == (line + 3, 13)
    assert yamlfile.line_of(tree, ("targets", TARGETS - 1, "http", "valid_status_codes", 1)) == line + 2
    assert last["http"]["valid_status_codes"] == [200, 204]


def test_aliases_and_merge_keys_still_share_what_they_name() -> None:
    tree = yamlfile.loads("base: &b {method: GET, codes: &c [200, 204]}\n"
                          "one: *b\n"
                          "two: {<<: *b, method: POST}\n"
                          "codes: *c\n"
                          "name: &n x\n"
                          "again: *n\n", "a.yml")
    assert tree["one"] == {"method": "GET", "codes": [200, 204]} and tree["one"] is tree["base"]
    assert tree["two"] == {"method": "POST", "codes": [200, 204]}
    assert tree["codes"] is tree["base"]["codes"] and tree["again"] == "x"
    assert (tree["two"].key_pos("codes").line, tree["two"].key_pos("codes").col) == (1, 24)
    assert (tree["two"].key_pos("method").line, tree["two"].key_pos("method").col) == (3, 15)

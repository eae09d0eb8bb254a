"""label_replace and label_join. Their arguments must be string literals (checked at load);
the regex and the label names are checked when evaluated, as 2.42 does: `promtool check
rules` accepts `label_join(x, "a-b", ...)` and every evaluation of it fails, even over an
empty vector, so tocsin loads it and fails the same way."""

from __future__ import annotations

from typing import Any

from ...gofmt import expand
from .. import nodes as N
from ..errors import PromQLEvalError, PromQLParseError
from ..labels import Labels, get, is_valid_label_name, set_label
from ..matchers import compile_anchored
from ..values import Sample


def _check_string_literals(node: N.Call) -> None:
    for a in node.args:
        if a.type == N.STRING and not isinstance(a, N.StringLiteral):
            raise PromQLParseError(f"{node.name}(): string arguments must be literals")


def check_label_replace(node: N.Call) -> None:
    _check_string_literals(node)


def s_label_replace(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    vec, dst, repl, src, regex_s = args
    try:
        regex = compile_anchored(regex_s)
    except PromQLParseError:
        raise PromQLEvalError(f"invalid regular expression in label_replace(): {regex_s}") from None
    if not is_valid_label_name(dst):
        raise PromQLEvalError(f"invalid destination label name in label_replace(): {dst}")
    out: list[Sample] = []
    memo: dict[Labels, Labels] = {}
    for s in vec:
        new = memo.get(s.labels)
        if new is None:
            m = regex.search(get(s.labels, src))
            if m is None:
                new = s.labels
            else:
                new = set_label(s.labels, dst, expand(repl, m))
            memo[s.labels] = new
        out.append(Sample(new, s.value))
    return out  # a label set twice fails as any function's output does, as in 2.42


def check_label_join(node: N.Call) -> None:
    _check_string_literals(node)


def s_label_join(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    vec, dst, sep = args[0], args[1], args[2]
    srcs = args[3:]
    for name in srcs:
        if not is_valid_label_name(name):
            raise PromQLEvalError(f"invalid source label name in label_join(): {name}")
    if not is_valid_label_name(dst):
        raise PromQLEvalError(f"invalid destination label name in label_join(): {dst}")
    out: list[Sample] = []
    for s in vec:
        joined = sep.join(get(s.labels, name) for name in srcs)
        out.append(Sample(set_label(s.labels, dst, joined), s.value))
    return out

"""Executing a parsed template against data, within bounds.

A template is parsed once, when its rule file is loaded, and executed for every alert
it labels or annotates. Execution is bounded (100 000 steps, 1 MB of output), so a
`range` over a large query result or a runaway loop fails the expansion instead of
stalling rule evaluation, and it reaches nothing but map keys and the documented
fields of TemplateData and QuerySample.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from .functions import FUNCTIONS, KNOWN_FUNCTIONS
from .parse import Action, Control, Field, FunctionRef, Literal, Parser, Pipeline, Text
from .values import (
    MAX_OUTPUT_CHARS,
    MAX_STEPS,
    NO_VALUE,
    QuerySample,
    TemplateData,
    TemplateError,
    go_sprint,
    go_type_name,
    truth,
)

__all__ = ["MAX_OUTPUT_CHARS", "MAX_STEPS", "Template", "alert_template_data"]


class _Execution:
    """One expansion: variable scopes, output so far and the step count."""

    def __init__(self, name: str, data: Any, funcs: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.funcs = funcs
        self.scopes: list[dict[str, Any]] = [{"$": data}]
        self.out: list[str] = []
        self.size = 0  # characters in out
        self.steps = 0

    def error(self, msg: str) -> TemplateError:
        return TemplateError(f"template: {self.name}: {msg}")

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.error(f"template too expensive (over {MAX_STEPS} steps)")

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            raise self.error(f"template output too large (over {MAX_OUTPUT_CHARS} characters)")
        self.out.append(text)

    def run(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            self.step()
            if isinstance(node, Text):
                self.emit(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.emit(go_sprint(value))
            else:
                self.control(node, dot)

    def control(self, node: Control, dot: Any) -> None:
        self.scopes.append({})
        try:
            if node.kind == "range":
                value = self.pipe(node.pipe, dot, declare=False)
                items: Iterable[tuple[Any, Any]]
                if isinstance(value, dict):
                    items = sorted(value.items())
                elif isinstance(value, (list, tuple)):
                    items = enumerate(value)
                elif isinstance(value, int) and not isinstance(value, bool):
                    items = ((i, i) for i in range(value))  # lazily: `range 1000000000` runs out of steps
                elif value is NO_VALUE or value is None:
                    items = ()
                else:
                    raise self.error(f"range can't iterate over {go_sprint(value)}")
                if value is NO_VALUE or value is None or (value <= 0 if isinstance(value, int) else not value):
                    self.run(node.else_body, dot)
                for key, elem in items:
                    self.step()  # an empty body still costs its iterations
                    if len(node.pipe.decl) == 1:
                        self.scopes[-1][node.pipe.decl[0]] = elem
                    elif len(node.pipe.decl) == 2:
                        self.scopes[-1][node.pipe.decl[0]] = key
                        self.scopes[-1][node.pipe.decl[1]] = elem
                    self.run(node.body, elem)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.run(node.body, value if node.kind == "with" else dot)
            else:
                self.run(node.else_body, dot)
        finally:
            self.scopes.pop()

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.error(f"undefined variable: {name}")

    def pipe(self, pipe: Pipeline, dot: Any, declare: bool = True) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        if declare and pipe.decl:
            if pipe.assign:
                for scope in reversed(self.scopes):
                    if pipe.decl[0] in scope:
                        scope[pipe.decl[0]] = value
                        break
            else:
                self.scopes[-1][pipe.decl[0]] = value
        return value

    def command(self, cmd: list[Any], dot: Any, piped: Any) -> Any:
        head = cmd[0]
        if isinstance(head, FunctionRef):
            args = [self.arg(a, dot) for a in cmd[1:]]
            if piped is not _MISSING:
                args.append(piped)
            return self.call(head.name, args)
        if piped is not _MISSING or len(cmd) > 1:
            if isinstance(head, Field) and head.path:
                raise self.error(f"{head.path[-1]} is not a method but has arguments")
            raise self.error("can't give argument to non-function")
        return self.arg(head, dot)

    def call(self, name: str, args: list[Any]) -> Any:
        if name in ("and", "or"):
            if not args:
                raise self.error(f"wrong number of args for {name}: want at least 1 got 0")
            for a in args:
                if truth(a) != (name == "and"):
                    return a
            return args[-1]
        fn = self.funcs.get(name)  # the context's functions first, then the fixed table
        if fn is None:
            fn = FUNCTIONS[name]
        try:
            result = fn(*args)
            if isinstance(result, str) and len(result) > MAX_OUTPUT_CHARS:
                raise TemplateError(f"result longer than {MAX_OUTPUT_CHARS} characters")
            return result
        except TemplateError as exc:
            raise self.error(f"error calling {name}: {exc}") from None
        except TypeError:
            raise self.error(f"wrong number of args for {name}: got {len(args)}") from None
        except (ValueError, ArithmeticError, AttributeError, IndexError, KeyError) as exc:
            raise self.error(f"error calling {name}: {exc}") from None

    def arg(self, node: Any, dot: Any) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Pipeline):
            return self.pipe(node, dot)
        if isinstance(node, FunctionRef):
            return self.call(node.name, [])
        if isinstance(node, Field):
            if node.base == ".":
                value = dot
            elif isinstance(node.base, str):
                value = self.lookup(node.base)
            else:
                value = self.arg(node.base, dot)
            for name in node.path:
                value = self.field(value, name)
            return value
        raise self.error("bad node")

    def field(self, value: Any, name: str) -> Any:
        if isinstance(value, dict):
            # Prometheus's maps are map[string]string: a missing key reads as "" (checked
            # against promtool 2.42), not text/template's "<no value>".
            return value.get(name, "")
        if isinstance(value, (QuerySample, TemplateData)) and name in type(value).__dataclass_fields__:
            return getattr(value, name)
        if value is NO_VALUE or value is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        raise self.error(f"can't evaluate field {name} in type {go_type_name(value)}")


_MISSING = object()  # no value piped in yet (Go's missingVal)


# What Prometheus prepends to each alert template, so `$labels` etc. exist.
ALERT_DEFS = ("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
              "{{$externalURL := .ExternalURL}}{{$value := .Value}}")


class Template:
    """A parsed template; `execute(data)` is pure apart from the `query` callback."""

    def __init__(self, text: str, name: str = "template", alert: bool = True) -> None:
        self.text = text
        self.name = name
        self.alert = alert
        source = (ALERT_DEFS + text) if alert else text
        self._nodes = Parser(name, source, KNOWN_FUNCTIONS).parse()

    def execute(self, data: TemplateData | Any, *, query: Callable[[str], list[QuerySample]] | None = None,
                now: float | None = None, external_url: str = "") -> str:
        funcs: dict[str, Callable[..., Any]] = {}

        def _query(q: str) -> list[QuerySample]:
            if query is None:
                raise TemplateError("query is not available here")
            return query(q)

        funcs["query"] = _query
        funcs["externalURL"] = lambda: external_url
        funcs["pathPrefix"] = lambda: urllib.parse.urlsplit(external_url).path
        funcs["now"] = lambda: float(now if now is not None else datetime.now(timezone.utc).timestamp())
        funcs["call"] = _call_unsupported
        ex = _Execution(self.name, data, funcs)
        ex.run(self._nodes, data)
        return "".join(ex.out)


def _call_unsupported(*_args: Any) -> Any:
    raise TemplateError("call is not supported")


def alert_template_data(labels: dict[str, str], external_labels: dict[str, str], external_url: str,
                        value: float) -> TemplateData:
    """The data of one alert's expansion, with copies of the label maps."""
    return TemplateData(dict(labels), dict(external_labels), external_url, value)

"""The Go text/template subset used in alert labels and annotations."""

from __future__ import annotations

import re

import pytest

from tocsin.gofmt import format_float
from tocsin.templates import Template, TemplateError, alert_template_data, go_printf


def run(text: str, value: float = 1234567.0, labels: dict | None = None) -> str:
    data = alert_template_data(labels or {"target": "web", "hp": "db-1.example.org:5432"}, {"env": "prod"},
                               "http://tocsin:9469", value)
    return Template(text).execute(data, query=lambda _query: [])


@pytest.mark.parametrize("text,expected", [
    ("{{ $labels.target }} is down", "web is down"),
    ("{{ .Labels.target }}/{{ .ExternalLabels.env }}", "web/prod"),
    ("{{ $value }}", "1.234567e+06"),
    ("{{ $labels.missing }}|", "|"),
    ("{{ $value | humanize }}", "1.235M"),
    ("{{ humanize 0.00123 }}", "1.23m"),
    ("{{ humanize1024 1048576 }}", "1Mi"),
    ("{{ humanizeDuration 90061 }}", "1d 1h 1m 1s"),
    ("{{ humanizeDuration 0.25 }}", "250ms"),
    ("{{ humanizePercentage 0.0512 }}", "5.12%"),
    ("{{ humanizeTimestamp 86400.5 }}", "1970-01-02 00:00:00.5 +0000 UTC"),
    ('{{ printf "%.2f" $value }}', "1234567.00"),
    ('{{ printf "%s=%d" "n" 3 }}', "n=3"),
    ('{{ printf "%5.1f|%-4s|" 3.14159 "ab" }}', "  3.1|ab  |"),
    ("{{ toUpper $labels.target }} {{ $labels.target | title }} {{ toLower \"ABC\" }}", "WEB Web abc"),
    ('{{ reReplaceAll "(.*):(\\\\d+)" "$2 on $1" $labels.hp }}', "5432 on db-1.example.org"),
    ("{{ stripPort $labels.hp }}", "db-1.example.org"),
    ("{{ if gt $value 1000.0 }}big{{ else if gt $value 10.0 }}mid{{ else }}small{{ end }}", "big"),
    ('{{ if eq $labels.target "api" "web" }}yes{{ end }}', "yes"),
    ('{{ if and (ne $labels.target "x") (not false) }}ok{{ end }}', "ok"),
    ("{{ with $labels.target }}<{{ . }}>{{ end }}", "<web>"),
    ("{{ range $k, $v := $externalLabels }}{{ $k }}={{ $v }}{{ end }}", "env=prod"),
    ("a  {{- \" b \" -}}  c", "a b c"),
    ("{{/* a comment */}}x", "x"),
    ("{{ $x := 5 }}{{ $x }}", "5"),
    ("{{ len $labels }}", "2"),
    ("{{ $externalURL }}", "http://tocsin:9469"),
])
def test_expansion(text: str, expected: str) -> None:
    assert run(text) == expected


@pytest.mark.parametrize("text,message", [
    ("{{ nosuch $value }}", 'function "nosuch" not defined'),
    ("{{ if $value }}x", "unexpected EOF"),
    ("{{ $undefined }}", 'undefined variable "$undefined"'),
    ("{{ end }}", "unexpected {{end}}"),
    ("{{ $value ", "unclosed action"),
    ('{{ template "x" }}', "not supported"),
])
def test_syntax_errors_at_parse_time(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        Template(text)


def test_runtime_errors_are_go_like() -> None:
    with pytest.raises(TemplateError, match="incompatible types for comparison"):
        run("{{ gt $value 5 }}")  # int vs float64, as in Go
    with pytest.raises(TemplateError, match="error calling first"):
        run('{{ query "up" | first }}')


def test_no_code_execution() -> None:
    # Attribute walking and Python syntax are not reachable from a template.
    for text in ("{{ .__class__ }}", "{{ $value.__class__ }}", "{{ __import__ }}"):
        with pytest.raises(TemplateError):
            run(text)


def test_go_float_and_printf_formats() -> None:
    assert [format_float(v) for v in (0.1, 100000.0, 1e6, 1e-5, 0.0001, -2.5, float("inf"), float("nan"))] == [
        "0.1", "100000", "1e+06", "1e-05", "0.0001", "-2.5", "+Inf", "NaN"]
    assert go_printf("%v %v %d%%", 1.5, "x", 7) == "1.5 x 7%"
    assert go_printf("%d", 1.5) == "%!d(float64=1.5)"
    assert go_printf("%s") == "%!s(MISSING)"


def test_re_replace_all_expands_like_go() -> None:
    # Only $-references are expanded: backslashes in the replacement and in the captured
    # text are copied as they are (Go's Regexp.Expand).
    assert run('{{ reReplaceAll "^(.*)$" "<$1>" "a\\\\\\\\b" }}') == "<a\\\\b>"
    assert run('{{ reReplaceAll "(a)" "\\\\g<1>" "a" }}') == "\\g<1>"
    assert run('{{ reReplaceAll "(?P<h>[a-z]+)" "${h}-$1-$2-$$-$" "abc" }}') == "abc-abc--$-$"


def test_unterminated_string_in_action_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="unclosed action"):
        Template('{{ "abc\\')


def test_bad_escapes_in_template_strings_are_template_errors():
    """A truncated or out-of-range \\x, \\u or \\U escape is a template error, not a traceback."""
    for text in ('{{ "\\x" }}', '{{ "\\xZZ" }}', '{{ "\\u12" }}', '{{ "\\U0011FFFF" }}', '{{ "\\uD800" }}'):
        with pytest.raises(TemplateError, match="invalid syntax in string"):
            Template(text)


def test_printf_g_is_gos_shortest_form():
    """Go's %g prints the shortest form that reads back (0.123456789), not C's 6 digits."""
    assert go_printf("%g %G %+g %08g %-8g| %.3g %g %g", 0.123456789, 1e21, 2.5, -2.5, 1.5, 0.123456789,
                     100000.0, 1e6) == "0.123456789 1E+21 +2.5 -00002.5 1.5     | 0.123 100000 1e+06"


def test_humanize_timestamp_truncates_to_milliseconds_toward_zero():
    """Prometheus turns the float into whole nanoseconds, then whole milliseconds, both toward zero."""
    render = lambda v: Template("{{ humanizeTimestamp $value }}").execute(  # noqa: E731 - a local shorthand
        alert_template_data({}, {}, "", v))
    assert render(1.0009999) == "1970-01-01 00:00:01 +0000 UTC"
    assert render(1700000000.1239) == "2023-11-14 22:13:20.123 +0000 UTC"
    assert render(-1.5) == "1969-12-31 23:59:58.5 +0000 UTC"


@pytest.mark.parametrize("text,expected", [
    # Go's text/template derives le, gt and ge from lt and eq, so NaN is "greater"
    ("{{ if gt $value 10.0 }}big{{ else }}small{{ end }}", "big"),
    ("{{ ge $value 10.0 }} {{ le $value 10.0 }} {{ lt $value 10.0 }} {{ gt 10.0 $value }}", "true false false true"),
])
def test_ordered_comparisons_with_nan_as_go(text: str, expected: str) -> None:
    assert run(text, float("nan")) == expected


@pytest.mark.parametrize("value,expected", [
    (6.806535360830932e19, "-106751991167300d -15h -30m -8s"),  # int64(v) on amd64: the int64 minimum
    (-1e20, "--106751991167300d -15h -30m -8s"),
    (201995.3588238841, "2d 8h 6m 35s"),
])
def test_humanize_duration_beyond_int64_as_go(value: float, expected: str) -> None:
    assert run("{{ humanizeDuration $value }}", value) == expected

"""A safe subset of Go's text/template, as Prometheus uses it in alert labels and annotations.

Rule files written for Prometheus carry templates such as
`{{ $labels.target }} is down ({{ $value | humanize }})`; tocsin must expand them to the
same text. This is a small interpreter of that syntax (actions, pipelines, variables,
`if`/`else if`/`else`/`range`/`with`/`end`, trim markers, comments) over plain data, with
a fixed function table. It never evaluates Python code, never reaches attributes other
than map keys and the few documented fields, and parse errors (syntax, unknown function)
surface when the rule file is loaded, as they do in Prometheus.

    values     the values a template handles, and Go's fmt.Sprint/Sprintf of them
    parse      lexer and parser: text and actions into nodes, checked at load
    functions  Prometheus's template functions and text/template's builtins
    execute    Template: runs the nodes over the data, within step and output bounds
"""

from __future__ import annotations

from .execute import Template, alert_template_data
from .values import QuerySample, TemplateData, TemplateError, go_printf

__all__ = ["QuerySample", "Template", "TemplateData", "TemplateError", "alert_template_data", "go_printf"]

"""An expression as Prometheus prints it (`parser.Expr.String()`): what /api/v1/rules shows as a rule's query.

Users write `sum(x) by (job)`; Prometheus shows `sum by (job) (x)`, with its own spacing,
sorted matchers and durations, and tools compare what they read with that. `promql-parser`'s
prettifier prints exactly that form on one line, and splits an expression longer than 100
characters over indented lines (Prometheus's `promql.Prettify`); joining those lines back
(no space after an opening or before a closing parenthesis, one space elsewhere) gives the
one-line form again: a string literal cannot hold a raw newline, so no content is touched.

An expression too deep or long for the library whole (limits.fits_binding) is shown as
written: the library would crash the process on it (SIGSEGV), or take minutes.
"""

from __future__ import annotations

import functools

import promql_parser as _pp

from .limits import fits_binding


@functools.lru_cache(maxsize=4096)
def expression_text(text: str) -> str:
    """`text` as Prometheus prints the parsed expression; `text` itself if it does not parse
    or is too deep for the parser library."""
    if not fits_binding(text):
        return text.strip()
    try:
        pretty = _pp.parse(text).prettify()
    except (ValueError, TypeError, RuntimeError):
        return text.strip()
    lines = [line.strip() for line in pretty.split("\n")]
    out = lines[0]
    for line in lines[1:]:
        out += line if out.endswith("(") or line.startswith(")") else " " + line
    return out

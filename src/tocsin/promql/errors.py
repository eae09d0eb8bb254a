"""Errors of the PromQL engine.

Kept apart from the product's hierarchy so the engine stays importable on its own;
the product may re-base `PromQLError` without touching the rest of the package.
"""

from __future__ import annotations


class PromQLError(Exception):
    """Any failure to parse, load or evaluate a PromQL expression."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PromQLParseError(PromQLError):
    """The expression is not valid PromQL, or uses something this engine does not evaluate.

    Raised when a rule is loaded, so a bad rule is refused before it ever runs.
    """


class PromQLEvalError(PromQLError):
    """Evaluation failed on the data at hand (label collisions, ambiguous matching...).

    Prometheus reports these at query time too: they depend on the series present.
    """


class TestFileError(PromQLError):
    """A Prometheus `.test` file or series notation could not be read."""

    __test__ = False  # not a pytest class despite the name

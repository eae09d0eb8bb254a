"""Result types and sample-level constants.

Samples are plain named tuples: a vector of ten thousand of them must be cheap to build
every evaluation, and the engine never needs per-sample behaviour.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Union

from ..gofmt import format_metric
from .labels import Labels

# Prometheus marks the end of a series with this exact NaN bit pattern; an ordinary NaN
# sample value is data and must survive.
_STALE_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", _STALE_BITS))[0]
_STALE_BYTES = struct.pack("<d", STALE_NAN)


def is_stale(v: float) -> bool:
    return v != v and struct.pack("<d", v) == _STALE_BYTES


class Sample(NamedTuple):
    labels: Labels
    value: float

    def __str__(self) -> str:
        return f"{format_metric(self.labels)} => {self.value}"


class Vector(list[Sample]):
    """An instant vector; order is meaningful only after sort()/topk() and friends."""


@dataclass(frozen=True, slots=True)
class Scalar:
    value: float


@dataclass(frozen=True, slots=True)
class String:
    value: str


@dataclass(slots=True)
class Series:
    """One series of a range result: parallel arrays keep samples free of per-point objects."""

    labels: Labels
    timestamps: Sequence[int]
    values: Sequence[float]

    def points(self) -> list[tuple[int, float]]:
        return list(zip(self.timestamps, self.values, strict=True))


class Matrix(list[Series]):
    """A range vector, or the result of a range query."""


Value = Union[Vector, Scalar, String, Matrix]

"""The event loop tocsin runs on: uvloop, asyncio's drop-in replacement.

Probing is connection set-up and teardown, over and over; uvloop does that in C and
measures about 40 % less CPU per HTTP probe than the default loop on the same work.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop."""
    return uvloop.run(coroutine)

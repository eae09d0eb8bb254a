"""Evaluation without recursion, however deep calls, aggregations and subqueries nest.

Prometheus 2.42 accepts `abs(abs(…))` 10 000 deep, 3 000 nested `sum(…)` and 2 000
nested subqueries, and evaluates them (Go's stacks grow to a gigabyte). A Python
evaluator recursing once per level would hit the recursion limit, and one given a huge
thread stack and recursion limit would trade that for a crash (SIGSEGV) where the guess
of the stack needed is wrong, and for a process-wide setting every other thread shares.
So no evaluation here recurses: a node whose value needs other nodes' values is evaluated
by a generator that yields each `(child, time)` it needs and is sent the child's value
back; `drive` runs those generators on an explicit stack on the heap, so depth costs
memory (a few hundred bytes a level, bounded by limits.MAX_NESTING) and never stack.
Nodes that need no other node (literals, selectors) are plain functions, called inline.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

# What a node's evaluation yields: the child whose value it needs, at which time.
Need = tuple[Any, int]
Evaluation = Generator[Need, Any, Any]


def drive(first: Evaluation, leaves: dict[type, Callable[[Any, int], Any]],
          inner: dict[type, Callable[[Any, int], Evaluation]]) -> Any:
    """Run `first` to its value: each (node, time) it yields is evaluated by the node type's
    function in `leaves`, or by its generator in `inner`, itself driven the same way."""
    waiting: list[Evaluation] = []  # the evaluations waiting for the one running
    running = first
    value: Any = None
    leaf_of = leaves.get
    while True:
        try:
            node, ts = running.send(value)
        except StopIteration as done:
            if not waiting:
                return done.value
            running = waiting.pop()
            value = done.value
            continue
        leaf = leaf_of(type(node))
        if leaf is not None:
            value = leaf(node, ts)
        else:
            waiting.append(running)
            running = inner[type(node)](node, ts)
            value = None

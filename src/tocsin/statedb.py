"""Writing tocsin's SQLite state under `state_dir`: one way to fail, counted, with the real cause.

Every write to the state (the notification outbox and log in notify.sqlite, the alert state
in rules.db) can fail while the daemon runs: the disk fills up, the file system turns
read-only, another process holds a lock. None of these may kill the thread that wrote, nor
lose what it meant to write: the caller keeps it in memory and tries again later. This
module gives the callers three things:

- `transaction(db)`: BEGIN IMMEDIATE … COMMIT whose failure is the failure that happened.
  SQLite rolls a transaction back by itself on SQLITE_FULL, so the usual ROLLBACK in the
  error path raised "cannot rollback - no transaction is active" and hid the real cause.
- `StateWriteError`: what every failed write raises, its message naming the cause in an
  operator's words ("the file system is full (0 bytes free)") and SQLite's own text.
- the count, `tocsin_state_write_errors_total{db}`: each failed write calls the hook the
  daemon sets (`set_error_hook`) once, with the database's file name.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

log = logging.getLogger("tocsin.state")
RETRY_MAX = 30.0   # the longest pause between two tries of a failing write: a try costs nothing

_error_hook: Callable[[str], None] | None = None

P = ParamSpec("P")
R = TypeVar("R")


def set_error_hook(hook: Callable[[str], None] | None) -> None:
    """Count failed writes with `hook(db)` (the daemon's metric)."""
    global _error_hook
    _error_hook = hook


class StateWriteError(Exception):
    """A write to a state database failed; `db` is its file name, `reason` the cause in words."""

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        self.db = os.path.basename(path)
        self.reason = describe(path, cause)
        super().__init__(f"cannot write {path}: {self.reason}")


def describe(path: str, exc: BaseException) -> str:
    """The cause of a failed write, as an operator would look for it, then SQLite's words."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    free = _free_bytes(path)
    if name == "SQLITE_FULL" or code == errno.ENOSPC or (name.startswith("SQLITE_IOERR") and free == 0):
        cause = "the file system is full" + (f" ({free} bytes free)" if free is not None else "")
    elif name.startswith("SQLITE_READONLY") or code == errno.EROFS:
        cause = "the database or its file system is read-only"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        cause = "the database is locked by another connection or process"
    elif name.startswith("SQLITE_IOERR"):
        cause = "an I/O error"
    elif code is not None:
        cause = os.strerror(code)
    else:
        return text
    return f"{cause} ({'sqlite' if name else 'os'}: {text})"


def _free_bytes(path: str) -> int | None:
    try:
        return shutil.disk_usage(os.path.dirname(path) or ".").free
    except OSError:
        return None


def counted_write(method: Callable[P, R]) -> Callable[P, R]:
    """For a method of an object with a `path`: a failure becomes a counted `StateWriteError`."""

    @functools.wraps(method)
    def write(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            error = StateWriteError(str(getattr(args[0], "path", "?")), exc)  # the database object's file
            if _error_hook is not None:
                _error_hook(error.db)
            raise error from exc

    return write


def retry_delay(failures: int, initial: float, cap: float = RETRY_MAX) -> float:
    """The pause after the `failures`-th failed write in a row: doubling from `initial`, capped."""
    return min(cap, RETRY_MAX, initial * 2 ** min(max(failures, 1) - 1, 30))


@contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Cursor]:
    """One transaction on an autocommit connection; an error inside it is the one raised."""
    cur = db.cursor()
    cur.execute(begin)
    try:
        yield cur
        cur.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLITE_FULL and others already rolled it back
            try:
                cur.execute("ROLLBACK")
            except sqlite3.Error:  # the original error is the one that matters
                log.debug("rollback failed after a failed write", exc_info=True)
        raise

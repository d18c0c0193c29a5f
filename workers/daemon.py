"""What both long-running processes (the scoring worker, the webhook dispatcher) share:
a clean stop on SIGTERM or SIGINT, a sleep that a stop cuts short, exponential back-off,
and the one rule for which database errors are waited out rather than raised.

A first signal lets the work in hand finish; a second stops the process at once, and
what it held is redelivered (unacked messages) or retried (expired claims).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

import sqlalchemy as sa

from service.extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_RETRY_S = 0.5  # the first back-off; it doubles up to DB_RETRY_MAX_S


def transient(exc: BaseException) -> bool:
    """True for database errors about the server or the connection, not the data.

    A connection refused or dropped, a server shutting down, a connection found dead
    (``connection_invalidated``), and a pool timeout (``sqlalchemy.exc.TimeoutError``:
    no connection free in time) all pass once the database answers again, so a
    daemon waits them out; an error about the data itself would fail again.
    """
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


class Backoff:
    """Exponential delays from FIRST_RETRY_S up to ``max_s``."""

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self.delay = 0.0

    def next(self) -> float:
        self.delay = min(self.max_s, self.delay * 2 or FIRST_RETRY_S)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


class Daemon:
    """A loop that runs until ``stopping``: its signals, sleeps and database retries.

    ``name`` is the subject of its log lines. Subclasses say what a first signal lets
    finish (``finishing``) and what becomes of the work a second one cuts off
    (``abandoning``).
    """

    finishing = "the work in hand"
    abandoning = "what was in hand is retried"

    def __init__(self, name: str, *, db_retry_max_s: float) -> None:
        self.name = name
        self.db_retry_max_s = db_retry_max_s
        self.stopping = False

    def handle_signals(self) -> None:
        """Route SIGTERM and SIGINT to ``stop_on_signal`` (only the main thread may)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop_on_signal)

    def stop_on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: finish the work in hand, then stop; a second signal stops now."""
        name = signal.Signals(signum).name
        if self.stopping:
            log.warning("%s: second %s; stopping now, %s", self.name, name, self.abandoning)
            raise SystemExit(1)
        log.info("%s: %s; finishing %s", self.name, name, self.finishing)
        self.stopping = True

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when a stop is asked for."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))

    def while_waiting(self) -> None:
        """Called before each back-off sleep of ``with_db_retry``; nothing by default."""

    def with_db_retry(self, what: str, action: Callable[[], T]) -> T | None:
        """``action()``, retried with back-off while the database is unreachable.

        Never drops work: it retries until the database answers, or returns None when
        a stop is asked for meanwhile. An error that is not ``transient`` is raised.
        """
        backoff = Backoff(self.db_retry_max_s)
        while True:
            try:
                return action()
            except Exception as exc:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    db.session.rollback()
                if not transient(exc):
                    raise
                if self.stopping:
                    return None
                delay = backoff.next()
                self.while_waiting()
                log.warning(
                    "%s: database unavailable (%s); retrying in %.1fs",
                    what,
                    str(exc).splitlines()[0],
                    delay,
                )
                self.sleep(delay)

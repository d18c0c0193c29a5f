"""The scaffolding both daemons share: which database errors they wait out, and signals."""

from __future__ import annotations

import logging
import signal

import pytest
import sqlalchemy as sa
from flask import Flask

from service.extensions import db
from workers.daemon import Daemon, transient
from workers.dispatcher import Dispatcher
from workers.scorers import ProfanityCheckScorer
from workers.worker import Worker


def _error(kind: type[sa.exc.DBAPIError], invalidated: bool = False) -> sa.exc.DBAPIError:
    return kind("SELECT 1", {}, Exception("driver says no"), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_error(sa.exc.OperationalError), True),  # refused, dropped, server shutting down
        (_error(sa.exc.InterfaceError), True),  # the connection is unusable
        (sa.exc.TimeoutError("QueuePool limit reached"), True),  # no connection free in time
        (_error(sa.exc.DBAPIError, invalidated=True), True),  # a connection found dead
        (_error(sa.exc.DBAPIError), False),
        (_error(sa.exc.IntegrityError), False),  # the data: would fail again
        (_error(sa.exc.DataError), False),
        (_error(sa.exc.ProgrammingError), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_errors_of_the_server_or_connection_are_transient(error, expected):
    assert transient(error) is expected


def _dispatcher(app: Flask) -> Daemon:
    return Dispatcher(app)


def _worker(app: Flask) -> Daemon:
    return Worker(app, ProfanityCheckScorer(), consumer="w")


DAEMONS = pytest.mark.parametrize("make", [_dispatcher, _worker], ids=["dispatcher", "worker"])


@DAEMONS
def test_both_daemons_wait_out_a_pool_timeout(app, make, caplog):
    daemon = make(app)
    failures = iter([sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")])

    def refuse_once(conn, cursor, statement, parameters, context, executemany):
        if (error := next(failures, None)) is not None:
            raise error

    sa.event.listen(db.engine, "before_cursor_execute", refuse_once)
    try:
        with caplog.at_level(logging.WARNING, logger="workers.daemon"):
            answer = daemon.with_db_retry("test", lambda: db.session.scalar(sa.text("SELECT 7")))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", refuse_once)
    assert answer == 7
    assert "test: database unavailable (QueuePool limit" in caplog.text


@DAEMONS
def test_both_daemons_raise_an_error_in_the_data(app, make):
    daemon = make(app)
    nameless = sa.text("INSERT INTO site (name) VALUES (NULL)")  # NOT NULL: the data is wrong
    with pytest.raises(sa.exc.IntegrityError):
        daemon.with_db_retry("test", lambda: db.session.execute(nameless))


@DAEMONS
def test_first_signal_finishes_the_work_in_hand_and_a_second_stops_now(app, make, caplog):
    daemon = make(app)
    with caplog.at_level(logging.INFO, logger="workers.daemon"):
        daemon.stop_on_signal(signal.SIGTERM, None)
        assert daemon.stopping
        with pytest.raises(SystemExit) as stopped:
            daemon.stop_on_signal(signal.SIGINT, None)
    assert stopped.value.code == 1
    first, second = (r.getMessage() for r in caplog.records)
    assert first == f"{daemon.name}: SIGTERM; finishing {daemon.finishing}"
    assert second.startswith(f"{daemon.name}: second SIGINT; stopping now, ")


@DAEMONS
def test_a_stop_cuts_a_database_wait_short(app, make):
    daemon = make(app)
    daemon.stopping = True

    def down():
        raise sa.exc.TimeoutError("no connection free")

    assert daemon.with_db_retry("test", down) is None

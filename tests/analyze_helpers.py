"""Helpers for the drop-in faces' tests, which talk real HTTP to the app and real workers."""

from __future__ import annotations

import socket

from service.extensions import db


def release_database() -> None:
    """End the test's own transaction: on SQLite it holds the write lock, and the server's
    threads have sessions of their own (reading a row after a commit starts one)."""
    db.session.rollback()


def free_port() -> int:
    """A port nobody listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

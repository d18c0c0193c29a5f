"""Helpers for the drop-in faces' tests, which talk real HTTP to the app and real workers."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

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


# Coral's call, as its Perspective service makes it: only TOXICITY, the tenant's locale,
# the key in the query string, 800 ms before it gives up.
CORAL_TIMEOUT_S = 0.8


def coral_body(text: str, language: str = "en", do_not_store: bool = True) -> dict[str, Any]:
    return {
        "comment": {"text": text},
        "doNotStore": do_not_store,
        "requestedAttributes": {"TOXICITY": {}},
        "languages": [language],
    }


def analyze(
    base: str, body: Any, key: str | None, release: bool = True, **options: Any
) -> httpx.Response:
    if release:
        release_database()
    params = {"key": key} if key else {}
    return httpx.post(
        f"{base}/v1alpha1/comments:analyze",
        params=params,
        json=body,
        timeout=options.pop("timeout", 10),
        **options,
    )


def assert_perspective_error(answer: httpx.Response, code: int, status: str, *words: str) -> None:
    assert answer.status_code == code, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "status"}
    assert (error["code"], error["status"]) == (code, status)
    for word in words:
        assert word in error["message"]


@pytest.fixture(autouse=True)
def patient_deadline(config: dict[str, Any]) -> None:
    """A deadline past a worker's first turn, for the test modules that import it: they are
    about the answers' shapes, and a just-started worker sweeps and prunes before it first
    serves, which on a busy machine can take most of the default 700 ms (the deadline
    tests, which do not import it, keep the default)."""
    config["ANALYZE_TIMEOUT_MS"] = 3000  # before the app is made from it

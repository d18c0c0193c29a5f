"""The real worker in a subprocess, and what it left in the database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis
import sqlalchemy as sa

from service.extensions import db
from service.models import Comment, ModerationEvent

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
CIVILITY = Path(sys.executable).with_name("civility")
# Fast settings for tests: the cheap scorer and short waits; tests override per case.
WORKER_SETTINGS: dict[str, Any] = {
    "SCORER": "profanity-check",
    "SCORER_FALLBACK": "none",
    "SCORE_BLOCK_MS": 100,
    "HEARTBEAT_S": 1,
    "LOG_LEVEL": "DEBUG",
}


class WorkerProcess:
    """``civility worker`` running in a subprocess, its output in a log file."""

    def __init__(self, args: list[str], settings: Mapping[str, Any], log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
        env.update({f"CIVILITY_{name}": str(value) for name, value in settings.items()})
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(CIVILITY), "worker", *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 90) -> int:
        """The exit status; fails the test (with the log) when it does not exit in time
        (a burst worker loads its model first: slow on a busy machine, see wait_for)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"worker still running after {timeout}s:\n{self.log()}") from None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        """Kill it if still running (test teardown)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def detoxify_settings(tiny_checkpoint: tuple[Path, Path], **settings: Any) -> dict[str, Any]:
    """Worker settings that load the tiny checkpoint through the real Detoxify class."""
    checkpoint, config_dir = tiny_checkpoint
    return {"SCORER": f"detoxify:{checkpoint}", "MODEL_CONFIG_DIR": config_dir, **settings}


def wait_for(
    check: Callable[[], T], what: str, worker: WorkerProcess | None = None, timeout: float = 60
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds.

    The default is generous on purpose: a worker subprocess imports torch and loads its
    model first, which takes tens of seconds on a busy 2-core machine running the suite
    in parallel; waiting longer costs nothing when it is quick."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            log = worker.log() if worker else ""
            raise AssertionError(f"timed out waiting for {what}\n{log}")
        time.sleep(0.05)


def comments(ids: list[int]) -> dict[int, Any]:
    """Fresh rows for ``ids`` (the read is ended at once: on SQLite it holds the write lock)."""
    try:
        rows = db.session.execute(
            sa.select(
                Comment.id,
                Comment.status,
                Comment.reasons,
                Comment.scores,
                Comment.model,
                Comment.scored_at,
                Comment.decided_by,
            ).where(Comment.id.in_(ids))
        ).all()
    finally:
        db.session.rollback()
    return {row.id: row for row in rows}


def decided(ids: list[int]) -> bool:
    """True when none of ``ids`` is pending any more."""
    rows = comments(ids)
    return len(rows) == len(ids) and all(row.status != "pending" for row in rows.values())


def policy_events(ids: list[int]) -> list[Any]:
    """The policy's audit rows for ``ids``, oldest first."""
    try:
        return list(
            db.session.execute(
                sa.select(
                    ModerationEvent.comment_id,
                    ModerationEvent.from_status,
                    ModerationEvent.to_status,
                    ModerationEvent.reason_code,
                    ModerationEvent.reasons,
                    ModerationEvent.scores,
                    ModerationEvent.model,
                )
                .where(ModerationEvent.comment_id.in_(ids), ModerationEvent.actor == "policy")
                .order_by(ModerationEvent.id)
            )
        )
    finally:
        db.session.rollback()


@contextmanager
def rows_locked(ids: list[int]) -> Iterator[None]:
    """Hold the comments' row locks (on SQLite, the write lock) like a slow writer would."""
    db.session.execute(sa.select(Comment.id).where(Comment.id.in_(ids)).with_for_update()).all()
    try:
        yield
    finally:
        db.session.rollback()


def submit_ids(submit, *bodies: str, **fields: Any) -> list[int]:
    """Submit each body (each by its own author) and return the new comments' ids."""
    ids = []
    for n, body in enumerate(bodies):
        answer = submit(body=body, author=f"reader-{n}", **fields)
        assert answer.status_code == 202, answer.get_json()
        ids.append(answer.get_json()["id"])
    return ids


class StreamCounts:
    """Names and counts of one of the test's Redis streams, read by the ``scorers`` group."""

    def __init__(self, redis_server: redis.Redis, name: str) -> None:
        self.redis = redis_server
        self.name = name
        self.dead = f"{name}:dead"

    def pending(self) -> int:
        try:
            return self.redis.xpending(self.name, "scorers")["pending"]
        except redis.ResponseError:  # no group yet
            return 0

    def length(self) -> int:
        return self.redis.xlen(self.name)

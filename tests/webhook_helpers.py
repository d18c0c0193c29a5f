"""A real HTTP receiver for webhook tests, the dispatcher in a subprocess, and small helpers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import standardwebhooks
import svix.webhooks
from flask import Flask
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service import outbox
from service.extensions import db
from service.models import Comment, WebhookAttempt, WebhookDelivery
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus
from workers.dispatcher import Dispatcher

ROOT = Path(__file__).resolve().parents[1]
CIVILITY = Path(sys.executable).with_name("civility")
# Fast, local settings: receivers listen on 127.0.0.1 and retries are due at once.
FAST_WEBHOOKS: dict[str, Any] = {
    "WEBHOOK_SCHEDULE": "0s,0s",
    "WEBHOOK_ALLOW_PRIVATE": True,
    "WEBHOOK_CONNECT_TIMEOUT_S": 1.0,
    "WEBHOOK_READ_TIMEOUT_S": 2.0,
    "WEBHOOK_POLL_S": 0.05,
}

# An answer the receiver gives: a status, (status, headers), or a function of the request.
Answer = int | tuple[int, dict[str, str]] | Callable[[Request], Response]


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it."""

    headers: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, after both the Standard Webhooks and the Svix verifier accepted it."""
        standardwebhooks.Webhook(secret).verify(self.body, self.headers)
        svix.webhooks.Webhook(secret).verify(self.body, self.headers)
        return json.loads(self.body)


class Receiver:
    """A site's webhook receiver on a real local HTTP server; answers 200 unless told."""

    def __init__(self, server: HTTPServer) -> None:
        self.path = f"/hook/{uuid.uuid4().hex}"
        self.url = f"http://127.0.0.1:{server.port}{self.path}"
        self.received: list[Received] = []
        self.answers: list[Answer] = []
        self.default: Answer = 200
        self._lock = threading.Lock()
        server.expect_request(self.path, method="POST").respond_with_handler(self._answer)

    def will_answer(self, *answers: Answer) -> None:
        """Give these answers, in order, to the next requests; then the default."""
        self.answers.extend(answers)

    def _answer(self, request: Request) -> Response:
        with self._lock:
            self.received.append(
                Received({k.lower(): v for k, v in request.headers.items()}, request.get_data())
            )
            answer = self.answers.pop(0) if self.answers else self.default
        if callable(answer):
            return answer(request)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return Response("ok" if status < 300 else "no", status=status, headers=headers)

    def types(self, secret: str) -> list[str]:
        return [request.verified(secret)["type"] for request in self.received]


def dispatch(app: Flask) -> Dispatcher:
    """Run a dispatcher in burst mode here, until nothing is due; returns it."""
    dispatcher = Dispatcher(app, burst=True)
    dispatcher.run()
    return dispatcher


class DispatcherProcess:
    """``civility webhooks`` in a subprocess, its output in a log file."""

    def __init__(self, settings: Mapping[str, Any], log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
        env.update({f"CIVILITY_{name}": str(value) for name, value in settings.items()})
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(CIVILITY), "webhooks"], cwd=ROOT, env=env, stdout=log, stderr=log
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM and the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"dispatcher ignored SIGTERM:\n{self.log()}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()


SCORES = {"toxicity": 0.97, "insult": 0.91}


REASONS = [{"code": "threshold", "label": "toxicity", "score": 0.97, "threshold": 0.9}]


def create_endpoint(client, site, url: str, **fields) -> dict:
    answer = client.post("/v1/webhooks", json={"url": url, **fields}, headers=site.auth("admin"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def policy_decides(comment_id: int, status: CommentStatus) -> None:
    """What the scoring worker does with a decision."""
    comment = db.session.get(Comment, comment_id)
    comment.model = "test-model@1"
    moderate(comment, status, actor="policy", scores=SCORES, reasons=REASONS, model="test-model@1")
    db.session.commit()


def emit_events(site_id: int, count: int) -> None:
    for n in range(count):
        outbox.emit(site_id, "comment.approved", {"n": n})
    db.session.commit()


def deliveries() -> list[sa.Row]:
    """The deliveries as plain rows; the read ends at once (on SQLite it holds the write lock)."""
    d = WebhookDelivery
    query = sa.select(
        d.id, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error
    ).order_by(d.id)
    try:
        return list(db.session.execute(query))
    finally:
        db.session.rollback()


def attempt_codes(delivery_id: int) -> list[int | None]:
    return list(
        db.session.scalars(
            sa.select(WebhookAttempt.status_code)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt)
        )
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

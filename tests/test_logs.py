"""Logs: request ids from ingest through the worker to the webhook, JSON lines, no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.logs import JsonFormatter, RequestIdFilter, TextFormatter
from service.models import Comment, WebhookDelivery
from tests.conftest import migrate
from tests.webhook_helpers import FAST_WEBHOOKS, DispatcherProcess, Receiver
from tests.worker_helpers import CIVILITY, ROOT, WORKER_SETTINGS, WorkerProcess, wait_for

TRACE = "trace-e2e.42_A"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: these tests follow processes, not SQL dialects."""
    instance = tmp_path_factory.mktemp("logs")
    url = f"sqlite:///{instance / 'logs.sqlite3'}"
    migrate(url, instance)
    return url


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, **FAST_WEBHOOKS}


class ServeProcess:
    """``civility serve`` (gunicorn) in a subprocess on a free port, its output in a file."""

    def __init__(self, settings: Mapping[str, Any], log_path: Path, workers: int = 2) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CIVILITY_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env.update({f"CIVILITY_{name}": str(value) for name, value in settings.items()})
        argv = [str(CIVILITY), "serve", "--port", str(self.port), "--workers", str(workers)]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
        wait_for(self._ready, "civility serve to answer", timeout=30)

    def _ready(self) -> bool:
        try:
            return self.request("/healthz")[0] == 200
        except OSError:
            assert self.process.poll() is None, self.log()
            return False

    def request(
        self, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request; error statuses are answers too."""
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        request = urllib.request.Request(self.url + path, data=data, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


@pytest.fixture
def serve(config: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    """Factory: ``civility serve`` on the test database and Redis prefix."""
    started: list[ServeProcess] = []

    def start(**settings: Any) -> ServeProcess:
        merged = {name: config[name] for name in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX")}
        merged |= {"INSTANCE_PATH": tmp_path / "serve", "SECRET_KEY": "test-secret", **settings}
        process = ServeProcess(merged, tmp_path / f"serve-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a JSON log; fails on a line that is not JSON."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123_X.y", True), ("a" * 64, True), ("a" * 65, False), ("two words", False), ("", False)],
)
def test_request_id_is_echoed_when_sane_else_a_new_one(client, given, kept):
    answer = client.get("/healthz", headers={"X-Request-ID": given})
    echoed = answer.headers["X-Request-ID"]
    if kept:
        assert echoed == given
    else:
        assert echoed != given
        assert len(echoed) == 32 and int(echoed, 16) >= 0


def test_request_ids_differ_between_requests(client):
    assert (
        client.get("/healthz").headers["X-Request-ID"]
        != client.get("/healthz").headers["X-Request-ID"]
    )


def test_submitted_comment_keeps_its_request_id_for_the_webhook(client, site, submit):
    client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/"}, headers=site.auth("admin"))
    answer = submit(headers={"X-Request-ID": TRACE})
    assert answer.headers["X-Request-ID"] == TRACE
    comment = db.session.get(Comment, answer.get_json()["id"])
    assert comment.request_id == TRACE
    payload = db.session.scalar(sa.select(WebhookDelivery.payload))
    assert json.loads(payload)["data"]["request_id"] == TRACE


def test_every_log_record_of_a_request_carries_its_id(client):
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    try:
        # A refused sign-in logs a warning inside the request.
        client.post("/dashboard/sign-in", json={"key": "civ_nope"}, headers={"X-Request-ID": TRACE})
        logging.getLogger("outside").warning("not in a request")
    finally:
        logging.getLogger().removeHandler(handler)
    records = json_lines(lines.getvalue())
    refused = [r for r in records if r["message"].startswith("dashboard: sign-in refused")]
    assert refused and all(r["request_id"] == TRACE for r in refused)
    assert "request_id" not in next(r for r in records if r["logger"] == "outside")


def test_text_logs_show_the_request_id_when_there_is_one():
    record = logging.LogRecord("civility", logging.INFO, "", 0, "comment %s: held", (7,), None)
    assert TextFormatter().format(record).endswith("civility: comment 7: held")
    record.request_id = TRACE
    assert TextFormatter().format(record).endswith(f"comment 7: held [request {TRACE}]")


def test_access_log_record_shows_no_header_query_or_referer():
    atoms = {
        "h": "10.0.0.1",
        "m": "GET",
        "U": "/v1/queue",
        "q": "key=civ_secret",
        "r": "GET /v1/queue?key=civ_secret HTTP/1.1",
        "s": "200",
        "f": "https://news.example/?token=civ_secret",
        "{authorization}i": "Bearer civ_secret",
        "{x-request-id}o": TRACE,
        "M": 3,
    }
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(m)s %(U)s", (), None)
    record.args = atoms
    line = JsonFormatter().format(record)
    assert "civ_secret" not in line
    entry = json.loads(line)
    assert entry["request_id"] == TRACE
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/v1/queue", "200")


def test_one_request_id_follows_a_comment_to_its_webhook_and_no_secret_is_logged(
    app, config, site, serve, httpserver, tmp_path
):
    receiver = Receiver(httpserver)
    created = app.test_client().post(
        "/v1/webhooks", json={"url": receiver.url}, headers=site.auth("admin")
    )
    secret = created.get_json()["secret"]
    settings = {name: config[name] for name in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX")} | {
        "LOG_FORMAT": "json",
        "SECRET_KEY": "test-secret",
        **FAST_WEBHOOKS,
    }
    api = serve(**settings)
    # A key in the query string too: the access log must not show it.
    status, headers, _ = api.request(
        f"/v1/articles/article-1/comments?api_key={site.admin}",
        {"body": "A fine article, thank you.", "author": {"id": "reader-1"}},
        {"Authorization": f"Bearer {site.site}", "X-Request-ID": TRACE},
    )
    assert (status, headers["X-Request-ID"]) == (202, TRACE)

    worker = WorkerProcess(
        ["--burst"],
        {**WORKER_SETTINGS, **settings, "LOG_LEVEL": "INFO", "INSTANCE_PATH": tmp_path / "w"},
        tmp_path / "worker.log",
    )
    dispatcher = DispatcherProcess(settings | {"INSTANCE_PATH": tmp_path / "d"}, tmp_path / "d.log")
    assert worker.wait() == 0, worker.log()
    wait_for(lambda: len(receiver.received) >= 2, "comment.created and its decision delivered")
    assert dispatcher.terminate() == 0
    api.stop()

    events = [r.verified(secret) for r in receiver.received]
    assert {e["data"]["request_id"] for e in events} == {TRACE}
    api_log, worker_log, dispatcher_log = (
        json_lines(api.log()),
        json_lines(worker.log()),
        json_lines(dispatcher.log()),
    )
    access = [r for r in api_log if r["logger"] == "gunicorn.access"]
    ingest = next(r for r in access if r.get("request_id") == TRACE)
    assert (ingest["method"], ingest["path"], ingest["status"]) == (
        "POST",
        "/v1/articles/article-1/comments",
        "202",
    )
    decided = [r for r in worker_log if r["message"].endswith("by policy")]
    assert [r["request_id"] for r in decided] == [TRACE]
    delivered = [r for r in dispatcher_log if r["message"].startswith("delivery ")]
    assert len(delivered) >= 2 and {r["request_id"] for r in delivered} == {TRACE}
    everything = api.log() + worker.log() + dispatcher.log()
    for secret_text in (
        site.site,
        site.moderator,
        site.admin,
        secret,
        secret.removeprefix("whsec_"),
    ):
        assert secret_text not in everything
    assert "api_key=" not in everything

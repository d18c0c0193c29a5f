"""/metrics: request latencies by route, ingest, decisions, the queue, batches, deliveries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import gunicorn_conf
from service.extensions import db
from service.models import Comment
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus
from tests.conftest import migrate
from tests.test_logs import ServeProcess
from tests.webhook_helpers import FAST_WEBHOOKS, DispatcherProcess, Receiver
from tests.worker_helpers import ROOT, WORKER_SETTINGS, WorkerProcess, wait_for

Samples = dict[tuple[str, frozenset], float]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: metrics do not depend on the SQL dialect."""
    instance = tmp_path_factory.mktemp("metrics")
    url = f"sqlite:///{instance / 'metrics.sqlite3'}"
    migrate(url, instance)
    return url


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, **FAST_WEBHOOKS}


@pytest.fixture
def redis_down(config: dict[str, Any]) -> None:
    config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def metrics_off(config: dict[str, Any]) -> None:
    config["METRICS_ENABLED"] = False


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    return parse(answer.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_timed_by_route_template_method_and_status(client, site, submit):
    before = scrape(client)
    comment_id = submit().get_json()["id"]
    client.get(f"/v1/comments/{comment_id}", headers=site.auth())
    client.get("/no/such/page")
    after = scrape(client)
    count = "civility_http_request_duration_seconds_count"
    for route, method, status in [
        ("/v1/articles/<ref>/comments", "POST", "202"),
        ("/v1/comments/<int:comment_id>", "GET", "200"),
        ("unmatched", "GET", "404"),
    ]:
        labels = {"route": route, "method": method, "status": status}
        assert value(after, count, **labels) == value(before, count, **labels) + 1
    routes = {dict(labels).get("route") for _, labels in after}
    assert f"/v1/comments/{comment_id}" not in routes and "/no/such/page" not in routes
    buckets = [
        v
        for (name, labels), v in after.items()
        if name == "civility_http_request_duration_seconds_bucket"
        and ("route", "/v1/articles/<ref>/comments") in labels
        and ("status", "202") in labels
    ]
    assert max(buckets) >= 1


def test_ingest_and_committed_decisions_are_counted(app, client, site, submit):
    before = scrape(client)
    comment_id = submit().get_json()["id"]
    answer = client.post(
        f"/v1/comments/{comment_id}/decision",
        json={"decision": "approve"},
        headers=site.auth("moderator"),
    )
    assert answer.status_code == 200
    # A move rolled back is no decision.
    comment = db.session.get(Comment, submit(body="Another one.").get_json()["id"])
    moderate(comment, CommentStatus.HELD, actor="policy")
    db.session.rollback()
    after = scrape(client)
    ingested = "civility_comments_ingested_total"
    assert value(after, ingested) == value(before, ingested) + 2
    decisions = "civility_decisions_total"
    approved = {"outcome": "approved", "actor_kind": "moderator"}
    held = {"outcome": "held", "actor_kind": "policy"}
    assert value(after, decisions, **approved) == value(before, decisions, **approved) + 1
    assert value(after, decisions, **held) == value(before, decisions, **held)


def test_queue_gauges_come_from_redis_at_scrape_time(client, redis_server, redis_prefix):
    stream = f"{redis_prefix}:score"
    for comment_id in range(3):
        redis_server.xadd(stream, {"comment_id": str(comment_id)})
    redis_server.xgroup_create(stream, "scorers", id="0")
    redis_server.xreadgroup("scorers", "w1", {stream: ">"}, count=1)
    redis_server.xadd(f"{redis_prefix}:score:dead", {"comment_id": "9"})
    redis_server.set(f"{redis_prefix}:worker:w1", json.dumps({"consumer": "w1"}), ex=30)
    samples = scrape(client)
    assert value(samples, "civility_redis_up") == 1
    assert value(samples, "civility_scoring_stream_length") == 3
    assert value(samples, "civility_scoring_pending") == 1
    assert value(samples, "civility_scoring_consumer_lag") == 2
    assert value(samples, "civility_scoring_dead_letters") == 1
    assert value(samples, "civility_workers_live") == 1


def test_metrics_still_answer_while_redis_is_down(redis_down, client):
    samples = scrape(client)
    assert value(samples, "civility_redis_up") == 0
    assert ("civility_scoring_stream_length", frozenset()) not in samples


def test_metrics_can_be_turned_off(metrics_off, client):
    assert client.get("/metrics").status_code == 404


def test_samples_of_several_processes_add_up(client, tmp_path, monkeypatch):
    code = (
        "from service import metrics; metrics.COMMENTS_INGESTED.inc(2); "
        "metrics.SCORING_BATCH_SIZE.observe(8)"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    writers = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env) for _ in "ab"]
    assert [writer.wait(30) for writer in writers] == [0, 0]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape(client)
    assert value(samples, "civility_comments_ingested_total") == 4
    assert value(samples, "civility_scoring_batch_size_count") == 2
    assert value(samples, "civility_scoring_batch_size_sum") == 16


def test_dead_gunicorn_worker_is_marked_in_the_metrics_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    live = tmp_path / "gauge_livesum_4242.db"
    live.write_bytes(b"")
    gunicorn_conf.child_exit(None, SimpleNamespace(pid=4242))
    assert not live.exists()


def test_worker_and_dispatcher_metrics_reach_the_apis_metrics(
    app, config, client, site, submit, httpserver, tmp_path, monkeypatch
):
    receiver = Receiver(httpserver)
    config_settings = {name: config[name] for name in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX")}
    client.post("/v1/webhooks", json={"url": receiver.url}, headers=site.auth("admin"))
    submit()
    shared = tmp_path / "metrics"
    shared.mkdir()
    settings: dict[str, Any] = {**config_settings, **FAST_WEBHOOKS, "SECRET_KEY": "test-secret"}
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    worker = WorkerProcess(
        ["--burst"], {**WORKER_SETTINGS, **settings, "INSTANCE_PATH": tmp_path}, tmp_path / "w.log"
    )
    dispatcher = DispatcherProcess({**settings, "INSTANCE_PATH": tmp_path}, tmp_path / "d.log")
    assert worker.wait() == 0, worker.log()
    wait_for(lambda: len(receiver.received) >= 2, "both events delivered")
    assert dispatcher.terminate() == 0
    samples = scrape(client)
    assert value(samples, "civility_scoring_batch_size_count") == 1
    assert value(samples, "civility_scoring_batch_seconds_count") == 1
    assert value(samples, "civility_decisions_total", outcome="approved", actor_kind="policy") == 1
    assert value(samples, "civility_webhook_deliveries_total", result="succeeded") == 2


def test_gunicorn_workers_metrics_add_up(config, tmp_path):
    settings = {name: config[name] for name in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX")}
    settings |= {"INSTANCE_PATH": tmp_path, "SECRET_KEY": "test-secret"}
    api = ServeProcess(settings, tmp_path / "serve.log", workers=2)
    try:
        for _ in range(12):
            assert api.request("/v1/queue")[0] == 401
        status, _, body = api.request("/metrics")
    finally:
        api.stop()
    assert status == 200
    samples = parse(body.decode())
    labels = {"route": "/v1/queue", "method": "GET", "status": "401"}
    assert value(samples, "civility_http_request_duration_seconds_count", **labels) == 12
    # One file per gunicorn worker in the directory `civility serve` made and cleared.
    assert len(list((tmp_path / "metrics").glob("histogram_*.db"))) == 2

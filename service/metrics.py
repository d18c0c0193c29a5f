"""Prometheus metrics: counted where things happen, queue gauges read from Redis at scrape time.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``civility serve`` sets it; ``scripts/run`` shares
one with the worker and the dispatcher) every process writes its samples there and
/metrics adds them up. The variable must be set before prometheus_client is imported.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service import stream

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_SECONDS = Histogram(
    "civility_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
COMMENTS_INGESTED = Counter("civility_comments_ingested", "Comments accepted (202), not replays.")
ENQUEUE_FAILURES = Counter(
    "civility_ingest_enqueue_failures",
    "Comments stored but not added to the scoring stream (Redis down); the sweeper adds them.",
)
DECISIONS = Counter(
    "civility_decisions",
    "Committed status changes, by new status and actor kind (policy, or moderator: any key).",
    ["outcome", "actor_kind"],
)
SCORING_BATCH_SIZE = Histogram(
    "civility_scoring_batch_size",
    "Messages in a batch the scoring worker handled.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
SCORING_BATCH_SECONDS = Histogram(
    "civility_scoring_batch_seconds",
    "Time to score, decide and acknowledge one batch.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_DELIVERIES = Counter(
    "civility_webhook_deliveries",
    "Webhook delivery attempts, by what became of the delivery: succeeded, retrying, failed.",
    ["result"],
)
PRUNED_ROWS = Counter(
    "civility_pruned_rows",
    "Rows deleted by retention pruning (service.retention), by table.",
    ["table"],
)

ANALYZE_SECONDS = Histogram(
    "civility_analyze_duration_seconds",
    "Time a synchronous scoring request waited for its answer, by face and outcome.",
    ["face", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 2.5),
)
ANALYZE_REQUESTS = Counter(
    "civility_analyze_requests",
    "Synchronous scoring requests, by face and outcome (scored, timeout, no_worker, redis, error).",
    ["face", "outcome"],
)
ANALYZE_TEXTS = Counter(
    "civility_analyze_texts",
    "Texts scored synchronously, by face and the model (name@version) that scored them.",
    ["face", "model"],
)
ANALYZE_PASSES = Counter(
    "civility_analyze_passes", "Scoring passes a worker made for synchronous requests."
)
ANALYZE_PASS_REQUESTS = Histogram(
    "civility_analyze_pass_requests",
    "Synchronous requests a worker answered in one pass (gathered for ANALYZE_GATHER_MS).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
ANALYZE_PASS_TEXTS = Histogram(
    "civility_analyze_pass_texts",
    "Texts a worker scored in one synchronous pass.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
ANALYZE_WAIT_SECONDS = Histogram(
    "civility_analyze_wait_seconds",
    "Time a synchronous request waited in the stream before a worker's pass took it up "
    "(from its arrival by Redis's clock): what a backlog pass in progress costs it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1),
)
ANALYZE_DROPPED = Counter(
    "civility_analyze_dropped",
    "Synchronous requests a worker dropped unscored (expired, late, malformed, over_deadline).",
    ["reason"],
)

QUEUE_GAUGES = {
    "scoring_stream_length": "Messages in the scoring stream.",
    "scoring_consumer_lag": "Messages the scorers group has not read yet (XINFO GROUPS lag).",
    "scoring_pending": "Messages read by a worker and not yet acknowledged.",
    "scoring_dead_letters": "Messages in the dead-letter stream.",
    "workers_live": "Scoring workers with a recent heartbeat.",
}


class QueueCollector(Collector):
    """Gauges read from Redis at scrape time: the scoring stream, its group, live workers."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("civility_redis_up", "1 when Redis answered this scrape.")
        try:
            with self.app.app_context():
                stats = stream.stats()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unavailable (%s)", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, meaning in QUEUE_GAUGES.items():
            yield GaugeMetricFamily(f"civility_{name}", meaning, value=stats[name])


def registry() -> CollectorRegistry:
    """This process's metrics, or every process's when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get(MULTIPROC_ENV):
        aggregated = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregated)
        return aggregated
    return REGISTRY


def exposition(app: Flask) -> bytes:
    """The text /metrics answers: the counters and histograms, then the queue gauges."""
    queue = CollectorRegistry(auto_describe=False)
    queue.register(QueueCollector(app))
    return generate_latest(registry()) + generate_latest(queue)


def clear_dir(path: Path) -> None:
    """Remove the samples a previous run left in a multiprocess directory."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def serve_own(port: int) -> None:
    """Expose this process's /metrics on ``port`` (a worker or dispatcher on its own host)."""
    if port:
        start_http_server(port, registry=registry())
        log.info("metrics: serving on port %d", port)


def _route() -> str:
    # The rule's template (/v1/comments/<int:comment_id>), never the path: bounded labels.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def init_app(app: Flask) -> None:
    """Time every request and answer GET /metrics (unless METRICS_ENABLED is off)."""
    if not app.config["METRICS_ENABLED"]:
        return

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            method = request.method if request.method in METHODS else "other"
            REQUEST_SECONDS.labels(_route(), method, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        body = exposition(current_app._get_current_object())  # type: ignore[attr-defined]
        return Response(body, content_type=CONTENT_TYPE_LATEST)

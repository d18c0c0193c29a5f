"""Perspective's face under load and failure: a deadline passing while the worker is busy,
concurrent requests scored in one pass, and a worker killed mid-request."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import pytest
import redis

from tests.analyze_helpers import (
    analyze,
    assert_perspective_error,
    coral_body,
    release_database,
)
from tests.marks import ONE_BACKEND
from tests.worker_helpers import comments, decided, detoxify_settings, rows_locked, wait_for
from workers.analyze import Responder
from workers.scorers import ProfanityCheckScorer


@pytest.fixture
def long_key_cache(config: dict[str, Any]) -> None:
    """Keys stay verified for the whole test (the API must not need a locked database)."""
    config["API_KEY_CACHE_S"] = 600.0


def test_deadline_passes_while_the_worker_is_busy_503_and_the_request_is_never_scored(
    long_key_cache,
    live_server,
    site,
    submit,
    start_worker,
    tiny_checkpoint,
    analyze_stream,
    redis_server,
    redis_prefix,
):
    ids = [submit(body="A comment for the backlog.").get_json()["id"]]
    # Warm the key cache (no worker yet: a 503), so the API needs no database below.
    assert analyze(live_server, coral_body("warm up"), site.site).status_code == 503
    with rows_locked(ids):  # the worker gets stuck deciding its pass while the request waits
        worker = start_worker(ready=True, **detoxify_settings(tiny_checkpoint))
        wait_for(lambda: _read_once(redis_server, redis_prefix), "the comment read", worker)
        time.sleep(1.0)  # scored by now, waiting for the lock
        started = time.monotonic()
        answer = analyze(live_server, coral_body("Are you there?"), site.site, release=False)
        waited = time.monotonic() - started
    assert_perspective_error(answer, 503, "UNAVAILABLE", "700 ms")
    assert 0.6 < waited < 1.5
    wait_for(lambda: decided(ids), "the backlog decided", worker)
    time.sleep(0.5)  # a turn of the loop after the pass: the request would be answered now
    assert "analyze pass" not in worker.log()  # the caller had gone: never scored
    assert analyze_stream.length() == 0
    assert not list(redis_server.scan_iter(f"{redis_prefix}:reply:*"))


def _read_once(redis_server: redis.Redis, redis_prefix: str) -> bool:
    """True once the worker has read the comment's message (it is pending in the group)."""
    try:
        return redis_server.xpending(f"{redis_prefix}:score", "scorers")["pending"] > 0
    except redis.ResponseError:
        return False


@ONE_BACKEND
def test_concurrent_requests_are_scored_in_one_pass(
    database_url, app, live_server, site, start_worker, tiny_checkpoint
):
    from tests.analyze_helpers import free_port

    port = free_port()
    # A deadline well past the gathering: batching is tested here, not the deadline (a
    # worker's first turn sweeps and prunes before it serves, which on a busy machine can
    # take most of the default 700 ms).
    app.config["ANALYZE_TIMEOUT_MS"] = 3000
    settings = detoxify_settings(
        tiny_checkpoint, ANALYZE_GATHER_MS=500, METRICS_PORT=port, ANALYZE_TIMEOUT_MS=3000
    )
    start_worker(ready=True, **settings)
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def call(n: int) -> None:
        barrier.wait()
        body = coral_body(f"comment number {n}")
        answers.append(analyze(live_server, body, site.site, release=False))

    release_database()
    threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    samples = dict(
        line.rsplit(" ", 1) for line in scraped.splitlines() if line and not line.startswith("#")
    )
    assert float(samples["civility_analyze_passes_total"]) == 1
    assert float(samples["civility_analyze_pass_requests_sum"]) == 4
    assert float(samples["civility_analyze_pass_texts_sum"]) == 4


def test_worker_killed_mid_request_loses_only_that_answer(
    live_server,
    site,
    submit,
    start_worker,
    tiny_checkpoint,
    analyze_stream,
    app,
    redis_server,
    redis_prefix,
):
    app.config["ANALYZE_TIMEOUT_MS"] = 2500
    settings = detoxify_settings(tiny_checkpoint, ANALYZE_TIMEOUT_MS=2500)
    first = start_worker(ready=True, **settings, ANALYZE_GATHER_MS=2000)
    answers: list[httpx.Response] = []
    release_database()
    caller = threading.Thread(
        target=lambda: answers.append(
            analyze(live_server, coral_body("first"), site.site, release=False)
        )
    )
    caller.start()
    wait_for(lambda: analyze_stream.pending() == 1, "the worker holding the request", first)
    first.signal(signal.SIGKILL)
    caller.join(10)
    # Its announcement runs out (three beats) before the next worker is counted on.
    wait_for(
        lambda: not redis_server.zcount(f"{redis_prefix}:analyzers", time.time(), "+inf"),
        "the dead worker no longer counted",
    )

    assert_perspective_error(answers[0], 503, "UNAVAILABLE")
    second = start_worker(ready=True, **settings)
    again = analyze(live_server, coral_body("second"), site.site)
    assert again.status_code == 200, again.text
    ids = [submit(body="Still decided.").get_json()["id"]]
    wait_for(lambda: decided(ids), "the comment decided", second)
    assert comments(ids)[ids[0]].model.startswith("detoxify-tiny@")
    # The dead worker's entry is cleared from the group, not redelivered.
    wait_for(lambda: analyze_stream.pending() == 0, "the abandoned entry cleared", second)
    assert analyze_stream.length() == 0


def test_a_text_no_pass_could_score_in_time_answers_503_at_once_and_holds_nobody_up(
    long_key_cache, live_server, site, analyze_stream, redis_server, redis_prefix
):
    # On a slow CPU a 5,000-character comment can cost more than the whole deadline.
    # Scored anyway, its answer came too late and the requests behind it waited for it.
    worker = Responder(
        redis_server,
        stream=f"{redis_prefix}:analyze",
        ready_key=f"{redis_prefix}:analyzers",
        consumer="worker-a",
        scorer=ProfanityCheckScorer(),
        gather_ms=1,
        batch_max=8,
        reply_ttl_s=5,
        live_s=15,
        claim_idle_ms=700,
    )
    # As measured: 10 ms a pass and 0.2 ms a character, so 5,000 characters take a second.
    for chars in (50, 500) * 8:
        worker.cost.record(chars, 0.01 + 0.0002 * chars)
    worker.ensure_group()
    worker.announce()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            worker.serve()
            time.sleep(0.005)

    serving = threading.Thread(target=serve)
    serving.start()
    try:
        started = time.monotonic()
        answer = analyze(live_server, coral_body("a long comment " * 340), site.site)
        refused_in = time.monotonic() - started
        short = analyze(live_server, coral_body("A short one, scored."), site.site)
    finally:
        stop.set()
        serving.join(10)
    assert_perspective_error(answer, 503, "UNAVAILABLE", "700 ms")
    assert refused_in < 0.5  # told at once, not at the deadline
    assert short.status_code == 200, short.text
    assert worker.passes == 1  # the short one's: the long one was never scored
    assert analyze_stream.length() == 0
    assert not list(redis_server.scan_iter(f"{redis_prefix}:reply:*"))

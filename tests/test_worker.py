"""The scoring worker, run for real (``civility worker`` in a subprocess) on both databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa

from service.extensions import db
from service.models import Author, Site
from tests.conftest import REDIS_URL
from tests.marks import POSTGRES_ONLY
from tests.worker_helpers import (
    CIVILITY,
    ROOT,
    WORKER_SETTINGS,
    comments,
    decided,
    policy_events,
    rows_locked,
    submit_ids,
    wait_for,
)

RUDE = "You are a fucking idiot and your shit article is garbage."


def assert_decided_once(ids: list[int]) -> None:
    """Every comment is decided, by exactly one policy event that matches its row."""
    rows = comments(ids)
    events = policy_events(ids)
    assert Counter(event.comment_id for event in events) == Counter(ids)
    for event in events:
        row = rows[event.comment_id]
        assert event.from_status == "pending"
        assert event.to_status == row.status != "pending"
        assert event.model == row.model and row.model.startswith("profanity-check@")


def test_burst_worker_decides_a_batch_and_exits(submit, start_worker, stream):
    clean, rude, lapsed, premod = submit_ids(
        submit, "Thanks, a careful and fair article.", RUDE, "Back again.", "Still watched."
    )
    now = datetime.now(UTC)
    for ref, until in (
        ("reader-2", now - timedelta(hours=1)),
        ("reader-3", now + timedelta(hours=1)),
    ):
        author = db.session.scalar(sa.select(Author).where(Author.ref == ref))
        author.status, author.status_until = "premod", until
    db.session.commit()

    worker = start_worker("--burst")

    assert worker.wait() == 0, worker.log()
    rows = comments([clean, rude, lapsed, premod])
    assert rows[clean].status == "approved"
    assert rows[clean].reasons == []
    assert rows[rude].status in ("held", "rejected")
    assert rows[rude].reasons[0]["code"] == "toxicity"
    assert rows[rude].scores["toxicity"] >= rows[rude].reasons[0]["threshold"]
    for row in rows.values():
        assert row.model.startswith("profanity-check@")
        assert row.scored_at is not None and row.decided_by == "policy"
    assert rows[lapsed].status == "approved"  # premoderation ran out an hour ago
    assert rows[premod].status == "held"
    assert rows[premod].reasons == [{"code": "author_premod"}]
    assert_decided_once([clean, rude, lapsed, premod])
    event = {e.comment_id: e for e in policy_events([rude])}[rude]
    assert (event.reason_code, event.reasons) == ("toxicity", rows[rude].reasons)
    assert event.scores == rows[rude].scores
    # Acked and deleted: the stream stays bounded.
    assert (stream.pending(), stream.length()) == (0, 0)
    assert "batch of 4: 4 decided" in worker.log()


def test_running_worker_heartbeats_ignores_redelivery_and_exits_on_sigterm(
    submit, start_worker, stream, redis_server, redis_prefix
):
    worker = start_worker("--name", "worker-a")
    beat_key = f"{redis_prefix}:worker:worker-a"
    beat = json.loads(wait_for(lambda: redis_server.get(beat_key), "a heartbeat", worker))
    assert beat["consumer"] == "worker-a" and beat["scorer_spec"] == "profanity-check"
    assert beat["model"].startswith("profanity-check@") and beat["fallback_active"] is False
    assert {
        "host",
        "pid",
        "batch_max",
        "last_batch_size",
        "rate_per_s",
        "started_at",
        "seen_at",
    } <= set(beat)
    assert 0 < redis_server.ttl(beat_key) <= 3

    ids = submit_ids(submit, "First fine comment.", "Second fine comment.", RUDE)
    wait_for(lambda: decided(ids), "the comments decided", worker)
    for comment_id in ids:  # a redelivery, e.g. the sweeper re-adding a slow comment
        redis_server.xadd(stream.name, {"comment_id": str(comment_id)})
    wait_for(lambda: stream.length() == 0 == stream.pending(), "redelivery acked", worker)
    assert_decided_once(ids)
    beat = wait_for(
        lambda: (b := json.loads(redis_server.get(beat_key)))["scored_total"] == 3 and b,
        "a heartbeat counting the batch",
        worker,
    )
    assert beat["rate_per_s"] > 0

    worker.signal(signal.SIGTERM)

    assert worker.wait() == 0, worker.log()
    assert redis_server.get(beat_key) is None
    assert redis_server.xinfo_consumers(stream.name, "scorers") == []


def test_worker_removes_consumers_killed_long_ago_from_the_group(
    start_worker, stream, redis_server
):
    redis_server.xgroup_create(stream.name, "scorers", id="0", mkstream=True)
    redis_server.xgroup_createconsumer(stream.name, "scorers", "killed-without-leaving")
    time.sleep(1.2)

    worker = start_worker("--burst", "--name", "worker-a", SCORE_CONSUMER_FORGET_S=1)

    assert worker.wait() == 0, worker.log()
    assert "removed 1 departed consumers from the group (killed-without-leaving)" in worker.log()
    assert redis_server.xinfo_consumers(stream.name, "scorers") == []


def test_sigterm_mid_batch_finishes_and_acks_the_batch(submit, start_worker, stream):
    ids = submit_ids(submit, "One.", "Two.", RUDE)
    with rows_locked(ids):  # the worker reads the batch, then waits for the database
        worker = start_worker()
        wait_for(lambda: stream.pending() == 3, "the batch delivered", worker)
        worker.signal(signal.SIGTERM)

    assert worker.wait() == 0, worker.log()
    assert_decided_once(ids)
    assert (stream.pending(), stream.length()) == (0, 0)


def test_killed_worker_batch_is_claimed_and_decided_exactly_once(submit, start_worker, stream):
    ids = submit_ids(submit, "Alpha.", "Beta.", "Gamma.", RUDE)
    with rows_locked(ids):
        first = start_worker()
        wait_for(lambda: stream.pending() == 4, "the batch delivered", first)
        first.signal(signal.SIGKILL)
        first.wait()

    second = start_worker("--burst", SCORE_CLAIM_IDLE_MS=300)

    assert second.wait() == 0, second.log()
    assert_decided_once(ids)
    assert (stream.pending(), stream.length()) == (0, 0)
    assert "claimed 4 idle messages" in second.log()


def test_poison_and_malformed_messages_are_dead_lettered(
    submit, make_site, start_worker, stream, redis_server
):
    broken = make_site("Broken Times")
    (fine,) = submit_ids(submit, "A fine comment.")
    (poison,) = submit_ids(submit, "Also fine, but its site is broken.", as_site=broken)
    # Thresholds the API would refuse, written straight to the row: the policy raises
    # on every attempt, the kind of failure no retry fixes.
    db.session.get(Site, broken.id).hold_at = {"toxicity": "very"}
    db.session.commit()
    redis_server.xadd(stream.name, {"comment_id": "abc"})
    redis_server.xadd(stream.name, {"other": "field"})

    worker = start_worker("--burst", SCORE_CLAIM_IDLE_MS=100, SCORE_MAX_ATTEMPTS=2)

    assert worker.wait() == 0, worker.log()
    rows = comments([fine, poison])
    assert rows[fine].status == "approved"
    assert rows[poison].status == "held"
    assert rows[poison].reasons == [{"code": "scoring_failed"}]
    assert [(e.to_status, e.reason_code) for e in policy_events([poison])] == [
        ("held", "scoring_failed")
    ]
    dead = {fields["comment_id"]: fields for _, fields in redis_server.xrange(stream.dead)}
    assert set(dead) == {str(poison), "abc", ""}
    assert dead[str(poison)]["attempts"] == "3"
    assert "policy: ValueError" in dead[str(poison)]["error"]
    assert dead[str(poison)]["consumer"] and dead[str(poison)]["time"]
    assert dead["abc"]["error"].startswith("malformed message")
    assert "other" in dead[""]["message"]
    assert (stream.pending(), stream.length()) == (0, 0)


def test_comments_are_decided_after_redis_loses_its_data(
    submit, start_worker, stream, redis_server, redis_prefix
):
    def lose_redis_data() -> None:
        # FLUSHALL, for this deployment's keys only: the test Redis is shared.
        keys = list(redis_server.scan_iter(f"{redis_prefix}:*"))
        if keys:
            redis_server.delete(*keys)

    before = submit_ids(submit, "Lost before the worker started.", "Lost too.")
    lose_redis_data()
    worker = start_worker("--name", "w", SWEEP_AFTER_S=1, SWEEP_INTERVAL_S=1)

    def group_made() -> bool:
        # The heartbeat starts before the first turn makes the group: losing the data in
        # between would only mean the group is made afresh, with nothing to recover.
        try:
            return bool(redis_server.xinfo_groups(stream.name))
        except redis.ResponseError:  # no stream yet
            return False

    wait_for(group_made, "the consumer group", worker)
    lose_redis_data()  # again, with the worker blocked reading the group
    after = submit_ids(submit, "Added to a stream with no group.")

    wait_for(lambda: decided(before + after), "every comment decided", worker)

    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()
    assert_decided_once(before + after)
    assert "consumer group gone" in worker.log()
    assert "re-enqueued" in worker.log()  # by the sweeper


@POSTGRES_ONLY
def test_worker_retries_its_batch_when_the_database_connection_dies(
    submit, start_worker, stream, database_url
):
    ids = submit_ids(submit, "Kept.", "Kept too.")
    with rows_locked(ids):
        worker = start_worker()

        def waiting_pid() -> int | None:
            # Statistics are a snapshot per transaction, and this one holds the locks.
            db.session.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return db.session.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar()

        pid = wait_for(waiting_pid, "the worker waiting for the locks", worker)
        db.session.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    wait_for(lambda: decided(ids), "the batch decided after the retry", worker)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()
    assert_decided_once(ids)
    assert "database unavailable" in worker.log()


def test_worker_exits_non_zero_when_no_scorer_loads(tmp_path):
    settings = {
        **WORKER_SETTINGS,
        "SCORER": f"detoxify:{tmp_path / 'missing.ckpt'}",
        "SCORER_FALLBACK": "none",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "REDIS_URL": REDIS_URL,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "test-secret",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
    env.update({f"CIVILITY_{name}": str(value) for name, value in settings.items()})
    answer = subprocess.run(
        [str(CIVILITY), "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 1
    assert "missing.ckpt does not exist" in answer.stderr
    assert "the worker cannot start" in answer.stderr


def test_worker_refuses_an_unknown_thread_wait_policy_naming_the_setting(start_worker):
    worker = start_worker("--burst", MODEL_THREAD_WAIT="sometimes")

    assert worker.wait() == 1, worker.log()
    assert "CIVILITY_MODEL_THREAD_WAIT must be one of passive, brief, active" in worker.log()


def test_worker_refuses_an_unknown_precision_naming_the_setting(start_worker):
    # Checked whatever the scorer: profanity-check ignores it, a later switch would not.
    worker = start_worker("--burst", MODEL_PRECISION="fp16")

    assert worker.wait() == 1, worker.log()
    assert "CIVILITY_MODEL_PRECISION must be one of auto, fp32, bf16, int8" in worker.log()

"""The scoring worker with the real Detoxify class on a tiny checkpoint: its model recorded,
truncation flagged, windows scored shortest first, SIGTERM mid-window, the fallback when it
cannot load, and a long comment's toxic tail."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from service.extensions import db
from service.models import Site
from tests.marks import ONE_BACKEND
from tests.worker_helpers import (
    comments,
    decided,
    detoxify_settings,
    policy_events,
    rows_locked,
    submit_ids,
    wait_for,
)


@ONE_BACKEND
def test_detoxify_worker_records_its_model_and_flags_truncated_texts(
    database_url, submit, start_worker, tiny_checkpoint
):
    checkpoint, config_dir = tiny_checkpoint
    short, long = submit_ids(submit, "thanks", "the long story " * 20)

    worker = start_worker(
        "--burst",
        SCORER=f"detoxify:{checkpoint}",
        MODEL_CONFIG_DIR=config_dir,
        MODEL_MAX_TOKENS=8,
    )

    assert worker.wait(60) == 0, worker.log()
    rows = comments([short, long])
    for row in rows.values():
        assert row.model.startswith("detoxify-tiny@")
        assert len(row.scores) == 6 and "toxicity" in row.scores
    assert {"code": "truncated"} not in rows[short].reasons
    assert rows[long].reasons[-1] == {"code": "truncated"}
    (event,) = policy_events([long])
    assert event.reason_code == rows[long].reasons[0]["code"]


# Three short and three long comments, interleaved: two passes once sorted by length.
MIXED = ("Fine.", "word " * 30, "Agreed.", "word " * 28, "Thanks.", "word " * 29)


def assert_decided_once_by(model_prefix: str, ids: list[int]) -> list[int]:
    """Every comment decided by one policy event; the ids in the order they were decided."""
    events = policy_events(ids)
    assert Counter(event.comment_id for event in events) == Counter(ids)
    rows = comments(ids)
    assert all(row.model.startswith(model_prefix) for row in rows.values())
    return [event.comment_id for event in events]


@ONE_BACKEND
def test_backlogged_worker_reads_a_window_and_scores_it_shortest_first(
    database_url, submit, start_worker, stream, tiny_checkpoint
):
    ids = submit_ids(submit, *MIXED)

    worker = start_worker(
        "--burst", **detoxify_settings(tiny_checkpoint, SCORE_BATCH_MAX=3, SCORE_WINDOW_MAX=6)
    )

    assert worker.wait(60) == 0, worker.log()
    order = assert_decided_once_by("detoxify-tiny@", ids)
    # One read of all six, then one pass of the short ones, committed, and one of the long.
    assert set(order[:3]) == set(ids[0::2]) and set(order[3:]) == set(ids[1::2])
    assert worker.log().count("batch of 3: 3 decided") == 2
    assert (stream.pending(), stream.length()) == (0, 0)


def test_sigterm_mid_window_finishes_the_pass_and_gives_back_the_rest(
    submit, start_worker, stream, tiny_checkpoint
):
    ids = submit_ids(submit, *MIXED)
    settings = detoxify_settings(tiny_checkpoint, SCORE_BATCH_MAX=3, SCORE_WINDOW_MAX=6)
    with rows_locked(ids):  # the worker reads the window, then waits for the database
        first = start_worker(**settings)
        wait_for(lambda: stream.pending() == 6, "the window delivered", first, timeout=60)
        first.signal(signal.SIGTERM)

    assert first.wait(60) == 0, first.log()
    assert "gave back 3 messages" in first.log()
    assert set(assert_decided_once_by("detoxify-tiny@", ids[0::2])) == set(ids[0::2])
    # The rest are new messages, free for any worker at once: nothing pending, nothing idle.
    assert (stream.pending(), stream.length()) == (0, 3)
    assert all(row.status == "pending" for row in comments(ids[1::2]).values())

    second = start_worker("--burst", **settings)

    assert second.wait(60) == 0, second.log()
    assert_decided_once_by("detoxify-tiny@", ids)
    assert (stream.pending(), stream.length()) == (0, 0)


@ONE_BACKEND
def test_worker_falls_back_and_says_so_when_its_scorer_cannot_load(
    database_url, submit, start_worker, redis_server, redis_prefix
):
    (comment_id,) = submit_ids(submit, "A fine comment.")

    worker = start_worker(
        "--name",
        "fallback",
        SCORER="detoxify:/nowhere/model.ckpt",
        SCORER_FALLBACK="profanity-check",
    )

    wait_for(lambda: decided([comment_id]), "the comment decided", worker)
    beat = json.loads(redis_server.get(f"{redis_prefix}:worker:fallback"))
    assert beat["fallback_active"] is True
    assert beat["scorer_spec"] == "detoxify:/nowhere/model.ckpt"
    assert beat["model"].startswith("profanity-check@")
    assert comments([comment_id])[comment_id].model == beat["model"]
    assert "falling back to profanity-check" in worker.log()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()


@ONE_BACKEND
def test_long_comment_whose_tail_is_toxic_is_rejected_by_the_worker(
    database_url, submit, start_worker, tiny_checkpoint, site
):
    from service.moderation.policy import LABELS
    from workers.scorers import load_scorer

    checkpoint, config_dir = tiny_checkpoint
    scorer = load_scorer(f"detoxify:{checkpoint}", "none", config_dir=config_dir, max_tokens=16)
    head = "please read " * 40  # the tiny model scores it low; 80 tokens, windows of 16
    tails = ("I hate this and I hate you", "please read the comment again before you answer")
    tail = max(tails, key=lambda t: scorer.score([head + t])[0]["toxicity"])
    low, high = scorer.score([head])[0]["toxicity"], scorer.score([head + tail])[0]["toxicity"]
    assert high > low + 0.3
    row = db.session.get(Site, site.id)
    row.hold_at = dict.fromkeys(LABELS)  # only toxicity decides, halfway between the two
    row.reject_at = {**dict.fromkeys(LABELS), "toxicity": (low + high) / 2}
    db.session.commit()
    quiet, rude = submit_ids(submit, head, head + tail)

    worker = start_worker("--burst", **detoxify_settings(tiny_checkpoint, MODEL_MAX_TOKENS=16))

    assert worker.wait(60) == 0, worker.log()
    rows = comments([quiet, rude])
    assert rows[quiet].status == "approved"
    assert rows[rude].status == "rejected"  # cut at 16 tokens, the tail would go unread
    assert rows[rude].reasons[0]["code"] == "toxicity"
    assert {"code": "truncated"} not in rows[rude].reasons
    assert rows[rude].scores["toxicity"] == pytest.approx(high, abs=1e-3)

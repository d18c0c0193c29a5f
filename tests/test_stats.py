"""GET /v1/stats checked number by number against a hand-built history."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import ModerationEvent, Site, utcnow
from service.moderation.states import CommentStatus
from tests.review_helpers import make_comments, moderator_moves, policy_decides, set_created

T0 = utcnow().replace(microsecond=0) - timedelta(days=1)


def at(comment_id: int, move: str, seconds: float) -> None:
    """Set when the event ``from>to`` of a comment happened: ``seconds`` after T0 (its
    comment was submitted at T0), and so the latency a first review stored."""
    from_status, to_status = move.split(">")
    event = ModerationEvent
    result = db.session.execute(
        sa.update(event)
        .where(
            event.comment_id == comment_id,
            event.from_status == from_status,
            event.to_status == to_status,
        )
        .values(
            created_at=T0 + timedelta(seconds=seconds),
            latency_s=sa.case((event.latency_s.is_not(None), seconds), else_=None),
        )
    )
    assert result.rowcount == 1
    db.session.commit()


@pytest.fixture
def history(client, site):
    """Seven comments in the window and one before it, decided as the comments say."""
    db.session.get(Site, site.id).requeue_reports = 1
    db.session.commit()
    mod = site.auth("moderator")
    c1, c2, c3, c4, c5, _c6, c7 = ids = make_comments(site.id, 7)
    [old] = make_comments(site.id, 1)
    for comment_id in ids:
        set_created(comment_id, T0)
    set_created(old, T0 - timedelta(days=2))

    policy_decides([c1, c5, c7, old], "approved")
    policy_decides([c2, c4], "held")
    policy_decides([c3], "rejected")
    at(c1, "pending>approved", 1)
    at(c2, "pending>held", 2)
    at(c3, "pending>rejected", 3)
    at(c4, "pending>held", 4)
    at(c5, "pending>approved", 5)
    at(c7, "pending>approved", 1)
    at(old, "pending>approved", -2 * 86400 + 1)

    # c1: policy approved, alice rejects (an override) after 100 s.
    moderator_moves([c1], "rejected", actor="alice")
    at(c1, "approved>rejected", 100)
    # c2: held, bob approves after 300 s.
    moderator_moves([c2], "approved", actor="bob")
    at(c2, "held>approved", 300)
    # c3: policy rejected, alice approves after 50 s.
    moderator_moves([c3], "approved", actor="alice")
    at(c3, "rejected>approved", 50)
    # c4: held, alice rejects after 1000 s, then bob approves (not its first decision).
    moderator_moves([c4], "rejected", actor="alice")
    moderator_moves([c4], "approved", actor="bob")
    at(c4, "held>rejected", 1000)
    at(c4, "rejected>approved", 2000)
    # c5: rejected in bulk after 700 s, undone after 800 s (an undo is no decision).
    action = client.post(
        "/v1/decisions/bulk", json={"ids": [c5], "decision": "reject"}, headers=mod
    ).get_json()
    client.post(f"/v1/decisions/bulk/{action['bulk_id']}/undo", headers=mod)
    at(c5, "approved>rejected", 700)
    at(c5, "rejected>approved", 800)
    # c7: a reader's report requeues it (no decision), a moderator rejects it after 500 s.
    client.post(f"/v1/comments/{c7}/reports", json={"reason": "spam"}, headers=site.auth())
    client.post(f"/v1/comments/{c7}/decision", json={"decision": "reject"}, headers=mod)
    at(c7, "approved>held", 60)
    at(c7, "held>rejected", 500)
    # c6 stays pending.
    return ids


def test_stats_match_the_hand_built_history(client, site, history):
    since = (T0 - timedelta(hours=1)).isoformat()
    answer = client.get("/v1/stats", query_string={"since": since}, headers=site.auth("moderator"))
    assert answer.status_code == 200, answer.get_json()
    stats = answer.get_json()
    assert stats["received"] == 7
    assert stats["policy"] == {"approved": 3, "held": 2, "rejected": 1, "total": 6}
    assert stats["moderators"] == {"approved": 3, "held": 0, "rejected": 4, "total": 7}
    assert stats["by_moderator"] == [
        {"actor": "alice", "decisions": 3},
        {"actor": "Example News-moderator", "decisions": 2},
        {"actor": "bob", "decisions": 2},
    ]
    assert stats["overrides"] == {
        "policy_approved_moderator_rejected": 3,  # c1, c5, c7
        "policy_rejected_moderator_approved": 1,  # c3
        "policy_held_moderator_approved": 2,  # c2, c4
        "policy_held_moderator_rejected": 1,  # c4
    }
    # Policy: 1, 1, 2, 3, 4, 5 s. Moderators' first decisions: 50, 100, 300, 500, 700, 1000 s.
    assert stats["latency"]["policy"] == {"samples": 6, "median_s": 2.5, "p95_s": 5.0}
    assert stats["latency"]["moderators"] == {"samples": 6, "median_s": 400.0, "p95_s": 1000.0}
    assert stats["reports"] == {"received": 1, "resolved": 1}
    assert (stats["queue"]["pending"], stats["queue"]["held"]) == (1, 0)


def test_the_window_bounds_every_number(client, site, history):
    until = (T0 + timedelta(seconds=3, milliseconds=500)).isoformat()
    since = (T0 - timedelta(hours=1)).isoformat()
    stats = client.get(
        "/v1/stats", query_string={"since": since, "until": until}, headers=site.auth("moderator")
    ).get_json()
    assert stats["policy"] == {"approved": 2, "held": 1, "rejected": 1, "total": 4}
    assert stats["moderators"]["total"] == 0
    assert stats["latency"]["moderators"] == {"samples": 0, "median_s": None, "p95_s": None}


@pytest.fixture
def one_sample(config):
    config["STATS_SAMPLE_MAX"] = 2
    return config


def test_latencies_read_only_the_newest_decisions(one_sample, client, site):
    ids = make_comments(site.id, 3)
    policy_decides(ids, CommentStatus.APPROVED)
    for comment_id, seconds in zip(ids, (100, 2, 4), strict=True):
        set_created(comment_id, T0)
        at(comment_id, "pending>approved", seconds)
    stats = client.get(
        "/v1/stats",
        query_string={"since": (T0 - timedelta(hours=1)).isoformat()},
        headers=site.auth("moderator"),
    ).get_json()
    assert stats["latency"]["policy"] == {"samples": 2, "median_s": 3.0, "p95_s": 4.0}
    assert stats["policy"]["total"] == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "last week"}, "since"),
        ({"window": "7d"}, "window"),
    ],
)
def test_bad_windows_answer_422_naming_the_field(client, site, params, field):
    answer = client.get("/v1/stats", query_string=params, headers=site.auth("moderator"))
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]["query"]


def test_stats_count_only_the_keys_own_site(client, site, other_site, history):
    stats = client.get("/v1/stats", headers=other_site.auth("admin")).get_json()
    assert (stats["received"], stats["policy"]["total"], stats["moderators"]["total"]) == (0, 0, 0)


def test_the_migration_gives_stored_decisions_what_moderate_records(site, history):
    path = Path(__file__).parents[1] / "service/migrations/versions/e5b2c7d9f1a3_stats_counters.py"
    spec = importlib.util.spec_from_file_location("stats_counters", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    event = ModerationEvent
    columns = (event.id, event.policy_status, event.latency_s)
    recorded = db.session.execute(sa.select(*columns).order_by(event.id)).all()
    assert [row.policy_status for row in recorded].count("approved") == 3  # c1, c5, c7
    db.session.execute(sa.update(event).values(policy_status=None, latency_s=None))
    for statement in migration.event_backfill(db.engine.dialect.name):
        db.session.execute(sa.text(statement))
    db.session.commit()
    backfilled = db.session.execute(sa.select(*columns).order_by(event.id)).all()
    assert [row[:2] for row in backfilled] == [row[:2] for row in recorded]
    assert [row.latency_s is None for row in backfilled] == [
        row.latency_s is None for row in recorded
    ]
    assert [row.latency_s for row in backfilled if row.latency_s is not None] == pytest.approx(
        [row.latency_s for row in recorded if row.latency_s is not None], abs=0.01
    )

"""Retention: what is past its time goes in bounded batches, what anything still needs stays."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from service import labels, rollups
from service.cli import main
from service.extensions import db
from service.models import (
    AnalyzeFeedback,
    ApiKey,
    BulkAction,
    DashboardSession,
    ModerationEvent,
    StatsDay,
    WebhookAttempt,
    WebhookDelivery,
)
from service.retention import Retention, first_id_at, prune
from tests.retention_helpers import (
    NOW,
    OLD,
    RECENT,
    age,
    count,
    delivery,
    event_ids,
    make_audit,
    make_endpoint,
)
from tests.review_helpers import (
    MODEL,
    events,
    make_comments,
    policy_decides,
)


def settings(app, **overrides: Any) -> Retention:
    return Retention.from_config({**app.config, **overrides})


@pytest.fixture
def audit(site) -> dict[str, list[int]]:
    return make_audit(site)


@pytest.fixture
def endpoint(site) -> int:
    return make_endpoint(site)


def test_old_policy_only_histories_go_recent_and_moderated_ones_stay(app, site, audit):
    kept = event_ids(audit["recent"] + audit["recent_moderated"] + audit["old_moderated"])
    pruned = prune(settings(app))
    assert pruned.finished
    # Three comments with an arrival and a decision each, less the site's newest model row.
    assert pruned.rows["moderation_event"] == 6
    left = event_ids(audit["old"])
    assert event_ids(audit["recent"] + audit["recent_moderated"] + audit["old_moderated"]) == kept
    assert len(left) == 0


def test_the_sites_newest_policy_event_stays_so_its_model_is_known(app, site):
    ids = make_comments(site.id, 2)
    policy_decides(ids, "approved")
    age(ids, OLD)
    assert labels.current_model(site.id) == MODEL
    prune(settings(app))
    assert labels.current_model(site.id) == MODEL
    [kept] = [e for e in events() if e.actor == "policy"]
    assert kept.comment_id == ids[-1]


def test_moderated_histories_go_whole_after_their_own_retention(app, site, audit):
    pruned = prune(settings(app, RETAIN_MODERATED_EVENTS_DAYS=190))
    assert event_ids(audit["old_moderated"]) == set()
    assert event_ids(audit["recent_moderated"])
    # Two comments' arrival, policy hold and moderator reject; the old policy-only ones too,
    # all but the site's newest policy event (a recent one: every old one could go).
    assert pruned.rows["moderation_event"] == 6 + 6


def test_a_running_bulk_actions_events_stay(app, site):
    ids = make_comments(site.id, 2)
    policy_decides(ids, "held")
    action = BulkAction(id="b" * 36, site_id=site.id, actor="mod", decision="rejected",
                        selection={}, status="undoing")  # fmt: skip
    db.session.add(action)
    for comment_id in ids:
        db.session.add(
            ModerationEvent(
                site_id=site.id,
                comment_id=comment_id,
                from_status="held",
                to_status="rejected",
                actor="mod",
                bulk_id=action.id,
            )
        )
    db.session.commit()
    age(ids, OLD)
    before = event_ids(ids)
    prune(settings(app, RETAIN_MODERATED_EVENTS_DAYS=190))
    assert event_ids(ids) == before
    action.status = "done"
    db.session.commit()
    prune(settings(app, RETAIN_MODERATED_EVENTS_DAYS=190))
    # All but the site's newest policy event, which says the model it runs.
    assert [(e.actor, e.model) for e in events()] == [("policy", MODEL)]


def stats(client, site, since, until) -> dict:
    query = {"since": since.isoformat(), "until": until.isoformat()}
    answer = client.get("/v1/stats", query_string=query, headers=site.auth("moderator"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_stats_of_pruned_days_do_not_change(app, client, site, audit):
    # A whole-day window around the old comments, and one inside the retention.
    old = (
        rollups.start_of((OLD - timedelta(days=2)).date()),
        rollups.start_of(OLD.date()) + timedelta(days=3),
    )
    recent = (RECENT - timedelta(days=3), NOW)
    before = {
        name: stats(client, site, *window) for name, window in (("old", old), ("recent", recent))
    }
    assert before["old"]["received"] == 5 and before["old"]["moderators"]["rejected"] == 2
    # As if nobody had read those days yet: pruning must count them into the rollup itself.
    db.session.execute(sa.delete(StatsDay))
    db.session.commit()
    pruned = prune(settings(app))
    assert pruned.rows["moderation_event"] == 6 and pruned.rolled_up_days > 0
    after = {
        name: stats(client, site, *window) for name, window in (("old", old), ("recent", recent))
    }
    assert after["recent"] == before["recent"]
    # Everything of the old window but the policy's latency, whose events were the ones to go.
    policy_latency = after["old"]["latency"].pop("policy"), before["old"]["latency"].pop("policy")
    assert after["old"] == before["old"]
    assert policy_latency[0]["samples"] < policy_latency[1]["samples"]
    # A rebuild recounts the days within the retention only: the pruned ones keep their counts.
    result = app.test_cli_runner().invoke(main, ["stats", "rebuild"])
    assert result.exit_code == 0, result.output
    assert stats(client, site, *old)["received"] == before["old"]["received"]
    assert stats(client, site, *old)["moderators"] == before["old"]["moderators"]


def test_calibration_labels_stay(app, site, audit):
    window = labels.Window(site.id, MODEL, OLD - timedelta(days=1), NOW)
    before = labels.gather(window, 1000).verdicts()
    assert len(before) == 4
    prune(settings(app))
    assert labels.gather(window, 1000).verdicts() == before


def test_finished_old_deliveries_go_with_their_attempts_pending_ones_stay(app, site, endpoint):
    gone = [delivery(site, endpoint, "succeeded", OLD), delivery(site, endpoint, "failed", OLD)]
    pending = delivery(site, endpoint, "pending", OLD)
    recent = delivery(site, endpoint, "failed", RECENT)
    # Redelivered lately: its newest attempt is recent, so its log is kept.
    redelivered = delivery(site, endpoint, "failed", OLD)
    db.session.add(WebhookAttempt(delivery_id=redelivered, attempt=3, created_at=RECENT))
    db.session.commit()
    pruned = prune(settings(app))
    assert pruned.rows["webhook_delivery"] == 2 and pruned.rows["webhook_attempt"] == 4
    left = set(db.session.scalars(sa.select(WebhookDelivery.id)))
    assert left == {pending, recent, redelivered}
    assert not set(gone) & set(db.session.scalars(sa.select(WebhookAttempt.delivery_id)))
    assert count(WebhookAttempt) == 2 + 2 + 3


def session_row(site, key_id: int, created, *, ended=None) -> int:
    row = DashboardSession(token_hash=secrets.token_hex(32), site_id=site.id, key_id=key_id,
                           csrf="c", created_at=created, last_seen_at=created,
                           expires_at=created + timedelta(hours=12), ended_at=ended)  # fmt: skip
    db.session.add(row)
    db.session.commit()
    return row.id


def test_old_feedback_and_finished_sessions_go(app, site):
    for when in (NOW - timedelta(days=400), NOW - timedelta(days=100)):
        db.session.add(
            AnalyzeFeedback(site_id=site.id, created_at=when, attributes={"TOXICITY": 1.0})
        )
    key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.site_id == site.id).limit(1))
    session_row(site, key_id, NOW - timedelta(days=40))  # expired 40 days ago: goes
    ended = session_row(site, key_id, NOW - timedelta(days=20), ended=NOW - timedelta(days=20))
    live = session_row(site, key_id, NOW - timedelta(hours=1))
    pruned = prune(settings(app))
    assert pruned.rows["analyze_feedback"] == 1 and pruned.rows["dashboard_session"] == 1
    assert count(AnalyzeFeedback) == 1
    assert set(db.session.scalars(sa.select(DashboardSession.id))) == {ended, live}


def test_zero_keeps_everything(app, site, audit, endpoint):
    delivery(site, endpoint, "succeeded", OLD)
    kinds = ("EVENTS", "DELIVERIES", "ANALYZE_FEEDBACK", "SESSIONS")
    forever = {f"RETAIN_{kind}_DAYS": 0 for kind in kinds}
    retention = settings(app, **forever)
    assert not retention.prunes_anything
    assert sum(prune(retention).rows.values()) == 0


def test_each_batch_deletes_at_most_the_batch_size_and_commits(app, site, endpoint):
    for _ in range(7):
        delivery(site, endpoint, "succeeded", OLD, attempts=1)
    log: list[Any] = []

    def seen(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM WEBHOOK_DELIVERY"):
            log.append(cursor.rowcount)

    def committed(conn) -> None:
        log.append("commit")

    sa.event.listen(db.engine, "after_cursor_execute", seen)
    sa.event.listen(db.engine, "commit", committed)
    try:
        pruned = prune(settings(app, PRUNE_BATCH=3))
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", seen)
        sa.event.remove(db.engine, "commit", committed)
    assert pruned.rows["webhook_delivery"] == 7
    # Each batch in its own transaction: a commit after every delete.
    batches = [n for n, after in itertools.pairwise(log) if after == "commit" and n != "commit"]
    assert batches == [3, 3, 1]


def test_a_deadline_stops_between_batches(app, site, endpoint):
    for _ in range(5):
        delivery(site, endpoint, "succeeded", OLD, attempts=0)
    pruned = prune(settings(app, PRUNE_BATCH=2), deadline=time.monotonic())
    assert not pruned.finished and pruned.rows["webhook_delivery"] == 2
    assert prune(settings(app, PRUNE_BATCH=2)).rows["webhook_delivery"] == 3


def test_the_cutoff_is_found_by_bisection_over_gaps(app, site, endpoint):
    ids = [
        delivery(site, endpoint, "succeeded", NOW - timedelta(days=d), 0) for d in range(50, 0, -1)
    ]
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids[10:20])))
    db.session.commit()
    cutoff = NOW - timedelta(days=25, hours=12)
    assert first_id_at(WebhookDelivery, WebhookDelivery.created_at, cutoff) == ids[25]
    assert first_id_at(WebhookDelivery, WebhookDelivery.created_at, NOW) == ids[-1] + 1
    assert (
        first_id_at(WebhookDelivery, WebhookDelivery.created_at, NOW - timedelta(days=60)) is None
    )


def test_prune_cli_dry_run_counts_and_deletes_nothing(app, site, audit, endpoint):
    delivery(site, endpoint, "failed", OLD)
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["prune", "--dry-run"])
    assert result.exit_code == 0, result.output
    dry = json.loads(result.output.strip().splitlines()[-1])
    assert dry["dry_run"] is True
    assert dry["rows"] == {"moderation_event": 6, "webhook_delivery": 1, "webhook_attempt": 2,
                           "analyze_feedback": 0, "dashboard_session": 0}  # fmt: skip
    assert count(WebhookDelivery) == 1 and event_ids(audit["old"])
    result = runner.invoke(main, ["prune"])
    assert result.exit_code == 0, result.output
    real = json.loads(result.output.strip().splitlines()[-1])
    assert real["rows"] == dry["rows"] and real["dry_run"] is False
    assert count(WebhookDelivery) == 0


def test_prune_cli_names_a_bad_setting(app, config):
    app.config["RETAIN_EVENTS_DAYS"] = -1
    result = app.test_cli_runner().invoke(main, ["prune"])
    assert result.exit_code != 0
    assert "CIVILITY_RETAIN_EVENTS_DAYS" in result.output


def test_a_negative_retention_is_refused_at_start(config):
    from service import create_app

    with pytest.raises(ValueError, match="CIVILITY_RETAIN_SESSIONS_DAYS"):
        create_app({**config, "RETAIN_SESSIONS_DAYS": -1})


def test_between_runs_after_each_committed_batch(app, site, endpoint):
    """The worker answers synchronous requests there: each call comes after a batch is
    committed (what it deleted is gone for any other session), not once per run."""
    for _ in range(7):
        delivery(site, endpoint, "succeeded", OLD, attempts=0)
    db.session.commit()
    left: list[int] = []

    def between() -> None:
        with db.engine.connect() as other:  # its own connection: sees only what committed
            left.append(other.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)))

    pruned = prune(settings(app, PRUNE_BATCH=3), between=between)
    assert pruned.rows["webhook_delivery"] == 7
    assert left == [4, 1, 0]

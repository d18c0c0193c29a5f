"""Daily stats rollups: whole closed days counted once, equal to a live count, rebuilt on demand."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from service import rollups
from service.cli import main
from service.extensions import db
from service.models import ModerationEvent, StatsDay, utcnow
from tests.review_helpers import make_comments, moderator_moves, policy_decides, set_created

TODAY = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)


def backdate(comment_id: int, when) -> None:
    """Move a comment and all its events to ``when`` (a closed day)."""
    set_created(comment_id, when)
    db.session.execute(
        sa.update(ModerationEvent)
        .where(ModerationEvent.comment_id == comment_id)
        .values(created_at=when + timedelta(seconds=5))
    )
    db.session.commit()


@pytest.fixture
def week(site):
    """Comments on each of the last six closed days and today, decided by policy and mods."""
    ids = []
    for days_ago in range(7):
        day_ids = make_comments(site.id, 3, author=f"reader-{days_ago}")
        policy_decides(day_ids[:2], "approved")
        policy_decides(day_ids[2:], "held")
        moderator_moves(day_ids[2:], "rejected", actor=f"mod-{days_ago % 2}")
        # Mid-morning on closed days; today's at midnight, so never in the future whatever
        # hour the suite runs (a comment at 10:00 today is not yet "received" at 03:00).
        when = TODAY - timedelta(days=days_ago) + timedelta(hours=10 if days_ago else 0)
        for comment_id in day_ids:
            backdate(comment_id, when)
        ids += day_ids
    return ids


def stats(client, site, since) -> dict:
    answer = client.get(
        "/v1/stats", query_string={"since": since.isoformat()}, headers=site.auth("moderator")
    )
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_whole_days_come_from_the_rollup_and_match_a_live_count(client, site, week):
    since = TODAY - timedelta(days=6, hours=3)  # a partial first day, six whole ones
    answer = stats(client, site, since)
    assert answer["received"] == 21
    assert answer["policy"] == {"approved": 14, "held": 7, "rejected": 0, "total": 21}
    assert answer["moderators"]["rejected"] == 7
    assert {row["actor"] for row in answer["by_moderator"]} == {"mod-0", "mod-1"}
    assert answer["overrides"]["policy_held_moderator_rejected"] == 7
    days = db.session.scalars(sa.select(StatsDay.day).where(StatsDay.site_id == site.id)).all()
    assert sorted(days) == [(TODAY - timedelta(days=n)).date() for n in range(6, 0, -1)]
    live = rollups.live(site.id, since, utcnow())
    assert rollups.window(site.id, since, utcnow(), 3600) == live


def test_a_closed_day_is_counted_once_until_rebuilt(app, client, site, week):
    since = TODAY - timedelta(days=6)
    assert stats(client, site, since)["received"] == 21
    # A comment back-dated into a counted day (an import): the rollup keeps its count...
    [late] = make_comments(site.id, 1)
    backdate(late, TODAY - timedelta(days=3, hours=-12))
    assert stats(client, site, since)["received"] == 21
    # ...until the operator rebuilds it.
    result = app.test_cli_runner().invoke(main, ["stats", "rebuild", "--site", str(site.id)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["days"] == 6
    assert stats(client, site, since)["received"] == 22


def test_days_rolled_up_before_overrides_were_counted_gain_them(client, site, week):
    since = TODAY - timedelta(days=6)
    assert stats(client, site, since)["overrides"]["policy_held_moderator_rejected"] == 7
    # Rows as the code before overrides were counted stored them.
    for row in db.session.scalars(sa.select(StatsDay)):
        row.counts = {name: n for name, n in row.counts.items() if name != "overrides"}
    db.session.commit()
    assert stats(client, site, since)["overrides"]["policy_held_moderator_rejected"] == 7
    db.session.expire_all()
    stored = db.session.scalars(sa.select(StatsDay.counts)).all()
    assert len(stored) == 6
    assert all(counts["overrides"] == {"held>rejected": 1} for counts in stored)


def test_rebuild_names_an_unknown_site(app):
    result = app.test_cli_runner().invoke(main, ["stats", "rebuild", "--site", "999999"])
    assert result.exit_code != 0
    assert "no site 999999" in result.output


def test_days_within_the_grace_are_counted_live(config, client, site, week):
    config["STATS_ROLLUP_GRACE_S"] = 10 * 86400
    client.application.config["STATS_ROLLUP_GRACE_S"] = 10 * 86400
    assert stats(client, site, TODAY - timedelta(days=6))["received"] == 21
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StatsDay)) == 0


def test_concurrent_readers_fill_each_day_once_and_agree(app, client, site, week):
    since = TODAY - timedelta(days=6)
    answers, errors = [], []

    def read() -> None:
        with app.app_context():
            try:
                answers.append(rollups.window(site.id, since, utcnow(), 3600))
            except Exception as exc:  # reported below, with the thread's answer missing
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    # Moderators keep deciding today meanwhile: today is counted live, never rolled up.
    more = make_comments(site.id, 2, author="late-reader")
    policy_decides(more, "approved")
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({json.dumps(a["policy"], sort_keys=True) for a in answers}) <= 2
    assert all(a["received"] in (21, 23) for a in answers)
    rows = db.session.execute(sa.select(StatsDay.day, sa.func.count()).group_by(StatsDay.day)).all()
    assert rows and all(n == 1 for _, n in rows)
    assert stats(client, site, since)["received"] == 23

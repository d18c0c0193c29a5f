"""Daily stats rollups: a closed day's additive counts, computed once and summed for long windows.

The counts of /v1/stats (comments received, decisions by policy and by moderators,
who decided, reports) come from append-only facts stamped with the time they happened,
so a UTC day that ended more than CIVILITY_STATS_ROLLUP_GRACE_S ago never changes. Such a
day is counted once, on the first window that covers it whole, and stored in
``stats_day``; a window reads its whole days from there and counts only its partial
first and last days live. Nothing on the write path (ingest, the worker, moderators)
touches the rollups, so they cost writes nothing and are never contended; concurrent
readers that fill the same day insert the same numbers and the second insert is ignored.
Rows back-dated or removed later (erasure, imports) are reflected after ``civility stats
rebuild``. Retention (service.retention) fills every day before it prunes that day's
events, and a rebuild keeps the days before the retention horizon as stored: their events
may be gone, and their counts must not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from service.extensions import db
from service.models import Comment, ModerationEvent, Report, StatsDay, utcnow
from service.moderation.moderate import DECIDED, NOT_DECISIONS
from service.moderation.states import CommentStatus
from service.score_key import literal

DAY = timedelta(days=1)
# Days one transaction of ``fill`` stores.
FILL_COMMIT_DAYS = 10


def is_policy(event: Any) -> Any:
    """SQL: ``event`` is the policy deciding a pending comment."""
    return sa.and_(event.actor == "policy", event.from_status == CommentStatus.PENDING)


def is_human(event: Any) -> Any:
    """SQL: ``event`` is a moderator's decision (not a requeue, undo or delete): the rule
    of ``moderate.is_decision``."""
    # A literal "policy", so the partial index of moderators' decisions matches.
    return sa.and_(
        event.actor != literal("policy"),
        event.from_status.is_not(None),
        event.to_status.in_(DECIDED),
        sa.or_(event.reason_code.is_(None), event.reason_code.not_in(NOT_DECISIONS)),
    )


def empty() -> dict[str, Any]:
    """Counts of nothing."""
    return {
        "received": 0,
        "policy": {},
        "moderators": {},
        "by_moderator": {},
        # "held>approved": moderator decisions that differ from the policy's of the comment.
        "overrides": {},
        "reports_received": 0,
        "reports_resolved": 0,
    }


def add(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add ``part``'s counts into ``total`` (and return it)."""
    for name, value in part.items():
        if isinstance(value, dict):
            into = total[name]
            for key, n in value.items():
                into[key] = into.get(key, 0) + n
        else:
            total[name] += value
    return total


def live(site_id: int, since: datetime, until: datetime) -> dict[str, Any]:
    """The additive counts of ``[since, until)``, read from the tables (their indexes)."""
    event = ModerationEvent
    counts = empty()
    # Every decision of the window in one pass (creations have no from_status), grouped
    # by the columns the rules read: ix_event_site_decided covers it.
    decisions = db.session.execute(
        sa.select(is_policy(event), is_human(event), event.actor, event.to_status)
        .add_columns(event.policy_status, sa.func.count())
        .where(
            event.site_id == site_id,
            event.created_at >= since,
            event.created_at < until,
            event.from_status.is_not(None),
        )
        .group_by(
            event.actor, event.from_status, event.to_status, event.reason_code, event.policy_status
        )
    ).all()
    for policy_made, human_made, actor, to_status, policy_status, n in decisions:
        if policy_made:
            add(counts, {"policy": {to_status: n}})
        elif human_made:
            add(counts, {"moderators": {to_status: n}, "by_moderator": {actor: n}})
            if policy_status is not None and policy_status != to_status:
                add(counts, {"overrides": {f"{policy_status}>{to_status}": n}})
    counts["received"] = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Comment)
        .where(
            Comment.site_id == site_id,
            # Every status: ix_comment_site_status_created then serves the window.
            Comment.status.in_(list(CommentStatus)),
            Comment.created_at >= since,
            Comment.created_at < until,
        )
    )
    created = sa.and_(Report.created_at >= since, Report.created_at < until)
    resolved = sa.and_(Report.resolved_at >= since, Report.resolved_at < until)
    counts["reports_received"], counts["reports_resolved"] = db.session.execute(
        sa.select(sa.func.count().filter(created), sa.func.count().filter(resolved)).where(
            Report.site_id == site_id, sa.or_(created, resolved)
        )
    ).one()
    return counts


def start_of(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def whole_days(since: datetime, until: datetime, closed_before: datetime) -> tuple[date, date]:
    """The first and the past-the-last UTC day inside ``[since, until)`` that are closed."""
    first = since.astimezone(UTC).date()
    if start_of(first) < since:
        first += DAY
    end = min(until, closed_before).astimezone(UTC).date()
    return first, max(first, end)


def _days(first: date, end: date) -> Iterator[date]:
    day = first
    while day < end:
        yield day
        day += DAY


def _store(site_id: int, day: date, counts: dict[str, Any]) -> None:
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(
        insert(StatsDay)
        .values(site_id=site_id, day=day, counts=counts, computed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["site_id", "day"])
    )


def window(site_id: int, since: datetime, until: datetime, grace: float) -> dict[str, Any]:
    """The additive counts of ``[since, until)``: whole closed days from the rollup."""
    first, end = whole_days(since, until, utcnow() - timedelta(seconds=grace))
    if first >= end:
        return live(site_id, since, until)
    stored = dict(
        db.session.execute(
            sa.select(StatsDay.day, StatsDay.counts).where(
                StatsDay.site_id == site_id, StatsDay.day >= first, StatsDay.day < end
            )
        ).all()
    )
    total = add(live(site_id, since, start_of(first)), live(site_id, start_of(end), until))
    missing = [day for day in _days(first, end) if day not in stored]
    for day in missing:
        stored[day] = live(site_id, start_of(day), start_of(day + DAY))
        _store(site_id, day, stored[day])
    # Days rolled up before overrides were counted gain them once (from events that
    # retention has not pruned: none, for days before its horizon).
    older = [day for day, counts in stored.items() if "overrides" not in counts]
    for day in older:
        overrides = live(site_id, start_of(day), start_of(day + DAY))["overrides"]
        stored[day] = {**stored[day], "overrides": overrides}
        db.session.execute(
            sa.update(StatsDay)
            .where(StatsDay.site_id == site_id, StatsDay.day == day)
            .values(counts=stored[day])
        )
    if missing or older:
        db.session.commit()
    for counts in stored.values():
        add(total, counts)
    return total


def rebuild(site_id: int | None, grace: float, keep_before: datetime | None = None) -> int:
    """Recount every closed day of ``site_id`` (every site: None) from ``keep_before`` on
    (days before it stay as stored, missing ones are counted); returns days stored."""
    scope = [] if site_id is None else [StatsDay.site_id == site_id]
    if keep_before is not None:
        scope.append(StatsDay.day >= keep_before.date())
    db.session.execute(sa.delete(StatsDay).where(*scope))
    db.session.commit()
    closed_before = utcnow() - timedelta(seconds=grace)
    return fill(closed_before, site_id)


def fill(before: datetime, site_id: int | None = None) -> int:
    """Store every closed day before ``before`` not stored yet, of ``site_id`` (every site:
    None), from the site's first comment on; returns the days stored."""
    sites = db.session.execute(
        sa.select(Comment.site_id, sa.func.min(Comment.created_at))
        .where(*([] if site_id is None else [Comment.site_id == site_id]))
        .group_by(Comment.site_id)
    ).all()
    stored = 0
    for site, oldest in sites:
        first, end = whole_days(start_of(oldest.date()), before, before)
        have = set(
            db.session.scalars(
                sa.select(StatsDay.day).where(
                    StatsDay.site_id == site, StatsDay.day >= first, StatsDay.day < end
                )
            )
        )
        for day in _days(first, end):
            if day not in have:
                _store(site, day, live(site, start_of(day), start_of(day + DAY)))
                stored += 1
                if stored % FILL_COMMIT_DAYS == 0:
                    db.session.commit()  # SQLite's write lock is held for a few days' counts
        db.session.commit()
    return stored

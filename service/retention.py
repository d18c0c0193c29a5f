"""Retention: old audit rows, delivery logs, feedback and sessions pruned in bounded batches.

What goes, each after its own ``CIVILITY_RETAIN_*_DAYS`` (0 keeps it forever):

- **Moderation events** of comments only the policy moved (the arrival and the automatic
  decision): ``RETAIN_EVENTS_DAYS``. A comment someone else moved (a moderator, a bulk
  action, a ban, a report requeue, a delete) keeps its whole history until its newest
  event is ``RETAIN_MODERATED_EVENTS_DAYS`` old: that is the moderators' audit trail, the
  labels calibration learns from, what bulk undo and /v1/stats' overrides read, so it is
  never split. Events go by whole UTC days, and every such day is first stored in the
  daily stats rollup (service.rollups), so /v1/stats' counts of those days never change.
  Each site's newest policy event that names a model is kept: it says which model the
  site runs (service.labels.current_model). Events of a bulk action still running or
  being undone are kept.
- **Webhook deliveries** and their attempts once finished (succeeded or failed) with no
  attempt in ``RETAIN_DELIVERIES_DAYS``; a delivery still pending or retrying stays.
- **Analyze feedback** (``suggestscore`` labels) after ``RETAIN_ANALYZE_FEEDBACK_DAYS``.
- **Dashboard sessions** ended or expired ``RETAIN_SESSIONS_DAYS`` ago.

Each batch deletes at most ``PRUNE_BATCH`` rows of one kind and commits, so SQLite's
write lock (every transaction there begins IMMEDIATE) is never held for long. Rows are
walked by id from the oldest, up to the first id at the cutoff (found by bisection on the
id: ids rise with time), so a run never scans the recent part of a table. Rows kept below
the cutoff (moderated histories) are read again by each run; a row inserted back-dated
(an import) waits until the cutoff passes the rows inserted around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from service import metrics, rollups
from service.extensions import db
from service.models import (
    AnalyzeFeedback,
    BulkAction,
    DashboardSession,
    ModerationEvent,
    WebhookAttempt,
    WebhookDelivery,
    utcnow,
)
from service.webhooks import DeliveryStatus

log = logging.getLogger(__name__)

DAYS_SETTINGS = (
    "RETAIN_EVENTS_DAYS",
    "RETAIN_MODERATED_EVENTS_DAYS",
    "RETAIN_DELIVERIES_DAYS",
    "RETAIN_ANALYZE_FEEDBACK_DAYS",
    "RETAIN_SESSIONS_DAYS",
)
# Bulk actions whose events are still being read.
BUSY_BULK = ("running", "undoing")


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept (days; 0 = forever) and the batch size."""

    events_days: int
    moderated_events_days: int
    deliveries_days: int
    analyze_feedback_days: int
    sessions_days: int
    batch: int
    rollup_grace_s: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Retention:
        """The settings, checked: a ValueError names the one that is out of range."""
        for name in DAYS_SETTINGS:
            if cfg[name] < 0:
                raise ValueError(f"CIVILITY_{name} must be 0 (keep forever) or more days")
        if cfg["PRUNE_BATCH"] < 1:
            raise ValueError("CIVILITY_PRUNE_BATCH must be at least 1")
        days = [cfg[name] for name in DAYS_SETTINGS]
        return cls(*days, batch=cfg["PRUNE_BATCH"], rollup_grace_s=cfg["STATS_ROLLUP_GRACE_S"])

    @property
    def prunes_anything(self) -> bool:
        return any(
            (
                self.events_days,
                self.moderated_events_days,
                self.deliveries_days,
                self.analyze_feedback_days,
                self.sessions_days,
            )
        )

    def events_cutoff(self, days: int, now: datetime) -> datetime:
        """Midnight UTC before which events of ``days``' retention go: whole, closed days."""
        closed_before = now - timedelta(seconds=self.rollup_grace_s)
        return rollups.start_of(min(now - timedelta(days=days), closed_before).date())

    def events_horizon(self, now: datetime) -> datetime | None:
        """Before this (a midnight), events may be pruned (None: they never are): the
        later of the two events cutoffs."""
        kept = [d for d in (self.events_days, self.moderated_events_days) if d]
        return self.events_cutoff(min(kept), now) if kept else None


@dataclass
class Pruned:
    """What one run removed (or, dry, would remove) per table; ``finished`` when nothing
    older than the cutoffs is left, False when the deadline cut the run short."""

    rows: dict[str, int] = field(default_factory=dict)
    rolled_up_days: int = 0
    finished: bool = True

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n


class _Run:
    """One pruning run: the walks share the dry-run flag, the deadline and the tally."""

    def __init__(
        self,
        retention: Retention,
        dry_run: bool,
        deadline: float | None,
        between: Callable[[], object] | None = None,
    ) -> None:
        self.retention = retention
        self.dry_run = dry_run
        self.deadline = deadline
        self.between = between
        self.pruned = Pruned(rows={table: 0 for table in TABLES})

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def walk(
        self,
        model: Any,
        cutoff: datetime,
        where: list[Any],
        delete: Callable[[list[int]], dict[str, int]],
    ) -> bool:
        """Find ``model`` rows below the cutoff's first id matching ``where``, ``batch`` at a
        time, oldest first, and delete each batch in its own transaction; False when the
        deadline stopped it."""
        upper = first_id_at(model, model.created_at, cutoff)
        after = 0
        while upper is not None:
            ids = list(
                db.session.scalars(
                    sa.select(model.id)
                    .where(model.id > after, model.id < upper, *where)
                    .order_by(model.id)
                    .limit(self.retention.batch)
                )
            )
            if not ids:
                break
            after = ids[-1]
            counts = delete(ids)
            if self.dry_run:
                # Deleted and rolled back: a dry run counts exactly what a real one deletes.
                db.session.rollback()
            else:
                db.session.commit()
            for table, n in counts.items():
                self.pruned.add(table, n)
                if not self.dry_run:
                    metrics.PRUNED_ROWS.labels(table).inc(n)
            if self.between is not None:
                self.between()
            if self.out_of_time():
                return False
        db.session.rollback()  # end the last read: on SQLite it holds the write lock
        return True


def first_id_at(model: Any, column: Any, cutoff: datetime) -> int | None:
    """The lowest id whose row's ``column`` is at or after ``cutoff``, by bisection on the id
    (ids rise with time); the highest id + 1 when every row is older; None when none is."""

    def at(id_: int) -> tuple[int, datetime]:
        # The first row from ``id_`` on: ids have gaps where rows were deleted.
        return db.session.execute(
            sa.select(model.id, column).where(model.id >= id_).order_by(model.id).limit(1)
        ).one()

    bounds = sa.select(sa.func.min(model.id), sa.func.max(model.id))
    lowest, highest = db.session.execute(bounds).one()
    if lowest is None or at(lowest)[1] >= cutoff:
        return None
    if at(highest)[1] < cutoff:
        return highest + 1
    # The first row from ``low`` on is older than the cutoff, the first from ``high`` not.
    low, high = lowest, highest
    while high - low > 1:
        middle = (low + high) // 2
        if at(middle)[1] < cutoff:
            low = middle
        else:
            high = middle
    return at(high)[0]


def _moderated(event: Any) -> Any:
    """SQL: some event of ``event``'s comment was made by someone other than the policy."""
    other = aliased(ModerationEvent)
    return sa.exists().where(
        other.comment_id == event.comment_id,
        other.actor != "policy",
        other.from_status.is_not(None),
    )


def _site_models() -> list[int]:
    """Ids of each site's newest policy event that names a model (kept: see the docstring)."""
    event = ModerationEvent
    sites = db.session.scalars(sa.select(event.site_id).distinct()).all()
    kept = []
    for site_id in sites:
        newest = db.session.scalar(
            sa.select(event.id)
            .where(event.site_id == site_id, event.actor == "policy", event.model.is_not(None))
            .order_by(event.created_at.desc(), event.id.desc())
            .limit(1)
        )
        if newest is not None:
            kept.append(newest)
    return kept


def _delete_events(where: list[Any]) -> Callable[[list[int]], dict[str, int]]:
    # The conditions are checked again as the rows go: a moderator may act meanwhile.
    def delete(ids: list[int]) -> dict[str, int]:
        query = sa.delete(ModerationEvent).where(ModerationEvent.id.in_(ids), *where)
        return {"moderation_event": db.session.execute(query).rowcount}

    return delete


def _prune_events(run: _Run, now: datetime) -> bool:
    retention, event = run.retention, ModerationEvent
    horizon = retention.events_horizon(now)
    if horizon is None:
        return True
    if not run.dry_run:
        # Every day whose events may go is counted into the rollup first.
        run.pruned.rolled_up_days += rollups.fill(horizon)
    keep = _site_models()
    kept = [event.id.not_in(keep)] if keep else []
    if retention.events_days:
        cutoff = retention.events_cutoff(retention.events_days, now)
        where = [
            event.created_at < cutoff,
            sa.or_(event.from_status.is_(None), event.actor == "policy"),
            ~_moderated(event),
            *kept,
        ]
        if not run.walk(event, cutoff, where, _delete_events(where)):
            return False
    if retention.moderated_events_days:
        cutoff = retention.events_cutoff(retention.moderated_events_days, now)
        later = aliased(ModerationEvent)
        newest = ~sa.exists().where(later.comment_id == event.comment_id, later.id > event.id)
        # Walked by each history's newest event, so a history is counted and deleted once.
        where = [event.created_at < cutoff, newest, _moderated(event)]
        if not run.walk(event, cutoff, where, lambda ids: _delete_histories(ids, cutoff, kept)):
            return False
    return True


def _delete_histories(event_ids: list[int], cutoff: datetime, kept: list[Any]) -> dict[str, int]:
    """Delete the whole history of the comments of ``event_ids`` whose newest event is
    older than ``cutoff`` and that no busy bulk action touched."""
    event, other = ModerationEvent, aliased(ModerationEvent)
    comments = sa.select(event.comment_id).where(event.id.in_(event_ids)).scalar_subquery()
    busy = sa.select(BulkAction.id).where(BulkAction.status.in_(BUSY_BULK)).scalar_subquery()
    recent_or_busy = sa.exists().where(
        other.comment_id == event.comment_id,
        sa.or_(other.created_at >= cutoff, other.bulk_id.in_(busy)),
    )
    query = sa.delete(event).where(event.comment_id.in_(comments), ~recent_or_busy, *kept)
    return {"moderation_event": db.session.execute(query).rowcount}


def _prune_deliveries(run: _Run, now: datetime) -> bool:
    days = run.retention.deliveries_days
    if not days:
        return True
    cutoff, delivery = now - timedelta(days=days), WebhookDelivery
    recent_attempt = sa.exists().where(
        WebhookAttempt.delivery_id == delivery.id, WebhookAttempt.created_at >= cutoff
    )
    where = [
        delivery.status != DeliveryStatus.PENDING,
        delivery.created_at < cutoff,
        sa.or_(delivery.delivered_at.is_(None), delivery.delivered_at < cutoff),
        ~recent_attempt,
    ]

    def delete(ids: list[int]) -> dict[str, int]:
        # The deliveries that still qualify, then their attempts, then them.
        gone = list(db.session.scalars(sa.select(delivery.id).where(delivery.id.in_(ids), *where)))
        if not gone:
            return {}
        attempts = sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(gone))
        return {
            "webhook_attempt": db.session.execute(attempts).rowcount,
            "webhook_delivery": db.session.execute(
                sa.delete(delivery).where(delivery.id.in_(gone))
            ).rowcount,
        }

    return run.walk(delivery, cutoff, where, delete)


def _prune_simple(run: _Run, model: Any, days: int, now: datetime, where: Callable) -> bool:
    if not days:
        return True
    cutoff = now - timedelta(days=days)
    conditions = where(cutoff)

    def delete(ids: list[int]) -> dict[str, int]:
        query = sa.delete(model).where(model.id.in_(ids), *conditions)
        return {model.__tablename__: db.session.execute(query).rowcount}

    return run.walk(model, cutoff, conditions, delete)


TABLES = (
    "moderation_event",
    "webhook_delivery",
    "webhook_attempt",
    "analyze_feedback",
    "dashboard_session",
)


def prune(
    retention: Retention,
    *,
    dry_run: bool = False,
    deadline: float | None = None,
    now: datetime | None = None,
    between: Callable[[], object] | None = None,
) -> Pruned:
    """Delete every row past its retention, a batch at a time; stop at ``deadline``
    (``time.monotonic()``) when given, and call ``between`` after each batch's transaction.
    A dry run deletes nothing and counts what would go."""
    now = now or utcnow()
    run = _Run(retention, dry_run, deadline, between)
    session = DashboardSession
    steps = (
        lambda: _prune_events(run, now),
        lambda: _prune_deliveries(run, now),
        lambda: _prune_simple(
            run,
            AnalyzeFeedback,
            retention.analyze_feedback_days,
            now,
            lambda cutoff: [AnalyzeFeedback.created_at < cutoff],
        ),
        lambda: _prune_simple(
            run,
            session,
            retention.sessions_days,
            now,
            lambda cutoff: [
                session.created_at < cutoff,
                sa.or_(session.ended_at < cutoff, session.expires_at < cutoff),
            ],
        ),
    )
    for step in steps:
        if not step():
            run.pruned.finished = False
            break
    if any(run.pruned.rows.values()) and not dry_run:
        log.info("retention: pruned %s", run.pruned.rows)
    return run.pruned

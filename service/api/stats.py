"""Moderation statistics: volumes, queue sizes and ages, who decided, overrides, latencies."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service import rollups
from service.api.common import DateTimeIn, count_schema
from service.api.schemas import Counts
from service.auth import Role, require
from service.errors import abort
from service.extensions import db
from service.models import Comment, DayStatusCount, ModerationEvent, utcnow
from service.moderation import status_counts
from service.moderation.review import queue_counts
from service.moderation.states import CommentStatus
from service.rollups import DECIDED, is_policy
from service.score_key import literal

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/v1/stats",
    description="How much arrives, who decides it, how fast, and where moderators disagree.",
)
SECURITY = [{"bearerAuth": ["moderator"]}]  # the least role allowed (OpenAPI 3.1 roles)
DEFAULT_WINDOW = timedelta(days=30)
OVERRIDES = {
    ("approved", "rejected"): "policy_approved_moderator_rejected",
    ("rejected", "approved"): "policy_rejected_moderator_approved",
    ("held", "approved"): "policy_held_moderator_approved",
    ("held", "rejected"): "policy_held_moderator_rejected",
}


class StatsArgs(ma.Schema):
    since = DateTimeIn(metadata={"description": "Start (ISO 8601); default 30 days ago."})
    until = DateTimeIn(metadata={"description": "End, exclusive; default now."})

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "since" in data and "until" in data and data["since"] >= data["until"]:
            raise ma.ValidationError("Must be before until.", "since")


# The decisions _split counts, and their total.
Split = count_schema("Split", [*(status.value for status in DECIDED), "total"])


class ModeratorCount(ma.Schema):
    actor = ma.fields.String()
    decisions = ma.fields.Integer()


Overrides = count_schema("Overrides", OVERRIDES.values())


class Latency(ma.Schema):
    samples = ma.fields.Integer(metadata={"description": "Decisions read (the newest)."})
    median_s = ma.fields.Float(allow_none=True)
    p95_s = ma.fields.Float(allow_none=True, metadata={"description": "Nearest-rank."})


class Latencies(ma.Schema):
    policy = ma.fields.Nested(Latency)
    moderators = ma.fields.Nested(
        Latency, metadata={"description": "Submit to a comment's first moderator decision."}
    )


class ReportCounts(ma.Schema):
    received = ma.fields.Integer()
    resolved = ma.fields.Integer()


class LanguageCount(ma.Schema):
    language = ma.fields.String(
        allow_none=True,
        metadata={"description": "Read as (ISO 639-1 code); null: not scored yet."},
    )
    received = ma.fields.Integer()
    approved = ma.fields.Integer(metadata={"description": "Of those received: approved now."})
    held = ma.fields.Integer()
    rejected = ma.fields.Integer()
    pending = ma.fields.Integer()
    unsupported = ma.fields.Integer(
        metadata={"description": "Read by no scorer made for the language (unsupported_language)."}
    )


class StatsOut(ma.Schema):
    since = ma.fields.AwareDateTime()
    until = ma.fields.AwareDateTime()
    received = ma.fields.Integer(metadata={"description": "Comments submitted."})
    policy = ma.fields.Nested(
        Split, metadata={"description": "Decisions of the policy (on pending comments)."}
    )
    moderators = ma.fields.Nested(
        Split,
        metadata={"description": "Moderator decisions (bulk included; undos and requeues not)."},
    )
    by_moderator = ma.fields.List(ma.fields.Nested(ModeratorCount))
    overrides = ma.fields.Nested(
        Overrides,
        metadata={
            "description": "Moderator decisions that moved a comment away from the "
            "policy's decision of it, by the two decisions: the numbers that say whether "
            "the thresholds are right."
        },
    )
    latency = ma.fields.Nested(Latencies)
    reports = ma.fields.Nested(ReportCounts)
    queue = ma.fields.Nested(Counts, metadata={"description": "The queues now."})
    by_language = ma.fields.List(
        ma.fields.Nested(LanguageCount),
        metadata={"description": "Comments received in the window by language, most first."},
    )


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``; None when empty."""
    if not values:
        return None
    return values[max(1, math.ceil(q * len(values))) - 1]


def _split(rows: list[Any]) -> dict[str, int]:
    split = {status.value: 0 for status in DECIDED}
    split.update({status: count for status, count in rows})
    split["total"] = sum(split.values())
    return split


def _percentiles(seconds: Any) -> dict[str, Any]:
    """Median and nearest-rank p95 of the SELECT ``seconds`` (one column, ``seconds``):
    Postgres computes them (percentile_cont is the median's interpolation, percentile_disc
    the nearest rank)."""
    sample = seconds.subquery()
    count, median, p95 = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.percentile_cont(0.5).within_group(sample.c.seconds),
            sa.func.percentile_disc(0.95).within_group(sample.c.seconds),
        ).select_from(sample)
    ).one()
    return {
        "samples": count,
        "median_s": None if median is None else float(median),
        "p95_s": None if p95 is None else float(p95),
    }


def _summary(values: list[float]) -> dict[str, Any]:
    """The same in Python, where the database has no percentile aggregate (SQLite)."""
    values = sorted(values)
    return {
        "samples": len(values),
        "median_s": statistics.median(values) if values else None,
        "p95_s": percentile(values, 0.95),
    }


def _on_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _policy_latency(window: list[Any], sample_max: int) -> dict[str, Any]:
    """Submit-to-decision seconds of the policy's newest decisions in the window.

    The policy decides nearly every comment of an id range, so the sample's comments are
    read as that range of the primary key (bounding them by it changes no row).
    """
    event = ModerationEvent
    sample = (
        sa.select(event.comment_id, event.created_at.label("decided"))
        .where(*window, is_policy(event))
        .order_by(event.id.desc())
        .limit(sample_max)
        .cte("sample")
    )
    lowest = sa.select(sa.func.min(sample.c.comment_id)).scalar_subquery()
    highest = sa.select(sa.func.max(sample.c.comment_id)).scalar_subquery()

    def newest(*columns: Any) -> Any:
        return (
            sa.select(*columns)
            .select_from(sample)
            .join(Comment, Comment.id == sample.c.comment_id)
            .where(Comment.id >= lowest, Comment.id <= highest)
        )

    if _on_postgres():
        elapsed = sa.extract("epoch", sample.c.decided - Comment.created_at)
        return _percentiles(newest(sa.func.greatest(0.0, elapsed).label("seconds")))
    rows = db.session.execute(newest(sample.c.decided, Comment.created_at)).all()
    return _summary([max(0.0, (decided - created).total_seconds()) for decided, created in rows])


def _review_latency(window: list[Any], sample_max: int) -> dict[str, Any]:
    """Submit-to-first-moderator-decision seconds of the newest such decisions in the
    window: stored on the decision (``latency_s``), read from ix_event_site_first_review."""
    event = ModerationEvent
    seconds = (
        sa.select(event.latency_s.label("seconds"))
        .where(*window, event.latency_s.is_not(None))
        .order_by(event.created_at.desc())
        .limit(sample_max)
    )
    if _on_postgres():
        return _percentiles(seconds)
    return _summary(list(db.session.scalars(seconds)))


def _live_languages(
    site_id: int, since: datetime, until: datetime, *, pending_only: bool = False
) -> list[Any]:
    """(language, status, comments, unsupported) of the window counted from the comments:
    the covering index ix_comment_site_created_language (the pending ones alone:
    ix_comment_site_status_created)."""
    pending = [Comment.status == literal(CommentStatus.PENDING.value)] if pending_only else []
    return db.session.execute(
        sa.select(
            sa.func.coalesce(Comment.language, status_counts.NO_LANGUAGE),
            Comment.status,
            sa.func.count(),
            sa.func.count(sa.case((status_counts.unsupported_column(), 1))),
        )
        .where(
            Comment.site_id == site_id,
            *pending,
            Comment.created_at >= since,
            Comment.created_at < until,
        )
        .group_by(Comment.language, Comment.status)
    ).all()


def by_language(site_id: int, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Comments received in the window per language, with their statuses now.

    The window's whole UTC days come from the counts ``moderate()`` keeps per day
    (``status_counts``) and the live pending ones; its partial first and last days are
    counted from the comments.
    """
    first, end = rollups.whole_days(since, until, until)
    if first >= end:
        rows = _live_languages(site_id, since, until)
    else:
        counted = DayStatusCount
        rows = db.session.execute(
            sa.select(
                counted.language,
                counted.status,
                sa.func.sum(counted.comments),
                sa.func.sum(sa.case((counted.unsupported, counted.comments), else_=0)),
            )
            .where(counted.site_id == site_id, counted.day >= first, counted.day < end)
            .group_by(counted.language, counted.status)
        ).all()
        whole_since, whole_until = rollups.start_of(first), rollups.start_of(end)
        rows += _live_languages(site_id, whole_since, whole_until, pending_only=True)
        rows += _live_languages(site_id, since, whole_since)
        rows += _live_languages(site_id, whole_until, until)
    counts: dict[str | None, dict[str, Any]] = {}
    for key, status, n, unread in rows:
        language = key or None
        entry = counts.setdefault(
            language,
            {
                "language": language,
                "received": 0,
                **{s: 0 for s in ("approved", "held", "rejected", "pending")},
                "unsupported": 0,
            },
        )
        entry["received"] += int(n)
        entry["unsupported"] += int(unread)
        if status in entry:
            entry[status] += int(n)
    entries = [entry for entry in counts.values() if entry["received"]]
    return sorted(entries, key=lambda e: (-e["received"], e["language"] or ""))


def site_stats(
    site_id: int, since: datetime, until: datetime, sample_max: int, grace: float
) -> dict[str, Any]:
    """Every number of StatsOut for one site and window."""
    event = ModerationEvent
    # Whole closed days come from the daily rollups, the partial ends are counted live.
    counts = rollups.window(site_id, since, until, grace)
    if _on_postgres():
        # The best plan of each query below depends on the window's width (a day, a year).
        # psycopg prepares a statement run five times, and Postgres may then keep one
        # generic plan for every window: a 30-day plan ran a year's latency sample 20x
        # slower. Plan each with its own bounds, in this transaction only.
        db.session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    moved = counts["overrides"]
    overrides = {name: moved.get(f"{a}>{b}", 0) for (a, b), name in OVERRIDES.items()}
    window = [event.site_id == site_id, event.created_at >= since, event.created_at < until]
    moderators = sorted(counts["by_moderator"].items(), key=lambda item: (-item[1], item[0]))
    return {
        "since": since,
        "until": until,
        "received": counts["received"],
        "policy": _split(list(counts["policy"].items())),
        "moderators": _split(list(counts["moderators"].items())),
        "by_moderator": [{"actor": actor, "decisions": n} for actor, n in moderators],
        "overrides": overrides,
        "latency": {
            "policy": _policy_latency(window, sample_max),
            "moderators": _review_latency(window, sample_max),
        },
        "reports": {
            "received": counts["reports_received"],
            "resolved": counts["reports_resolved"],
        },
        "queue": queue_counts(site_id)[None],
        "by_language": by_language(site_id, since, until),
    }


@blp.route("")
class Stats(MethodView):
    decorators = [require(Role.MODERATOR)]

    @blp.doc(security=SECURITY)
    @blp.arguments(StatsArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, StatsOut)
    def get(self, args: dict):
        """Moderation numbers for a time window (default the last 30 days)."""
        until = args.get("until") or utcnow()
        since = args.get("since") or until - DEFAULT_WINDOW
        if since >= until:
            abort(
                422,
                "Invalid since: must be before until.",
                errors={"query": {"since": ["Must be before until."]}},
            )
        cfg = current_app.config
        return site_stats(
            g.site.id, since, until, cfg["STATS_SAMPLE_MAX"], cfg["STATS_ROLLUP_GRACE_S"]
        )

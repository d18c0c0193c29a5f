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
from sqlalchemy.orm import aliased

from service import rollups
from service.api.common import DateTimeIn, count_schema
from service.api.schemas import Counts
from service.auth import Role, require
from service.errors import abort
from service.extensions import db
from service.models import Comment, ModerationEvent, utcnow
from service.moderation.review import queue_counts
from service.rollups import DECIDED, is_human, is_policy

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
            "description": "Comments a moderator moved away from the policy's decision: "
            "the numbers that say whether the thresholds are right."
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


def _latency(where: list[Any], sample_max: int, *, dense: bool) -> dict[str, Any]:
    """Median and nearest-rank p95 of submit-to-decision seconds of the newest decisions.

    Postgres computes them (percentile_cont is the median's interpolation,
    percentile_disc the nearest rank); SQLite has no percentile aggregate, so there the
    sample's seconds come to Python. ``dense``: the sample's comments are nearly every
    comment of their id range (the policy decides each one), so the join reads that
    range of the primary key; a sparse sample (moderators decide a few percent) looks
    each comment up instead, as the range would span the whole window's comments.
    """
    sample = (
        sa.select(ModerationEvent.comment_id, ModerationEvent.created_at.label("decided"))
        .where(*where)
        .order_by(ModerationEvent.id.desc())
        .limit(sample_max)
        .cte("sample")
    )
    newest = sa.select(sample.c.decided, Comment.created_at.label("created")).join(
        Comment, Comment.id == sample.c.comment_id
    )
    if dense:
        # Bounding the comments by the sample's own id range changes no row.
        lowest = sa.select(sa.func.min(sample.c.comment_id)).scalar_subquery()
        highest = sa.select(sa.func.max(sample.c.comment_id)).scalar_subquery()
        newest = newest.where(Comment.id >= lowest, Comment.id <= highest)
    if db.session.get_bind().dialect.name == "postgresql":
        sample = newest.subquery()
        seconds = sa.func.greatest(0.0, sa.extract("epoch", sample.c.decided - sample.c.created))
        count, median, p95 = db.session.execute(
            sa.select(
                sa.func.count(),
                sa.func.percentile_cont(0.5).within_group(seconds),
                sa.func.percentile_disc(0.95).within_group(seconds),
            ).select_from(sample)
        ).one()
        return {
            "samples": count,
            "median_s": None if median is None else float(median),
            "p95_s": None if p95 is None else float(p95),
        }
    rows = db.session.execute(newest).all()
    values = sorted(max(0.0, (decided - created).total_seconds()) for decided, created in rows)
    return {
        "samples": len(values),
        "median_s": statistics.median(values) if values else None,
        "p95_s": percentile(values, 0.95),
    }


def by_language(site_id: int, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Comments received in the window per language, with their statuses now."""
    unsupported = Comment.reason_codes.like("% unsupported\\_language %", escape="\\")
    rows = db.session.execute(
        sa.select(
            Comment.language,
            Comment.status,
            sa.func.count(),
            sa.func.count(sa.case((unsupported, 1))),
        )
        .where(
            Comment.site_id == site_id,
            Comment.created_at >= since,
            Comment.created_at < until,
        )
        .group_by(Comment.language, Comment.status)
    ).all()
    counts: dict[str | None, dict[str, Any]] = {}
    for language, status, n, unread in rows:
        entry = counts.setdefault(
            language,
            {
                "language": language,
                "received": 0,
                **{s: 0 for s in ("approved", "held", "rejected", "pending")},
                "unsupported": 0,
            },
        )
        entry["received"] += n
        entry["unsupported"] += unread
        if status in entry:
            entry[status] += n
    return sorted(counts.values(), key=lambda e: (-e["received"], e["language"] or ""))


def site_stats(
    site_id: int, since: datetime, until: datetime, sample_max: int, grace: float
) -> dict[str, Any]:
    """Every number of StatsOut for one site and window."""
    event = ModerationEvent
    # Whole closed days come from the daily rollups, the partial ends are counted live.
    counts = rollups.window(site_id, since, until, grace)
    policy, human = aliased(ModerationEvent), aliased(ModerationEvent)
    override_rows = db.session.execute(
        sa.select(policy.to_status, human.to_status, sa.func.count(sa.distinct(policy.comment_id)))
        .join(human, sa.and_(human.comment_id == policy.comment_id, human.id > policy.id))
        .where(
            policy.site_id == site_id,
            is_policy(policy),
            human.site_id == site_id,
            is_human(human),
            human.created_at >= since,
            human.created_at < until,
        )
        .group_by(policy.to_status, human.to_status)
    ).all()
    overrides = dict.fromkeys(OVERRIDES.values(), 0)
    for before, after, n in override_rows:
        if (before, after) in OVERRIDES:
            overrides[OVERRIDES[before, after]] = n
    earlier = aliased(ModerationEvent)
    first_human = ~sa.exists().where(
        earlier.comment_id == event.comment_id, earlier.id < event.id, is_human(earlier)
    )
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
            "policy": _latency([*window, is_policy(event)], sample_max, dense=True),
            "moderators": _latency(
                [*window, is_human(event), first_human], sample_max, dense=False
            ),
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

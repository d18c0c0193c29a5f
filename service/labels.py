"""Labelled comments for calibration: what moderators decided about what the site's model scored.

A label is one comment's scores and a verdict: ``rejected`` True (not acceptable) or False
(acceptable). Labels come from sources, each a function of (site, model, window) that
answers rows of (comment id, scores, rejected); ``SOURCES`` lists them and ``gather`` joins
them, a later source's verdict on a comment replacing an earlier one's. Perspective-style
feedback (``comments:suggestscore``) becomes one more function there once its table exists.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import redis
import sqlalchemy as sa
from flask import current_app

from service.extensions import db
from service.models import Comment, ModerationEvent
from service.moderation.states import CommentStatus
from service.stream import live_workers

log = logging.getLogger(__name__)

# Moves a moderator makes about someone or something else than the text: a reader report
# sending a comment back to review, an author ban rejecting all their comments.
NOT_ABOUT_THE_TEXT = ("reported", "author_banned")
VERDICTS = (CommentStatus.APPROVED, CommentStatus.REJECTED, CommentStatus.HELD)


@dataclass(frozen=True)
class Window:
    """Which labels count: the site, the model that scored the comments, decision times."""

    site_id: int
    model: str
    since: datetime
    until: datetime


Row = tuple[int, dict[str, float], bool]


def current_model(site_id: int) -> str | None:
    """The scorer the site runs now, as ``name@version``.

    The model of the newest comment the policy decided for this site (what really
    scored its comments); for a site with none yet, the model a live worker reports in
    its heartbeat; else None (the configured ``SCORER`` is only a spec, not a version).
    """
    newest = db.session.scalar(
        sa.select(ModerationEvent.model)
        .where(
            ModerationEvent.site_id == site_id,
            ModerationEvent.actor == "policy",
            ModerationEvent.model.is_not(None),
        )
        .order_by(ModerationEvent.created_at.desc(), ModerationEvent.id.desc())
        .limit(1)
    )
    if newest:
        return newest
    with contextlib.suppress(redis.RedisError):
        models = sorted({w.get("model") for w in live_workers() if w.get("model")})
        if models:
            return models[0]
    return None


def scorer_of(site_id: int) -> str:
    """What decides a site's default thresholds: its current model, else the configured spec."""
    return current_model(site_id) or current_app.config["SCORER"]


def moderator_decisions(window: Window, limit: int) -> Iterable[Row]:
    """The newest moderator decision per comment in the window, on comments the model
    scored, the ``limit`` newest; a moderator hold is no verdict, so a comment whose newest
    decision is a hold is left out."""
    ranked = (
        sa.select(
            ModerationEvent.comment_id,
            ModerationEvent.id,
            ModerationEvent.to_status,
            sa.func.row_number()
            .over(partition_by=ModerationEvent.comment_id, order_by=ModerationEvent.id.desc())
            .label("rank"),
        )
        .where(
            ModerationEvent.site_id == window.site_id,
            ModerationEvent.actor != "policy",
            ModerationEvent.to_status.in_(VERDICTS),
            sa.or_(
                ModerationEvent.reason_code.is_(None),
                ModerationEvent.reason_code.not_in(NOT_ABOUT_THE_TEXT),
            ),
            ModerationEvent.created_at >= window.since,
            ModerationEvent.created_at < window.until,
        )
        .subquery()
    )
    rows = db.session.execute(
        sa.select(Comment.id, Comment.scores, ranked.c.to_status)
        .join(ranked, ranked.c.comment_id == Comment.id)
        .where(
            ranked.c.rank == 1,
            ranked.c.to_status != CommentStatus.HELD,
            Comment.site_id == window.site_id,
            Comment.model == window.model,
            Comment.scores.is_not(None),
        )
        .order_by(ranked.c.id.desc())
        .limit(limit)
    )
    for comment_id, scores, to_status in rows:
        yield comment_id, scores, to_status == CommentStatus.REJECTED


# Each source of labels, oldest evidence first: a later source's verdict wins.
SOURCES: tuple[tuple[str, Callable[[Window, int], Iterable[Row]]], ...] = (
    ("moderator", moderator_decisions),
)


def gather(
    window: Window, limit: int
) -> tuple[dict[int, tuple[dict[str, float], bool]], dict[str, int]]:
    """The labels in the window by comment id (at most ``limit`` per source, the newest),
    and how many each source gave."""
    labelled: dict[int, tuple[dict[str, float], bool]] = {}
    counts: dict[str, int] = {}
    for name, source in SOURCES:
        counts[name] = 0
        for comment_id, scores, rejected in source(window, limit):
            if isinstance(scores, dict) and scores:
                labelled[comment_id] = (scores, rejected)
                counts[name] += 1
    db.session.rollback()  # end the read: on SQLite it would hold the database
    return labelled, counts

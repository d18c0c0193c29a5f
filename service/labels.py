"""Labelled comments for calibration: what moderators decided about what the site's model scored.

A label is one comment's scores and a verdict: rejected (not acceptable) or not
(acceptable). Labels come from sources, each a function of (window, labels, limit) that
answers rows of (comment id, rejected 1/0, a score per label); ``SOURCES`` lists them and
``gather`` joins them into columns, a later source's verdict on a comment replacing an
earlier one's. Perspective-style feedback (``comments:suggestscore``) becomes one more
function there once its table exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import redis
import sqlalchemy as sa
from flask import current_app

from service.extensions import db
from service.models import Comment, ModerationEvent
from service.moderation.states import CommentStatus
from service.stream import live_workers

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


# A source's rows: (comment id, 1 if rejected else 0, one score per label; -1 where unscored).
Row = tuple[Any, ...]
MISSING = -1.0


@dataclass
class Labelled:
    """The labels of a window as columns: comment ids, scores per label (NaN where the
    model gave none), verdicts, and how many labels each source gave."""

    ids: np.ndarray
    scores: dict[str, np.ndarray]
    rejected: np.ndarray
    sources: dict[str, int]

    def __len__(self) -> int:
        return len(self.ids)

    def verdicts(self) -> dict[int, bool]:
        """Comment id → rejected."""
        return dict(zip(self.ids.tolist(), self.rejected.tolist(), strict=True))


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


def model_labels(window: Window) -> list[str]:
    """The labels the model scores, read from the comment of the site's newest policy
    decision by that model (the site-and-time index of events finds it at once; ordering
    the site's comments by id would sort them all)."""
    scores = db.session.scalar(
        sa.select(Comment.scores)
        .join(ModerationEvent, ModerationEvent.comment_id == Comment.id)
        .where(
            ModerationEvent.site_id == window.site_id,
            ModerationEvent.actor == "policy",
            ModerationEvent.model == window.model,
            Comment.scores.is_not(None),
        )
        .order_by(ModerationEvent.created_at.desc(), ModerationEvent.id.desc())
        .limit(1)
    )
    return list(scores) if isinstance(scores, dict) else []


def _score(label: str) -> Any:
    # Extracted in SQL (json_extract / ->>): no JSON decoding per row in Python.
    return sa.func.coalesce(Comment.scores[label].as_float(), MISSING)


def moderator_decisions(window: Window, labels: list[str], limit: int) -> Iterable[Row]:
    """The newest moderator decision per comment in the window, on comments the model
    scored, of the ``limit`` newest decisions; a moderator hold is no verdict, so a
    comment whose newest decision is a hold is left out.

    The ``limit`` newest events are taken first (the site-and-time index reads them
    newest first and stops), and only those are ranked per comment: the query's cost
    follows the limit, not how many decisions the site has ever had. A comment's newest
    decision is among them whenever any of its decisions is, so the answer is the same
    as ranking them all and keeping the newest ``limit``.
    """
    newest = (
        sa.select(ModerationEvent.id, ModerationEvent.comment_id, ModerationEvent.to_status)
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
        .order_by(ModerationEvent.created_at.desc(), ModerationEvent.id.desc())
        .limit(limit)
        .subquery()
    )
    ranked = sa.select(
        newest,
        sa.func.row_number()
        .over(partition_by=newest.c.comment_id, order_by=newest.c.id.desc())
        .label("rank"),
    ).subquery()
    rejected = sa.case((ranked.c.to_status == CommentStatus.REJECTED, 1), else_=0)
    return db.session.connection().execute(
        sa.select(Comment.id, rejected, *(_score(label) for label in labels))
        .join(ranked, ranked.c.comment_id == Comment.id)
        .where(
            ranked.c.rank == 1,
            ranked.c.to_status != CommentStatus.HELD,
            Comment.site_id == window.site_id,
            Comment.model == window.model,
            Comment.scores.is_not(None),
        )
        .order_by(ranked.c.id.desc())
    )


# Each source of labels, oldest evidence first: a later source's verdict on a comment wins.
SOURCES: tuple[tuple[str, Callable[[Window, list[str], int], Iterable[Row]]], ...] = (
    ("moderator", moderator_decisions),
)


def gather(window: Window, limit: int) -> Labelled:
    """The labels in the window (at most ``limit`` per source, the newest), as columns."""
    labels = model_labels(window)
    parts, names = [], []
    for index, (_, source) in enumerate(SOURCES):
        # Plain tuples first: numpy reads a list of Row objects a hundred times slower.
        rows = np.array([tuple(row) for row in source(window, labels, limit)], dtype=float)
        parts.append(rows.reshape(-1, 2 + len(labels)))
        names.append(np.full(len(rows), index))
    db.session.rollback()  # end the read: on SQLite it would hold the database
    rows = np.concatenate(parts) if parts else np.empty((0, 2 + len(labels)))
    origin = np.concatenate(names) if names else np.empty(0, dtype=int)
    # The last row of each comment wins: unique over the reversed ids finds it.
    _, last = np.unique(rows[::-1, 0], return_index=True)
    keep = np.sort(len(rows) - 1 - last)
    rows, origin = rows[keep], origin[keep]
    scores = {}
    for i, label in enumerate(labels):
        column = rows[:, 2 + i]
        scores[label] = np.where(column == MISSING, np.nan, column)
    return Labelled(
        ids=rows[:, 0].astype(np.int64),
        scores=scores,
        rejected=rows[:, 1] == 1,
        sources={name: int((origin == i).sum()) for i, (name, _) in enumerate(SOURCES)},
    )

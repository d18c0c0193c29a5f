"""What moderators review: the queue's conditions, its counts, and items as they see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.extensions import db
from service.models import Article, Author, Comment, Report, utcnow
from service.models.content import OPEN_REPORTED
from service.moderation.authors import status_of
from service.moderation.states import CommentStatus
from service.overlay import Overlay
from service.score_key import ScoreKey, literal, literals


def conditions(site_id: int, filters: dict[str, Any]) -> list[Any]:
    """SQL conditions for a QueueFilter's fields, scoped to ``site_id``.

    The status is rendered into the SQL (it is one of CommentStatus), so the partial
    indexes over held comments match under generic plans too.
    """
    where = [Comment.site_id == site_id, Comment.status == literal(filters["status"])]
    if "reported" in filters:
        open_report = sa.exists().where(
            Report.comment_id == Comment.id, Report.resolved_at.is_(None)
        )
        where.append(open_report if filters["reported"] else ~open_report)
    if "article" in filters:
        article_id = sa.select(Article.id).where(
            Article.site_id == site_id, Article.ref == filters["article"]
        )
        where.append(Comment.article_id == article_id.correlate(None).scalar_subquery())
    if "author" in filters:
        author_id = sa.select(Author.id).where(
            Author.site_id == site_id, Author.ref == filters["author"]
        )
        where.append(Comment.author_id == author_id.correlate(None).scalar_subquery())
    if "reason" in filters:
        code = filters["reason"].replace("_", "\\_")  # "_" is LIKE's any-character
        where.append(Comment.reason_codes.like(f"% {code} %", escape="\\"))
    if "language" in filters:
        where.append(Comment.language == filters["language"])
    # The sort key (-1 for no score) so the score indexes serve filters too; scores are
    # probabilities, so ">= 0" keeps unscored comments out as a NULL comparison would.
    score = ScoreKey(filters.get("label"))
    if "min_score" in filters:
        where.append(score >= filters["min_score"])
    if "max_score" in filters:
        where.append(sa.and_(score >= 0, score <= filters["max_score"]))
    if "since" in filters:
        where.append(Comment.created_at >= filters["since"])
    if "until" in filters:
        where.append(Comment.created_at < filters["until"])
    return where


def open_reports(comment_ids: list[int]) -> dict[int, list[Report]]:
    """Unresolved reports of ``comment_ids``, oldest first, by comment id."""
    by_comment: dict[int, list[Report]] = {cid: [] for cid in comment_ids}
    if comment_ids:
        rows = db.session.scalars(
            sa.select(Report)
            .where(Report.comment_id.in_(comment_ids), Report.resolved_at.is_(None))
            .order_by(Report.id)
        )
        for report in rows:
            by_comment[report.comment_id].append(report)
    return by_comment


def render_items(comments: list[Comment]) -> list[Overlay]:
    """Comments for QueueItem to dump, with their open reports read in one query."""
    reports = open_reports([comment.id for comment in comments])
    now = utcnow()
    return [
        Overlay(
            comment,
            author=Overlay(
                comment.author, id=comment.author.ref, status=status_of(comment.author, now)
            ),
            reasons=comment.reasons or [],
            reports=reports[comment.id],
        )
        for comment in comments
    ]


def _ages(counts: dict[str, Any], now: datetime) -> dict[str, Any]:
    for status in ("pending", "held"):
        oldest = counts.get(f"oldest_{status}_at")
        counts[f"oldest_{status}_s"] = None if oldest is None else (now - oldest).total_seconds()
    return counts


def queue_counts(
    site_id: int, *, article_id: int | None = None, by_article: bool = False
) -> dict[Any, dict[str, Any]]:
    """Held, pending and reported counts (and oldest ages): the site's under key None.

    With ``by_article``, also one entry per article id that has work waiting.
    """
    scope = [Comment.site_id == site_id]
    if article_id is not None:
        scope.append(Comment.article_id == article_id)
    group = [Comment.article_id] if by_article else []
    # Literal statuses: the partial index ix_comment_waiting_article then serves the counts.
    waiting = db.session.execute(
        sa.select(*group, Comment.status, sa.func.count(), sa.func.min(Comment.created_at))
        .where(*scope, Comment.status.in_(literals(CommentStatus.HELD, CommentStatus.PENDING)))
        .group_by(*group, Comment.status)
    ).all()
    # Approved or held comments with open reports: the partial index ix_comment_open_reported
    # alone (its condition rendered as written, so it matches under generic plans too).
    reported = db.session.execute(
        sa.select(*group, sa.func.count()).where(*scope, sa.text(OPEN_REPORTED)).group_by(*group)
    ).all()
    counts: dict[Any, dict[str, Any]] = {}

    def entry(key: Any) -> dict[str, Any]:
        return counts.setdefault(
            key,
            {
                "held": 0,
                "reported": 0,
                "pending": 0,
                "oldest_pending_at": None,
                "oldest_held_at": None,
            },
        )

    for row in waiting:
        article, (status, count, oldest) = (row[0], row[1:]) if by_article else (None, row)
        for key in {None, article}:
            totals = entry(key)
            totals[status] += count
            previous = totals.get(f"oldest_{status}_at")
            if previous is None or oldest < previous:
                totals[f"oldest_{status}_at"] = oldest
    for row in reported:
        article, count = (row[0], row[1]) if by_article else (None, row[0])
        for key in {None, article}:
            entry(key)["reported"] += count
    entry(None)
    now = utcnow()
    return {key: _ages(value, now) for key, value in counts.items()}

"""What moderators review: the queue's conditions, its counts, and items as they see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.extensions import db
from service.models import Article, ArticleStatusCount, Author, Comment, Report, utcnow
from service.moderation import status_counts
from service.moderation.authors import status_of
from service.moderation.states import CommentStatus
from service.overlay import Overlay
from service.score_key import ScoreKey, literal


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
    site_id: int, *, article_id: int | None = None, by_article: bool = False, limit: int = 50
) -> dict[Any, dict[str, Any]]:
    """Held, pending and reported counts (and oldest ages): the site's under key None.

    With ``by_article``, also the ``limit`` articles with the most work waiting (most
    held, then most reported), in that order. Held and reported comments are counted
    from the counts ``moderate()`` and the reports keep per article (``status_counts``),
    pending ones live from their index (a small set but for a backlog); each oldest age
    is one probe of the waiting comments' index.
    """
    counted = ArticleStatusCount
    scope = [Comment.site_id == site_id]
    kept_scope = [counted.site_id == site_id, counted.status.in_(status_counts.REPORTABLE)]
    if article_id is not None:
        scope.append(Comment.article_id == article_id)
        kept_scope.append(counted.article_id == article_id)
    held = sa.func.coalesce(
        sa.func.sum(sa.case((counted.status == CommentStatus.HELD.value, counted.comments))), 0
    )
    reported = sa.func.coalesce(sa.func.sum(counted.reported), 0)
    pending = Comment.status == literal(CommentStatus.PENDING.value)
    # Everything summed in SQL: the site's kept rows are two per article (10,000 articles
    # at ten million comments), too many to bring into Python on every call.
    site_held, site_reported = db.session.execute(
        sa.select(held, reported).where(*kept_scope)
    ).one()
    oldest = (
        db.session.execute(
            sa.select(
                sa.select(sa.func.count())
                .where(*scope, pending)
                .scalar_subquery()
                .label("pending"),
                *_first_arrivals(scope),
            )
        )
        .one()
        ._asdict()
    )
    site = {"held": int(site_held), "reported": int(site_reported), **oldest}
    counts: dict[Any, dict[str, Any]] = {None: site}
    if by_article:
        kept = (
            sa.select(counted.article_id, held.label("held"), reported.label("reported"))
            .where(*kept_scope)
            .group_by(counted.article_id)
            .subquery()
        )
        waiting = (
            sa.select(Comment.article_id, sa.func.count().label("pending"))
            .where(*scope, pending)
            .group_by(Comment.article_id)
            .subquery()
        )
        article = sa.func.coalesce(kept.c.article_id, waiting.c.article_id)
        numbers = [
            sa.func.coalesce(c, 0) for c in (kept.c.held, kept.c.reported, waiting.c.pending)
        ]
        busiest = db.session.execute(
            sa.select(article, *numbers)
            .select_from(kept.join(waiting, kept.c.article_id == waiting.c.article_id, full=True))
            .where(sa.or_(*(n > 0 for n in numbers)))
            # Most held first, then most reported.
            .order_by(numbers[0].desc(), numbers[1].desc(), article)
            .limit(limit)
        ).all()
        of_article = [Comment.site_id == site_id, Comment.article_id == Article.id]
        arrivals = db.session.execute(
            sa.select(Article.id, *_first_arrivals(of_article)).where(
                Article.id.in_([row[0] for row in busiest])
            )
        ).all()
        firsts = {row[0]: row._asdict() for row in arrivals}
        for busy, n_held, n_reported, n_pending in busiest:
            first = firsts[busy]
            counts[busy] = {
                "held": int(n_held),
                "reported": int(n_reported),
                "pending": int(n_pending),
                **{k: first[k] for k in first if k.startswith("oldest_")},
            }
    now = utcnow()
    return {key: _ages(value, now) for key, value in counts.items()}


def _first_arrivals(scope: list[Any]) -> list[Any]:
    """When the oldest pending and the oldest held comment of ``scope`` arrived: a min()
    each, which Postgres and SQLite answer with one probe of an index by status and time."""
    return [
        sa.select(sa.func.min(Comment.created_at))
        .where(*scope, Comment.status == literal(status.value))
        .scalar_subquery()
        .label(f"oldest_{status.value}_at")
        for status in (CommentStatus.PENDING, CommentStatus.HELD)
    ]

"""Comments in the states moderators see, made fast (direct inserts, moves as the worker makes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.extensions import db, get_or_create
from service.models import Article, Author, Comment, ModerationEvent, utcnow
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus

MODEL = "test-model@1"


def make_comments(
    site_id: int,
    count: int = 1,
    *,
    article: str = "article-1",
    author: str = "reader-1",
    body: str = "Comment {i}",
) -> list[int]:
    """Insert ``count`` pending comments of one article and author; their ids, oldest first."""
    article_row = get_or_create(Article, site_id=site_id, ref=article)
    author_row = get_or_create(Author, site_id=site_id, ref=author, defaults={"name": author})
    comments = [
        Comment(
            site_id=site_id,
            article=article_row,
            author=author_row,
            body=body.format(i=i),
            status=CommentStatus.PENDING,
        )
        for i in range(count)
    ]
    db.session.add_all(comments)
    db.session.commit()
    return [comment.id for comment in comments]


def policy_decides(
    ids: list[int],
    status: CommentStatus | str,
    *,
    scores: dict[str, float] | None = None,
    reasons: list[dict[str, Any]] | None = None,
) -> None:
    """Decide pending comments as the scoring worker does (actor ``policy``)."""
    status = CommentStatus(status)
    if reasons is None:
        reasons = {
            CommentStatus.HELD: [{"code": "toxicity", "label": "toxicity", "score": 0.7}],
            CommentStatus.REJECTED: [{"code": "banned_word", "word": "spamword"}],
        }.get(status, [])
    comments = db.session.scalars(sa.select(Comment).where(Comment.id.in_(ids)))
    for comment in comments:
        comment.model = MODEL
        comment.scored_at = utcnow()
        moderate(
            comment,
            status,
            actor="policy",
            scores=scores if scores is not None else {"toxicity": 0.1, "insult": 0.05},
            reasons=reasons,
            model=MODEL,
            reason_code=reasons[0]["code"] if reasons else None,
        )
    db.session.commit()


def moderator_moves(ids: list[int], status: CommentStatus | str, actor: str = "mod") -> None:
    """Move comments as a moderator would (no scores)."""
    for comment in db.session.scalars(sa.select(Comment).where(Comment.id.in_(ids))):
        moderate(comment, CommentStatus(status), actor=actor)
    db.session.commit()


def statuses(ids: list[int]) -> dict[int, str]:
    """Comment id → current status, read fresh."""
    db.session.expire_all()
    rows = db.session.execute(sa.select(Comment.id, Comment.status).where(Comment.id.in_(ids)))
    return dict(rows.all())


def events(comment_id: int | None = None) -> list[ModerationEvent]:
    """Moderation events (of one comment, or all), oldest first."""
    query = sa.select(ModerationEvent).order_by(ModerationEvent.id)
    if comment_id is not None:
        query = query.where(ModerationEvent.comment_id == comment_id)
    return list(db.session.scalars(query))


def set_created(comment_id: int, when: datetime) -> None:
    """Backdate a comment's submission time."""
    comment = db.session.get(Comment, comment_id)
    comment.created_at = when
    db.session.commit()

"""Policy simulation: replay stored comments through the pure policy with proposed settings.

Both sides are replayed, the site's settings now and the proposed ones, on the same inputs
(stored scores and body, the author's status and approved count now, the article's mode),
so a move is what the edit changes and nothing else: an unchanged edit moves nothing. It
reads and never writes.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.extensions import db
from service.models import Article, Author, Comment, utcnow
from service.moderation.authors import effective_status
from service.moderation.calibration import Rules, agreement
from service.moderation.policy import PolicySettings, decide
from service.moderation.states import CommentStatus, Mode

OUTCOMES = (CommentStatus.APPROVED, CommentStatus.HELD, CommentStatus.REJECTED)


def replayable(site_id: int, model: str, since: datetime, until: datetime, limit: int) -> list:
    """The newest ``limit`` comments created in the window that ``model`` scored, with what
    the policy reads about their author and article, in one query."""
    return db.session.execute(
        sa.select(
            Comment.id,
            Comment.body,
            Comment.scores,
            Author.status,
            Author.status_until,
            Author.approved_count,
            Article.mode,
        )
        .join(Author, Author.id == Comment.author_id)
        .join(Article, Article.id == Comment.article_id)
        .where(
            Comment.site_id == site_id,
            Comment.model == model,
            Comment.scores.is_not(None),
            Comment.status != CommentStatus.DELETED,
            Comment.created_at >= since,
            Comment.created_at < until,
        )
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(limit)
    ).all()


def simulate(
    rows: list,
    current: PolicySettings,
    proposed: PolicySettings,
    verdicts: dict[int, bool],
    *,
    sample: int,
    rules: Rules,
) -> dict[str, Any]:
    """The move matrix, each move's count, moderators' verdicts on it and sample ids, and
    how each side agrees with moderators (``verdicts``: comment id → rejected)."""
    now = utcnow()
    matrix = {str(a): dict.fromkeys(map(str, OUTCOMES), 0) for a in OUTCOMES}
    moves: dict[tuple[str, str], dict[str, Any]] = {}
    before: dict[int, bool] = {}
    after: dict[int, bool] = {}
    for comment_id, body, scores, status, status_until, approved_count, article_mode in rows:
        if not isinstance(scores, dict):
            continue
        inputs = (
            scores,
            body,
            effective_status(status, status_until, now),
            approved_count,
        )
        mode = Mode(article_mode) if article_mode else None
        old = str(decide(*inputs, current, mode).status)
        new = str(decide(*inputs, proposed, mode).status)
        matrix[old][new] += 1
        if comment_id in verdicts:
            before[comment_id] = old != CommentStatus.APPROVED
            after[comment_id] = new != CommentStatus.APPROVED
        if old == new:
            continue
        move = moves.setdefault(
            (old, new), {"from": old, "to": new, "count": 0, "verdicts": Counter(), "sample": []}
        )
        move["count"] += 1
        if comment_id in verdicts:
            move["verdicts"]["rejected" if verdicts[comment_id] else "approved"] += 1
        if len(move["sample"]) < sample:
            move["sample"].append(comment_id)
    labelled = list(before)
    truth = [verdicts[i] for i in labelled]
    return {
        "replayed": sum(sum(row.values()) for row in matrix.values()),
        "matrix": matrix,
        "moves": [
            {
                "from": move["from"],
                "to": move["to"],
                "count": move["count"],
                "moderator_rejected": move["verdicts"]["rejected"],
                "moderator_approved": move["verdicts"]["approved"],
                "sample_ids": move["sample"],
            }
            for move in sorted(moves.values(), key=lambda m: -m["count"])
        ],
        "agreement": {
            "current": agreement([before[i] for i in labelled], truth, rules),
            "proposed": agreement([after[i] for i in labelled], truth, rules),
        },
    }

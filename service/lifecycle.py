"""The one place a comment's status changes: checks the move, updates counters, writes the event."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import metrics, outbox
from service.extensions import db
from service.models import Comment, ModerationEvent, utcnow
from service.moderation.states import CommentStatus, can_move


class IllegalMove(Exception):
    """The state machine does not allow this move."""

    def __init__(self, comment: Comment, to_status: CommentStatus) -> None:
        super().__init__(f"comment {comment.id}: {comment.status} -> {to_status} is not allowed")
        self.current_status = CommentStatus(comment.status)
        self.to_status = to_status


def record_created(comment: Any, actor: str) -> None:
    """Audit the arrival of a new (pending) comment and emit ``comment.created``.

    ``comment`` is the inserted row: a Comment, or anything with its attributes (the
    submission inserts with Core and passes what it inserted).
    """
    db.session.connection().execute(
        sa.insert(ModerationEvent),
        {
            "site_id": comment.site_id,
            "comment_id": comment.id,
            "from_status": None,
            "to_status": CommentStatus.PENDING,
            "actor": actor,
        },
    )
    outbox.comment_event(comment, previous_status=None, actor=actor)


def move(
    comment: Comment,
    to_status: CommentStatus,
    *,
    actor: str,
    reason_code: str | None = None,
    note: str | None = None,
    reasons: list[dict[str, Any]] | None = None,
    scores: dict[str, float] | None = None,
    model: str | None = None,
    bulk_id: str | None = None,
) -> ModerationEvent:
    """Move ``comment`` to ``to_status`` in the caller's transaction and audit it.

    Raises IllegalMove when DESIGN.md's state machine forbids the move.
    """
    from_status = CommentStatus(comment.status)
    if not can_move(from_status, to_status):
        raise IllegalMove(comment, to_status)
    _count(comment, from_status, -1)
    comment.status = to_status
    _count(comment, to_status, +1)
    comment.decided_at = utcnow()
    comment.decided_by = actor
    if reasons is not None:
        comment.reasons = reasons
        codes = dict.fromkeys(reason["code"] for reason in reasons)
        comment.reason_codes = f" {' '.join(codes)} " if codes else None
    if scores is not None:
        comment.scores = scores
        comment.max_score = max(scores.values(), default=None)
    event = ModerationEvent(
        site_id=comment.site_id,
        comment_id=comment.id,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        reason_code=reason_code,
        note=note,
        reasons=reasons,
        scores=scores,
        model=model,
        bulk_id=bulk_id,
    )
    db.session.add(event)
    outbox.comment_event(comment, previous_status=from_status, actor=actor, bulk_id=bulk_id)
    kind = "policy" if actor == "policy" else "moderator"
    db.session.info.setdefault(_DECIDED, []).append((str(to_status), kind))
    return event


_DECIDED = "civility.decisions"


@sa.event.listens_for(Session, "after_commit")
def _count_decisions(session: Session) -> None:
    # Counted once committed: a change rolled back never happened.
    for outcome, kind in session.info.pop(_DECIDED, ()):
        metrics.DECISIONS.labels(outcome, kind).inc()


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_decisions(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_DECIDED, None)


def _count(comment: Comment, status: CommentStatus, delta: int) -> None:
    # Author counters feed new_author_premod and the moderator's view of an author.
    author = comment.author
    if status == CommentStatus.APPROVED:
        author.approved_count += delta
    elif status == CommentStatus.REJECTED:
        author.rejected_count += delta

"""The one entry point that changes a comment's status: ``moderate()``.

Every status change goes through it: the scoring worker's policy decisions and
``scoring_failed`` holds, a moderator's single and bulk decisions and their undo, the
re-hold of a reported comment, the rejection of a banned author's comments, deletes and
erasure. In order, it

1. refuses, before changing anything, a comment that is not in the ``expected`` status
   or a move the state machine does not allow (``states.ALLOWED_MOVES``): one
   ``Conflict`` carrying the comment's current status, which the API answers with 409;
2. leaves a comment already in ``to_status`` as it is (no event: nothing changed);
3. moves the others, keeping the author's approved/rejected counters, the queue's
   derived columns and the kept status counts (``status_counts``) true, and stamps
   who decided and when;
4. writes one ModerationEvent per move (the audit trail) and the ``comment.<status>``
   webhook outbox rows;
5. for a moderator's review (``review=True``), resolves the open reports of every
   comment approved or rejected: that answers them; holding only defers the answer.

All of it in the caller's transaction, on rows the caller locked with
``locks.locked`` (the caller commits). Decisions are counted in the metrics once
the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import metrics, outbox
from service.errors import Conflict
from service.extensions import db
from service.models import Comment, ModerationEvent, Report, utcnow
from service.moderation import status_counts
from service.moderation.policy import LABELS
from service.moderation.report_counts import uncount_resolved
from service.moderation.states import CommentStatus, can_move
from service.score_key import column, columns_of

POLICY = "policy"  # the actor of the scoring worker's decisions
# Why a moderator decided: Coral's vocabulary, so reports across tools line up.
REASON_CODES = (
    "offensive",
    "abusive",
    "spam",
    "banned_word",
    "ad",
    "illegal_content",
    "harassment",
    "misinformation",
    "hate_speech",
    "irrelevant",
    "other",
)
# Approving or rejecting answers a comment's reports; holding it only defers the answer.
RESOLVES_REPORTS = (CommentStatus.APPROVED, CommentStatus.REJECTED)
DECIDED = (CommentStatus.APPROVED, CommentStatus.HELD, CommentStatus.REJECTED)
# The reason codes of moves by moderator keys that are not decisions: a report's requeue
# (moderation/reports.py) and a bulk action's undo (moderation/bulk.py).
REQUEUED, UNDONE = "reported", "undo"
NOT_DECISIONS = (REQUEUED, UNDONE)


def is_decision(actor: str, to_status: str, reason_code: str | None) -> bool:
    """A moderator's decision (not the policy's, a requeue, an undo or a delete); the SQL
    of the same rule is ``rollups.is_human``."""
    return actor != POLICY and to_status in DECIDED and reason_code not in NOT_DECISIONS


@dataclass(frozen=True)
class Review:
    """What a moderator's decision is measured against (stored on its event)."""

    policy_status: str | None  # the policy's decision of the comment, if it made one
    first: bool  # the comment's first moderator decision


class MoveConflict(Conflict):
    """A comment is not where the caller expected, or cannot go where it was asked."""

    def __init__(self, comment: Comment, message: str) -> None:
        super().__init__(message, current_status=comment.status)
        self.comment_id = comment.id
        self.current_status = CommentStatus(comment.status)


@dataclass(frozen=True)
class Moderated:
    """What one ``moderate`` call did."""

    changed: int  # comments moved
    resolved_reports: int  # open reports now resolved


def moderate(
    comments: Comment | Iterable[Comment],
    to_status: CommentStatus,
    *,
    actor: str,
    expected: str | None = None,
    review: bool = False,
    reason_code: str | None = None,
    note: str | None = None,
    reasons: list[dict[str, Any]] | None = None,
    scores: dict[str, float] | None = None,
    model: str | None = None,
    bulk_id: str | None = None,
) -> Moderated:
    """Move ``comments`` (one, or many of one site) to ``to_status``; see the module's steps.

    ``reasons`` and ``scores`` (the policy's) replace the comment's; ``bulk_id`` tags the
    events of a bulk action so it can be undone. Raises MoveConflict, changing nothing.
    """
    comments = [comments] if isinstance(comments, Comment) else list(comments)
    for comment in comments:
        _check(comment, to_status, expected)
    moved = [comment for comment in comments if comment.status != to_status]
    measured = _reviews(moved) if is_decision(actor, to_status, reason_code) else {}
    for comment in moved:
        event = _move(comment, to_status, actor, reason_code, note, reasons, scores, model, bulk_id)
        against = measured.get(comment.id)
        if against is not None:
            event.policy_status = against.policy_status
            if against.first:
                event.latency_s = _seconds_since(comment.created_at, event.created_at)
    resolved = 0
    if review and to_status in RESOLVES_REPORTS:
        resolved = resolve_reports([comment.id for comment in comments], actor)
    return Moderated(changed=len(moved), resolved_reports=resolved)


def _reviews(comments: list[Comment]) -> dict[int, Review]:
    """For a moderator deciding ``comments``: the policy's decision of each and whether
    this is its first moderator decision, from their events (one query)."""
    ids = [comment.id for comment in comments]
    if not ids:
        return {}
    event = ModerationEvent
    rows = db.session.execute(
        sa.select(event.comment_id, event.actor, event.from_status, event.to_status)
        .add_columns(event.reason_code)
        .where(event.comment_id.in_(ids), event.from_status.is_not(None))
        .order_by(event.id)
    ).all()
    policy: dict[int, str] = {}
    decided: set[int] = set()
    for comment_id, actor, from_status, to_status, reason_code in rows:
        if actor == POLICY and from_status == CommentStatus.PENDING:
            policy[comment_id] = to_status
        elif is_decision(actor, to_status, reason_code):
            decided.add(comment_id)
    return {cid: Review(policy.get(cid), cid not in decided) for cid in ids}


def _seconds_since(created: datetime, now: datetime) -> float:
    return max(0.0, (now - created).total_seconds())


def _check(comment: Comment, to_status: CommentStatus, expected: str | None) -> None:
    if expected is not None and comment.status != expected:
        raise MoveConflict(
            comment, f"Comment {comment.id} is {comment.status} now, not {expected}."
        )
    if comment.status != to_status and not can_move(CommentStatus(comment.status), to_status):
        raise MoveConflict(
            comment, f"Comment {comment.id} is {comment.status}; it cannot be {to_status}."
        )


def _move(
    comment: Comment,
    to_status: CommentStatus,
    actor: str,
    reason_code: str | None,
    note: str | None,
    reasons: list[dict[str, Any]] | None,
    scores: dict[str, float] | None,
    model: str | None,
    bulk_id: str | None,
) -> ModerationEvent:
    from_status = CommentStatus(comment.status)
    counted_as = None if from_status == CommentStatus.PENDING else status_counts.keys_of(comment)
    _count(comment, from_status, -1)
    comment.status = to_status
    _count(comment, to_status, +1)
    comment.decided_at = now = utcnow()
    comment.decided_by = actor
    if reasons is not None:
        comment.reasons = reasons
        codes = dict.fromkeys(reason["code"] for reason in reasons)
        comment.reason_codes = f" {' '.join(codes)} " if codes else None
    if scores is not None:
        comment.scores = scores
        for name, value in columns_of(scores).items():
            setattr(comment, name, value)
    status_counts.moved(
        counted_as, status_counts.keys_of(comment), reported=(comment.open_reports or 0) > 0
    )
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
        created_at=now,
    )
    db.session.add(event)
    outbox.comment_event(comment, previous_status=from_status, actor=actor, bulk_id=bulk_id)
    kind = "policy" if actor == POLICY else "moderator"
    db.session.info.setdefault(_DECIDED, []).append((str(to_status), kind))
    return event


def _count(comment: Comment, status: CommentStatus, delta: int) -> None:
    # Author counters feed new_author_premod and the moderator's view of an author.
    author = comment.author
    if status == CommentStatus.APPROVED:
        author.approved_count += delta
    elif status == CommentStatus.REJECTED:
        author.rejected_count += delta


def resolve_reports(comment_ids: list[int], actor: str) -> int:
    """Mark the open reports of ``comment_ids`` resolved by ``actor``; returns how many."""
    if not comment_ids:
        return 0
    resolved = db.session.scalars(
        sa.update(Report)
        .where(Report.comment_id.in_(comment_ids), Report.resolved_at.is_(None))
        .values(resolved_at=utcnow(), resolved_by=actor)
        .returning(Report.comment_id)
    ).all()
    uncount_resolved(resolved)
    return len(resolved)


def refill_score_columns(site_id: int | None) -> int:
    """Copy each comment's label scores into its score columns where they differ (of
    ``site_id``; None: every site); returns how many comments changed. The caller
    commits. moderate() keeps them equal: this repairs comments scored by code older
    than the columns (during an upgrade), or by anything that wrote ``scores`` alone."""
    copied = {column(label): Comment.scores[label].as_float() for label in LABELS}
    stale = [getattr(Comment, name).is_distinct_from(value) for name, value in copied.items()]
    where = [Comment.scores.is_not(None), sa.or_(*stale)]
    if site_id is not None:
        where.append(Comment.site_id == site_id)
    result = db.session.execute(
        sa.update(Comment).where(*where).values(copied),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount


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

"""Reader reports: one open report per reader and comment; enough of them re-hold a comment."""

from __future__ import annotations

import sqlalchemy as sa

from service import outbox
from service.extensions import db
from service.models import Comment, Report
from service.moderation.locks import locked
from service.moderation.moderate import REQUEUED, MoveConflict, moderate
from service.moderation.report_counts import counted_report
from service.moderation.states import CommentStatus

REASON = REQUEUED  # the reason code of a requeue's move
# Why a reader may report a comment: one list for the site API and the embed widget.
REPORT_REASONS = ("offensive", "abusive", "spam", "other")


def file_report(
    comment_id: int,
    *,
    reason: str,
    reporter: str | None,
    note: str | None,
    actor: str,
    requeue_reports: int,
) -> Report:
    """Store a reader's report (or return their open one) and re-hold the comment if due.

    The caller has checked the comment is its site's; the caller commits. A deleted
    comment refuses reports (MoveConflict: the API answers 409).
    """
    # Locked, so concurrent reports count each other and re-hold it once.
    comment = locked(Comment.id == comment_id)[0]
    if comment.status == CommentStatus.DELETED:
        raise MoveConflict(comment, f"Comment {comment_id} is deleted.")
    if reporter:
        earlier = db.session.scalar(
            sa.select(Report).where(
                Report.comment_id == comment.id,
                Report.reporter_ref == reporter,
                Report.resolved_at.is_(None),
            )
        )
        if earlier is not None:
            return earlier
    report = Report(
        site_id=comment.site_id,
        comment_id=comment.id,
        reason=reason,
        reporter_ref=reporter,
        note=note,
    )
    db.session.add(report)
    counted_report(comment)
    db.session.flush()
    outbox.emit(
        comment.site_id,
        "comment.reported",
        outbox.comment_data(
            comment, previous_status=comment.status, actor=actor, report=outbox.report_data(report)
        ),
        comment_id=comment.id,
    )
    _hold_if_reported(comment, actor, requeue_reports)
    return report


def _hold_if_reported(comment: Comment, actor: str, threshold: int) -> None:
    """Send an approved comment back to held once its open reports reach the threshold."""
    if not threshold or comment.status != CommentStatus.APPROVED:
        return
    open_reports = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Report)
        .where(Report.comment_id == comment.id, Report.resolved_at.is_(None))
    )
    if open_reports < threshold:
        return
    reasons = [r for r in comment.reasons or [] if r.get("code") != REASON]
    moderate(
        comment,
        CommentStatus.HELD,
        actor=actor,
        expected=CommentStatus.APPROVED,
        reason_code=REASON,
        note=f"{open_reports} open reports",
        reasons=[*reasons, {"code": REASON, "reports": open_reports}],
    )

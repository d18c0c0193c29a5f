"""Reader reports: one open report per reader and comment; enough of them requeue a comment."""

from __future__ import annotations

import sqlalchemy as sa

from service import bulk, lifecycle, outbox
from service.errors import abort
from service.extensions import db
from service.models import Comment, Report
from service.moderation.states import CommentStatus


def file_report(
    comment_id: int,
    *,
    reason: str,
    reporter: str | None,
    note: str | None,
    actor: str,
    requeue_reports: int,
) -> Report:
    """Store a reader's report (or return their open one) and requeue the comment if due.

    The caller has checked the comment is its site's; the caller commits.
    """
    # Locked, so concurrent reports count each other and requeue it once.
    comment = bulk.locked(Comment.id == comment_id)[0]
    if comment.status == CommentStatus.DELETED:
        abort(409, f"Comment {comment_id} is deleted.")
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
    db.session.flush()
    report_data = {name: getattr(report, name) for name in ("id", "reason", "note", "created_at")}
    report_data["reporter_id"] = report.reporter_ref
    outbox.emit(
        comment.site_id,
        "comment.reported",
        outbox.comment_data(
            comment, previous_status=comment.status, actor=actor, report=report_data
        ),
        comment_id=comment.id,
    )
    _requeue_if_reported(comment, actor, requeue_reports)
    return report


def _requeue_if_reported(comment: Comment, actor: str, threshold: int) -> None:
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
    reasons = [r for r in comment.reasons or [] if r.get("code") != "reported"]
    lifecycle.move(
        comment,
        CommentStatus.HELD,
        actor=actor,
        reason_code="reported",
        note=f"{open_reports} open reports",
        reasons=[*reasons, {"code": "reported", "reports": open_reports}],
    )

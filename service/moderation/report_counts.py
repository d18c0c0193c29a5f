"""Each comment's count of open reports (``comment.open_reports``), kept exact in SQL.

``/v1/queue/counts`` and ``/v1/stats`` count the approved or held comments that have an
open report. Joining every open report to its comment grew with the report table (135 ms
at a million comments); with the counter the partial index ``ix_comment_open_reported``
holds exactly those comments, and the count is an index-only scan of them.

The counter changes only here, always as ``open_reports = open_reports + n`` in SQL, in
the transaction that files or resolves the reports, so concurrent reports and
resolutions add up instead of overwriting each other. ``civility counts rebuild``
recounts it from the reports if ever in doubt.
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from service.extensions import db
from service.models import Comment, Report


def counted_report(comment: Comment) -> None:
    """One more open report of ``comment`` (its new Report is in this transaction)."""
    # An SQL expression: the UPDATE adds to the row as it is, and the attribute reloads.
    comment.open_reports = Comment.open_reports + 1


def uncount_resolved(comment_ids: list[int]) -> None:
    """Take resolved reports off their comments' counters: one id per resolved report."""
    by_comment = Counter(comment_ids)
    if not by_comment:
        return
    db.session.flush()
    # Core, not the ORM's bulk update: one statement run for each (comment, n).
    table = Comment.__table__
    db.session.connection().execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("cid"))
        .values(open_reports=table.c.open_reports - sa.bindparam("n")),
        [{"cid": cid, "n": n} for cid, n in sorted(by_comment.items())],
    )
    # The session's copies of those comments would otherwise show the old count.
    for comment in db.session.identity_map.values():
        if isinstance(comment, Comment) and comment.id in by_comment:
            db.session.expire(comment, ["open_reports"])


def rebuild(site_id: int | None) -> int:
    """Recount every comment's open reports (of ``site_id``; None: every site) from the
    report table; returns how many counters were wrong. The caller commits."""
    actual = (
        sa.select(sa.func.count())
        .select_from(Report)
        .where(Report.comment_id == Comment.id, Report.resolved_at.is_(None))
        .scalar_subquery()
    )
    scope = [] if site_id is None else [Comment.site_id == site_id]
    result = db.session.execute(
        sa.update(Comment)
        .where(*scope, Comment.open_reports != actual)
        .values(open_reports=actual)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount

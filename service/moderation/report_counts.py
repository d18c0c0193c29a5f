"""Each comment's count of open reports (``comment.open_reports``), kept exact in SQL.

``/v1/queue/counts`` and ``/v1/stats`` count the approved or held comments that have an
open report. Joining every open report to its comment grew with the report table (135 ms
at a million comments); with the counter the partial index ``ix_comment_open_reported``
holds exactly those comments. Counting them from it still grew with them (112,000 at ten
million), so each article's number of them is kept too (``article_status_count.reported``,
service.moderation.status_counts): a comment's first open report adds one, its last one
resolved takes one off, in the same transaction and under the comment's row lock.

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
from service.moderation import status_counts


def counted_report(comment: Comment) -> None:
    """One more open report of ``comment`` (row-locked and freshly read by the caller; its
    new Report is in this transaction)."""
    if not comment.open_reports:
        # Its first open report: one more reported comment of its article (if the queue
        # counts its status as reported; reports_changed says).
        status_counts.reports_changed(status_counts.keys_of(comment)[1], +1)
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
    # Those whose last open report this was are reported no more. The UPDATE holds their
    # rows until the commit, so no other transaction changes them meanwhile.
    cleared = db.session.execute(
        sa.select(table.c.site_id, table.c.article_id, table.c.status).where(
            table.c.id.in_(sorted(by_comment)), table.c.open_reports == 0
        )
    ).all()
    for site_id, article_id, status in cleared:
        status_counts.reports_changed(status_counts.ArticleKey(site_id, article_id, status), -1)
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

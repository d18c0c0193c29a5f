"""Comments per creation day, language and status now, kept exact for /v1/stats' languages.

``/v1/stats`` answers, for a window, how many comments arrived in each language and where
they stand *now*. Counting that from the comments reads every comment of the window (an
index-only scan of a year's comments took 356 ms at a million); a daily rollup cannot hold
it, because a closed day's comments keep moving (moderators decide them later). So the
counts are kept as they change: ``day_status_count`` has one row per (site, UTC day the
comment was submitted, language, status, whether no scorer read its language) with the
number of such comments.

Only ``moderate()`` changes them (``moved``), in the transaction of the move, so a
rolled-back move counts nothing. A comment is counted from its first decision on:
ingest does not touch the table (every submission would update the same row of today,
serialising concurrent submissions), so pending comments are counted live, from their
own small index. The deltas of a transaction are written just before it commits, in key
order, as ``comments = comments + n`` upserts: concurrent transactions add up, wait on
one another only for the commit itself, and cannot deadlock on these rows (a transaction
takes no other lock after them). ``civility counts rebuild`` recounts the table from the
comments if ever in doubt.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.extensions import db
from service.models import Comment, DayStatusCount
from service.moderation.states import CommentStatus

UNSUPPORTED = " unsupported_language "  # as comment.reason_codes holds it
NO_LANGUAGE = ""  # the key of comments no scorer assigned a language
_DELTAS = "civility.day_counts"


class Key(NamedTuple):
    site_id: int
    day: date
    language: str
    status: str
    unsupported: bool


def day_of(moment: datetime) -> date:
    """The UTC day of ``moment`` (naive values are UTC, as the columns hold them)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def key_of(comment: Comment) -> Key:
    """Where ``comment`` is counted as it is now."""
    return Key(
        comment.site_id,
        day_of(comment.created_at),
        comment.language or NO_LANGUAGE,
        str(comment.status),
        UNSUPPORTED in (comment.reason_codes or ""),
    )


def moved(before: Key | None, after: Key) -> None:
    """A comment counted under ``before`` (None: pending, not counted) is now ``after``."""
    deltas: Counter[Key] = db.session.info.setdefault(_DELTAS, Counter())
    if before is not None:
        deltas[before] -= 1
    deltas[after] += 1


def _write(session: Session) -> None:
    deltas: Counter[Key] = session.info.pop(_DELTAS, Counter())
    rows = [{**key._asdict(), "comments": n} for key, n in sorted(deltas.items()) if n != 0]
    if not rows:
        return
    session.flush()  # the moves themselves first: nothing is locked after these rows
    table = DayStatusCount.__table__
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    statement = insert.on_conflict_do_update(
        index_elements=list(Key._fields),
        set_={"comments": table.c.comments + insert.excluded.comments},
    )
    session.connection().execute(statement, rows)


@sa.event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _write(session)


@sa.event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    # A rolled-back transaction's moves never happened.
    if transaction.parent is None:
        session.info.pop(_DELTAS, None)


def unsupported_column() -> Any:
    """SQL: the comment was read by no scorer made for its language."""
    return Comment.reason_codes.like("% unsupported\\_language %", escape="\\")


def recount_select(site_id: int | None) -> Any:
    """SELECT of every decided comment's key and count, straight from the comments."""
    unsupported = unsupported_column()
    columns = (
        Comment.site_id,
        sa.func.date(Comment.created_at),
        sa.func.coalesce(Comment.language, NO_LANGUAGE),
        Comment.status,
        sa.func.coalesce(unsupported, sa.false()),
    )
    return (
        sa.select(*columns, sa.func.count())
        .where(
            Comment.status != CommentStatus.PENDING,
            *scope(Comment.__table__, site_id),
        )
        .group_by(*columns)
    )


def rebuild(site_id: int | None) -> int:
    """Recount the table (of ``site_id``; None: every site) from the comments; returns the
    rows written. The caller commits. On Postgres the table is locked for the recount, so
    moves committing meanwhile wait and then add to the new counts."""
    table = DayStatusCount.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("LOCK TABLE day_status_count IN EXCLUSIVE MODE"))
    db.session.execute(sa.delete(table).where(*scope(table, site_id)))
    db.session.execute(recount(site_id))
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(table).where(*scope(table, site_id))
    )


def scope(table: Any, site_id: int | None) -> list[Any]:
    """WHERE of one site's rows (None: every site's)."""
    return [] if site_id is None else [table.c.site_id == site_id]


def recount(site_id: int | None) -> Any:
    """INSERT of the counts of ``site_id`` (None: every site), recounted from the comments."""
    return sa.insert(DayStatusCount.__table__).from_select(
        ["site_id", "day", "language", "status", "unsupported", "comments"],
        recount_select(site_id),
    )

"""How many comments stand in each status, kept exact as ``moderate()`` moves them.

Two reads grew with the whole comment table, because what they count keeps changing:

- ``/v1/stats``' comments by language: how many of a window's comments arrived in each
  language and where they stand *now*. Counting that reads every comment of the window
  (an index-only scan of a year's comments took 356 ms at a million), and a daily rollup
  cannot hold it: a closed day's comments keep moving. ``day_status_count`` has one row
  per (site, UTC day of submission, language, status, read by no scorer of its language).
- ``/v1/queue/counts``' held and reported comments, per article and in all: index-only
  scans of every held comment (67,000 at a million) and of every approved or held comment
  with open reports (112,000 at ten million). ``article_status_count`` has one row per
  (site, article, status): its comments, and how many of them have open reports
  (``reported``, kept for the statuses the queue counts as reported: approved, held).

Only ``moderate()`` moves comments between them (``moved``), in the transaction of the
move, so a rolled-back move counts nothing; filing a comment's first open report and
resolving its last (service.moderation.report_counts, under the comment's row lock)
change ``reported`` the same way (``reports_changed``, which ignores statuses outside
REPORTABLE, pending among them). A comment is counted from its first decision on:
ingest does not touch the tables (every submission would update the same row of today,
or of a busy article, serialising concurrent submissions), so pending comments, a
small set but for a backlog, are counted live from their own index. The deltas of a
transaction are written just before it commits, table by table in key order, as
``comments = comments + n`` upserts: concurrent transactions add up, wait on one
another only for the commit itself, and cannot deadlock on these rows (every
transaction takes them in the same order, and no other lock after them).
``civility counts rebuild`` recounts both from the comments if ever in doubt.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.extensions import db
from service.models import ArticleStatusCount, Comment, DayStatusCount, utcnow
from service.moderation.states import CommentStatus

UNSUPPORTED = " unsupported_language "  # as comment.reason_codes holds it
NO_LANGUAGE = ""  # the key of comments no scorer assigned a language
_DELTAS = "civility.status_counts"


class DayKey(NamedTuple):
    site_id: int
    day: date
    language: str
    status: str
    unsupported: bool


class ArticleKey(NamedTuple):
    site_id: int
    article_id: int
    status: str


# Each key type's table, in the order every transaction writes them.
TABLES: dict[type, Any] = {DayKey: DayStatusCount, ArticleKey: ArticleStatusCount}
# The counts of each key type's rows.
COLUMNS: dict[type, tuple[str, ...]] = {DayKey: ("comments",), ArticleKey: ("comments", "reported")}
# The statuses whose comments with open reports the queue counts as reported (OPEN_REPORTED).
REPORTABLE = (CommentStatus.APPROVED.value, CommentStatus.HELD.value)


def day_of(moment: datetime) -> date:
    """The UTC day of ``moment`` (naive values are UTC, as the columns hold them)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def keys_of(comment: Comment) -> tuple[DayKey, ArticleKey]:
    """Where ``comment`` is counted as it is now."""
    status = str(comment.status)
    # A comment not flushed yet has no created_at: its column default is now.
    created = comment.created_at or utcnow()
    return (
        DayKey(
            comment.site_id,
            day_of(created),
            comment.language or NO_LANGUAGE,
            status,
            UNSUPPORTED in (comment.reason_codes or ""),
        ),
        ArticleKey(comment.site_id, comment.article_id, status),
    )


def _deltas() -> Counter[tuple[Any, str]]:
    """This transaction's changes so far, by (key, column)."""
    return db.session.info.setdefault(_DELTAS, Counter())


def moved(before: tuple[Any, ...] | None, after: tuple[Any, ...], *, reported: bool) -> None:
    """A comment counted under the keys ``before`` (None: pending, not counted) is now
    counted under ``after``; ``reported``: it has open reports (a move keeps them)."""
    deltas = _deltas()
    for keys, sign in ((before or (), -1), (after, +1)):
        for key in keys:
            deltas[key, "comments"] += sign
            if reported and isinstance(key, ArticleKey) and key.status in REPORTABLE:
                deltas[key, "reported"] += sign


def reports_changed(key: ArticleKey, delta: int) -> None:
    """A comment counted under ``key`` gained its first open report (+1) or lost its last
    (-1)."""
    if key.status in REPORTABLE:
        _deltas()[key, "reported"] += delta


def _write(session: Session) -> None:
    deltas: Counter[tuple[Any, str]] = session.info.pop(_DELTAS, Counter())
    if not any(deltas.values()):
        return
    session.flush()  # the moves themselves first: nothing is locked after these rows
    postgres = session.get_bind().dialect.name == "postgresql"
    for kind, model in TABLES.items():
        columns = COLUMNS[kind]
        keys = sorted({key for key, _ in deltas if type(key) is kind})
        rows = [
            {**key._asdict(), **{column: deltas[key, column] for column in columns}}
            for key in keys
            if any(deltas[key, column] for column in columns)
        ]
        if not rows:
            continue
        table = model.__table__
        insert = (postgresql.insert if postgres else sqlite.insert)(table)
        statement = insert.on_conflict_do_update(
            index_elements=list(kind._fields),
            set_={column: table.c[column] + insert.excluded[column] for column in columns},
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


def scope(table: Any, site_id: int | None) -> list[Any]:
    """WHERE of one site's rows (None: every site's)."""
    return [] if site_id is None else [table.c.site_id == site_id]


def _recount(kind: type, site_id: int | None) -> Any:
    """INSERT of ``kind``'s counts of ``site_id`` (None: every site), from the comments."""
    if kind is DayKey:
        columns = (
            Comment.site_id,
            sa.func.date(Comment.created_at),
            sa.func.coalesce(Comment.language, NO_LANGUAGE),
            Comment.status,
            sa.func.coalesce(unsupported_column(), sa.false()),
        )
        counts = [sa.func.count()]
    else:
        columns = (Comment.site_id, Comment.article_id, Comment.status)
        reported = sa.and_(Comment.open_reports > 0, Comment.status.in_(REPORTABLE))
        counts = [sa.func.count(), sa.func.count().filter(reported)]
    counted = (
        sa.select(*columns, *counts)
        .where(Comment.status != CommentStatus.PENDING, *scope(Comment.__table__, site_id))
        .group_by(*columns)
    )
    return sa.insert(TABLES[kind].__table__).from_select([*kind._fields, *COLUMNS[kind]], counted)


def recount_statements(site_id: int | None) -> list[Any]:
    """The INSERTs that fill both tables from the comments (the migration's, the bench's)."""
    return [_recount(kind, site_id) for kind in TABLES]


def recounted(kind: type, site_id: int | None) -> dict[Any, tuple[int, ...]]:
    """What a recount of ``kind`` from the comments gives, key → its COLUMNS."""
    rows = db.session.execute(_recount(kind, site_id).select).all()
    width = len(kind._fields)
    if kind is DayKey:
        # SQLite's date() answers text, and its booleans are integers.
        rows = [
            (site, day if isinstance(day, date) else date.fromisoformat(day), lang, st, bool(u), n)
            for site, day, lang, st, u, n in rows
        ]
    return {kind(*row[:width]): tuple(row[width:]) for row in rows}


def rebuild(site_id: int | None) -> int:
    """Recount both tables (of ``site_id``; None: every site) from the comments; returns
    the rows written. The caller commits. On Postgres the tables are locked for the
    recount, so moves committing meanwhile wait and then add to the new counts."""
    written = 0
    for kind, model in TABLES.items():
        table = model.__table__
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(sa.text(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"))
        db.session.execute(sa.delete(table).where(*scope(table, site_id)))
        db.session.execute(_recount(kind, site_id))
        written += db.session.scalar(
            sa.select(sa.func.count()).select_from(table).where(*scope(table, site_id))
        )
    return written

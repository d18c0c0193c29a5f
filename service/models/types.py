"""Column types every model shares: ids, aware UTC timestamps, the clock, and the column
groups most tables repeat (a site-owned row's keys, created/updated times)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; Postgres gets a BIGINT identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite keeps no time zone."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def partial_index(name: str, *columns: Any, where: str, **options: Any) -> sa.Index:
    """An index of the rows ``where`` selects: Postgres and SQLite each take the condition
    under their own keyword, and writing it once keeps the two the same."""
    condition = sa.text(where)
    return sa.Index(name, *columns, postgresql_where=condition, sqlite_where=condition, **options)


class SiteRow:
    """Mixin: a row that belongs to one site, its id and site_id the table's first columns;
    deleting the site deletes the row."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True, sort_order=-1)
    site_id: Mapped[int] = mapped_column(
        sa.ForeignKey("site.id", ondelete="CASCADE"), sort_order=-1
    )


class Timestamps:
    """Mixin: when a row was created and last changed (the table's last columns)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

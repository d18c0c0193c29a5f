"""The one pagination cursor codec: a keyset position as URL-safe base64 of a JSON list.

Every paged route writes its ``next_cursor`` with :func:`encode` and reads ``cursor`` back
with :func:`decode`, naming what kind each position value must be. Anything else — not
base64, not JSON, the wrong length, a value of the wrong kind, an id past the database's,
a date outside the range the API accepts — is a 422 naming the ``cursor`` field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

import sqlalchemy as sa
from flask import current_app

from service.api.common import ID_MAX, check_moment, page_size
from service.errors import abort
from service.extensions import db

Kind = Callable[[Any], Any]


def moment(value: Any) -> datetime:
    """A date with its zone, within the API's date range, in UTC."""
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(value)
    return check_moment(when)


def row_id(value: Any) -> int:
    """A positive id the database can hold."""
    if type(value) is not int or not 0 < value <= ID_MAX:
        raise ValueError(value)
    return value


def number(value: Any) -> float:
    """A score: a JSON number (not a boolean)."""
    if type(value) not in (int, float):
        raise ValueError(value)
    return float(value)


def text(value: Any) -> str:
    """A string, such as the sort a cursor was made for."""
    if type(value) is not str:
        raise ValueError(value)
    return value


def encode(*values: Any) -> str:
    """An opaque cursor for a keyset position; datetimes written as ISO 8601."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HINT = "use the next_cursor of a previous page."


def invalid(hint: str = HINT) -> NoReturn:
    """The 422 for a cursor that is not one of ours, naming the ``cursor`` field."""
    abort(
        422,
        f"Invalid cursor: {hint}",
        errors={"query": {"cursor": ["Not a valid cursor."]}},
    )
    raise AssertionError("unreachable: abort raises")


def decode(cursor: str, kinds: Sequence[Kind], hint: str = HINT) -> tuple[Any, ...]:
    """The position ``encode`` wrote, each value read by its kind; 422 unless it is one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if type(values) is not list or len(values) != len(kinds):
            raise ValueError(cursor)
        return tuple(kind(value) for kind, value in zip(kinds, values, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        invalid(hint)


def after_id(cursor: str) -> int:
    """The id a newest-first listing's cursor stopped at."""
    return decode(cursor, (row_id,))[0]


def page_limit(args: dict[str, Any]) -> int:
    """The page size ``args`` ask for (``limit``), within the PAGE_SIZE settings."""
    cfg = current_app.config
    return page_size(args.get("limit"), cfg["PAGE_SIZE"], cfg["PAGE_SIZE_MAX"])


def newest_first(
    query: sa.Select, id_column: Any, after: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One page of ``query``'s rows by descending id, starting after the cursor ``after``:
    the rows and the next page's cursor (None on the last page)."""
    if after:
        query = query.where(id_column < after_id(after))
    rows = db.session.scalars(query.order_by(id_column.desc()).limit(limit + 1)).all()
    items = list(rows[:limit])
    return items, (encode(items[-1].id) if len(rows) > limit else None)

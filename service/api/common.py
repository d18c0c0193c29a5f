"""Pieces every blueprint uses: tenant-scoped lookups, text checks and cursors."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import marshmallow as ma
import sqlalchemy as sa
from flask import g
from werkzeug.routing import IntegerConverter

from service.errors import abort
from service.extensions import db
from service.models import Article, Comment

T = TypeVar("T")
REF_RE = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")
REF_RULE = "1-200 characters of A-Z a-z 0-9 . _ ~ -"
# The article ref in paths, documented with its rule (check_ref enforces it).
REF_PARAM = {
    "in": "path",
    "name": "ref",
    "description": "The site's own article reference.",
    "schema": {"type": "string", "pattern": REF_RE.pattern, "minLength": 1, "maxLength": 200},
}
ID_MAX = 2**63 - 1  # the largest id a BIGINT (and an SQLite INTEGER) holds


class IdConverter(IntegerConverter):
    """``<int:…>`` bounded to ids the database can hold: a larger number is unknown (404),
    not an overflow in the driver (500). One spelling per id: ASCII digits without leading
    zeros (``/1``, never ``/01`` or a fullwidth one); any other is no route (404)."""

    regex = r"[1-9][0-9]{0,18}"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", ID_MAX)
        super().__init__(map, *args, **kwargs)


def count_schema(name: str, keys: Iterable[str]) -> type[ma.Schema]:
    """A schema of one integer count per key, the keys taken from the table the numbers are
    counted by (statuses, override pairs), so the answer's fields cannot drift from it."""
    return ma.Schema.from_dict({key: ma.fields.Integer() for key in keys}, name=name)


class Id(ma.fields.Integer):
    """An id in a request: an integer from 1 to ID_MAX (never sent to the database beyond)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=ma.validate.Range(min=1, max=ID_MAX), **kwargs)


# Dates a request may name: wide enough for any archive or ban, narrow enough that
# converting to UTC or stepping a stats window never leaves datetime's range.
DATE_MIN = datetime(1900, 1, 1, tzinfo=UTC)
DATE_MAX = datetime(9000, 1, 1, tzinfo=UTC)
DATE_RULE = f"from {DATE_MIN:%Y-%m-%d} to {DATE_MAX:%Y-%m-%d} (UTC)"


def check_moment(when: datetime) -> datetime:
    """``when`` in UTC; ValueError unless it lies from DATE_MIN up to DATE_MAX."""
    try:
        utc = when.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{when!r} is outside datetime's range") from None
    if not DATE_MIN <= utc < DATE_MAX:
        raise ValueError(f"{when!r} is outside {DATE_RULE}")
    return utc


class DateTimeIn(ma.fields.AwareDateTime):
    """A date in a request: ISO 8601, its zone UTC if it names none, within DATE_RULE."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        when = super()._deserialize(value, attr, data, **kwargs)
        try:
            return check_moment(when)
        except ValueError:
            raise ma.ValidationError(f"Must be {DATE_RULE}.") from None


def check_ref(ref: str, field: str = "ref") -> str:
    """422 naming ``field`` unless ``ref`` is a URL-safe reference."""
    if not REF_RE.match(ref):
        abort(
            422,
            f"Invalid {field}: expected {REF_RULE}.",
            errors={"path": {field: [f"Expected {REF_RULE}."]}},
        )
    return ref


def find_article(ref: str) -> Article | None:
    """The current site's article ``ref``, or None."""
    return db.session.scalar(
        sa.select(Article).where(Article.site_id == g.site_id, Article.ref == ref)
    )


def article_or_404(ref: str) -> Article:
    """The current site's article ``ref``; 404 when it is not this site's."""
    article = find_article(check_ref(ref))
    if article is None:
        abort(404, f"No article {ref!r} on this site.")
    return article


def owned_or_404(model: type[T], row_id: int | str, noun: str) -> T:
    """The current site's ``model`` row; 404 for unknown ids and other sites' rows alike."""
    row = db.session.get(model, row_id)
    if row is None or row.site_id != g.site_id:
        abort(404, f"No {noun} {row_id} on this site.")
    return row


def comment_or_404(comment_id: int) -> Comment:
    """The current site's comment; 404 for unknown ids and other sites' comments alike."""
    return owned_or_404(Comment, comment_id, "comment")


# Control characters (Unicode category Cc) and surrogates (Cs): found by one regex scan,
# not a category lookup per character (bodies run to 10,000 characters).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_BUT_NEWLINE_TAB_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str, *, allow_newlines: bool) -> str:
    """NFC-normalise; raise ValidationError on control characters or lone surrogates."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = unicodedata.normalize("NFC", value)
    found = (CONTROL_BUT_NEWLINE_TAB_RE if allow_newlines else CONTROL_RE).search(value)
    if found is None:
        return value
    ch = found.group()
    if unicodedata.category(ch) == "Cs":
        raise ma.ValidationError(f"Contains an unpaired surrogate (U+{ord(ch):04X}).")
    raise ma.ValidationError(
        f"Contains a control character (U+{ord(ch):04X}); only newline and tab are allowed."
        if allow_newlines
        else f"Contains a control character (U+{ord(ch):04X})."
    )


# Characters that show nothing alone: whitespace (Unicode's separators Zs, Zl, Zp, and
# tab/newline), format characters (Cf: zero-width space and joiners, the BOM, bidi marks,
# word joiner, soft hyphen), and the Hangul and braille fillers, letters that render blank.
INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_blank(text: str) -> bool:
    """True when ``text`` would show nothing: only whitespace and invisible characters."""
    return all(
        ch.isspace() or ch in BLANK_LETTERS or unicodedata.category(ch) in INVISIBLE_CATEGORIES
        for ch in text
    )


class CleanString(ma.fields.String):
    """A string field that NFC-normalises and refuses control characters."""

    def __init__(self, *args: Any, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.multiline = multiline

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return clean_text(
            super()._deserialize(value, attr, data, **kwargs), allow_newlines=self.multiline
        )


class PageArgs(ma.Schema):
    limit = ma.fields.Integer(
        validate=ma.validate.Range(min=1), metadata={"description": "Page size (default 50)."}
    )
    cursor = ma.fields.String(
        validate=ma.validate.Length(max=200),
        metadata={"description": "Opaque cursor from the previous page's `next_cursor`."},
    )


def page_size(limit: int | None, default: int, maximum: int) -> int:
    """The page size to use; 422 naming ``limit`` when it exceeds ``maximum``."""
    if limit is None:
        return default
    if limit > maximum:
        abort(
            422,
            f"Invalid limit: at most {maximum}.",
            errors={"query": {"limit": [f"Must be at most {maximum}."]}},
        )
    return limit

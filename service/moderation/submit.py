"""Submission: a new comment stored as pending, audited, announced and queued for scoring.

The common path reads and writes with Core on the session's connection (one
transaction): the ORM's per-statement and unit-of-work overhead was most of the CPU an
ingest cost. Rare paths (a new article or author) use the ORM. What was inserted comes
back as frozen dataclasses, so nothing is re-read after the commit (no second
transaction, on SQLite no second write lock, around the XADD and the answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service import metrics, outbox, stream
from service.errors import Conflict, InvalidField, NotFound
from service.extensions import db, get_or_create
from service.models import Article, Author, Comment, ModerationEvent, utcnow
from service.moderation.states import CommentStatus


@dataclass(frozen=True)
class ArticleRow:
    """The article a comment is submitted to, as read for the submission."""

    id: int
    ref: str
    url: str | None
    title: str | None
    comments_open: bool


@dataclass(frozen=True)
class AuthorRow:
    """The author of a submitted comment, display name as it is now."""

    id: int
    ref: str
    name: str | None


@dataclass(frozen=True)
class Submitted:
    """A comment as its submission inserted it: what the answer and the webhook read."""

    id: int
    site_id: int
    article: ArticleRow
    author: AuthorRow
    parent_id: int | None
    body: str
    client_ip: str | None
    meta: dict[str, Any] | None
    idempotency_key: str | None
    request_hash: str | None
    request_id: str | None
    created_at: datetime
    status: str = CommentStatus.PENDING
    reasons: tuple[dict[str, Any], ...] = ()
    scores: dict[str, float] | None = None
    model: str | None = None
    language: str | None = None
    language_confidence: float | None = None
    scored_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None


_ARTICLE = sa.select(
    Article.id, Article.ref, Article.url, Article.title, Article.comments_open
).where(Article.site_id == sa.bindparam("site_id"), Article.ref == sa.bindparam("ref"))
_AUTHOR = sa.select(Author.id, Author.ref, Author.name).where(
    Author.site_id == sa.bindparam("site_id"), Author.ref == sa.bindparam("ref")
)
_PARENT_ARTICLE = sa.select(Comment.article_id).where(Comment.id == sa.bindparam("id"))


def _row(query: sa.Select, **params: Any) -> sa.Row | None:
    return db.session.connection().execute(query, params).first()


def article_for_submit(site_id: int, ref: str, *, lazy: Callable[[], bool]) -> ArticleRow:
    """The article, open for comments; created first when unknown and ``lazy()`` says so.

    ``lazy`` (the site's lazy_articles) is asked only for an unknown article: reading the
    site costs a query the common path does without. NotFound when it is unknown and
    not lazy, Conflict when its comments are closed.
    """
    article = _row(_ARTICLE, site_id=site_id, ref=ref)
    if article is None:
        if not lazy():
            raise NotFound(f"No article {ref!r} on this site; register it with PUT first.")
        get_or_create(Article, site_id=site_id, ref=ref)
        article = _row(_ARTICLE, site_id=site_id, ref=ref)
    if not article.comments_open:
        raise Conflict(f"Comments are closed on article {ref!r}.")
    return ArticleRow(*article)


def author_for_submit(site_id: int, ref: str, name: str | None) -> AuthorRow:
    """The author, created on first use, the display name updated when it changed."""
    author = _row(_AUTHOR, site_id=site_id, ref=ref)
    if author is None:
        get_or_create(Author, site_id=site_id, ref=ref, defaults={"name": name})
        author = _row(_AUTHOR, site_id=site_id, ref=ref)
    if name and author.name != name:
        db.session.connection().execute(
            sa.update(Author).where(Author.id == author.id).values(name=name)
        )
        return AuthorRow(author.id, author.ref, name)
    return AuthorRow(*author)


def submit(
    site_id: int,
    article: ArticleRow,
    author: AuthorRow,
    *,
    body: str,
    actor: str,
    parent_id: int | None = None,
    client_ip: str | None = None,
    meta: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    request_id: str | None = None,
) -> Submitted:
    """Insert a pending comment, audit its arrival and announce it; commit, then queue it.

    A ``parent_id`` must be a comment of the same article (InvalidField). A concurrent
    insert of the same ``idempotency_key`` raises IntegrityError, the transaction rolled
    back, for the caller to answer with the earlier comment.
    """
    if parent_id is not None:
        parent = _row(_PARENT_ARTICLE, id=parent_id)
        if parent is None or parent.article_id != article.id:
            raise InvalidField("parent_id", "Must be a comment of the same article.")
    values = {
        "site_id": site_id,
        "article_id": article.id,
        "author_id": author.id,
        "parent_id": parent_id,
        "body": body,
        "status": CommentStatus.PENDING,
        "reasons": [],
        "client_ip": client_ip,
        "metadata": meta,  # the column; the attribute is ``meta``
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "request_id": request_id,
        "created_at": utcnow(),
    }
    try:
        inserted = db.session.connection().execute(sa.insert(Comment.__table__), values)
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise
    comment = Submitted(
        id=inserted.inserted_primary_key[0],
        site_id=site_id,
        article=article,
        author=author,
        parent_id=parent_id,
        body=body,
        client_ip=client_ip,
        meta=meta,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        request_id=request_id,
        created_at=values["created_at"],
    )
    _record_created(comment, actor)
    _queue(comment.id)
    return comment


def _record_created(comment: Submitted, actor: str) -> None:
    """Audit the arrival of a new (pending) comment and emit ``comment.created``."""
    db.session.connection().execute(
        sa.insert(ModerationEvent),
        {
            "site_id": comment.site_id,
            "comment_id": comment.id,
            "from_status": None,
            "to_status": CommentStatus.PENDING,
            "actor": actor,
        },
    )
    outbox.comment_event(comment, previous_status=None, actor=actor)


def _queue(comment_id: int) -> None:
    """Commit the new comment, count it, and XADD it for the workers.

    An XADD that fails loses nothing: the comment is stored as pending and the worker's
    sweeper re-enqueues it.
    """
    db.session.commit()
    metrics.COMMENTS_INGESTED.inc()
    if not stream.enqueue([comment_id]):
        metrics.ENQUEUE_FAILURES.inc()

"""Row locks for moderation: authors first, then their comments, in one order everywhere.

Every status change runs on rows read through here. Comment and author rows are locked
(FOR UPDATE on Postgres; SQLite's BEGIN IMMEDIATE serialises writers already), so two
decisions never both move one comment and author counters are never lost. Locks are
taken author before comment, and within one statement by author id, then comment id:
the API, bulk actions and every scoring worker take them in that one order, so none
of them deadlocks another.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from service.extensions import db
from service.models import Author, Comment


def comments_for_update(*where: Any) -> sa.Select:
    """The locking query: comments matching ``where`` with article and author, freshly read.

    A caller may add columns (the worker adds each comment's site) before running it.
    """
    return (
        sa.select(Comment)
        .join(Comment.article)
        .join(Comment.author)
        .options(contains_eager(Comment.article), contains_eager(Comment.author))
        .where(*where)
        .order_by(Comment.author_id, Comment.id)
        .with_for_update(of=[Comment, Author])
        # Locked rows are the truth: never keep attributes from an earlier load.
        .execution_options(populate_existing=True)
    )


def locked(*where: Any) -> list[Comment]:
    """Comments matching ``where``, row-locked with their authors (see the module's order)."""
    return list(db.session.scalars(comments_for_update(*where)))


def locked_author(site_id: int, ref: str) -> Author | None:
    """The site's author ``ref``, row-locked, freshly read; None when unknown.

    Lock an author before any of their comments (``locked`` after this keeps the order).
    """
    return db.session.scalar(
        sa.select(Author)
        .where(Author.site_id == site_id, Author.ref == ref)
        .with_for_update()
        .execution_options(populate_existing=True)
    )

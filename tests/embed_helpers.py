"""A site that takes browser comments, reader tokens as its backend signs them, row counts."""

from __future__ import annotations

import time
from typing import Any

import jwt
import sqlalchemy as sa

from service.extensions import db
from service.models import Author, Comment, ModerationEvent, Report

ORIGIN = "https://news.example"
SECRET = "embsec_test-secret-of-the-embedding-site-0123456789"
GUESSED = "embsec_guessed-but-long-enough-to-be-a-real-key"


def reader_token(
    secret: str = SECRET,
    *,
    sub: str = "user-42",
    name: str = "Ada Reader",
    lifetime_s: int | None = 600,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    """An HS256 reader token, as the site's backend makes one with PyJWT."""
    exp = None if lifetime_s is None else int(time.time()) + lifetime_s
    payload = {"sub": sub, "name": name, "exp": exp, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=algorithm)


def unsigned_token(**claims: Any) -> str:
    """A token with ``alg: none`` (no signature), as a forger would send it."""
    payload = {"sub": "user-42", "name": "Ada Reader", "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, None, algorithm="none")


def rows() -> dict[str, int]:
    """How many comments, authors, audit events and reports are stored."""
    try:
        return {
            model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Comment, Author, ModerationEvent, Report)
        }
    finally:
        db.session.rollback()


def embed_post(
    client,
    site_id: int,
    body: str = "Thanks for this piece.",
    *,
    article: str = "budget-vote",
    token: str | None = None,
    origin: str | None = ORIGIN,
    ip: str = "203.0.113.7",
    **fields: Any,
):
    """POST a comment as the widget does, from ``origin`` and ``ip``."""
    headers = {}
    if origin:
        headers["Origin"] = origin
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(
        f"/v1/embed/articles/{article}/comments?site={site_id}",
        json={"body": body, **fields},
        headers=headers,
        environ_base={"REMOTE_ADDR": ip},
    )


def stored(comment_id: int) -> Comment:
    """The comment as stored now."""
    db.session.expire_all()
    return db.session.get(Comment, comment_id)

"""Erasure of an author (GDPR art. 17): bodies, names and notes go; the audit trail's shape stays.

Every comment of the author keeps its row, id, timestamps and moderation events (who moved
it where, when), so counts, stats and history still add up; what identifies or quotes the
person is replaced: the body by ERASED_BODY, the display name, notes, metadata and client
IP by nothing, in the comments and in every stored webhook payload that carried them (the
ones kept for redelivery). Comments not yet deleted become ``deleted`` through the one
status entry point, with reason ``erased``. The erasure itself is audited (a site event)
and announced (``author.erased``). Running it again erases only what arrived since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service import outbox
from service.extensions import db
from service.models import Author, Comment, SiteEvent, WebhookDelivery, utcnow
from service.moderation.locks import locked
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus

ERASED_BODY = "[erased]"
REASON = "erased"


@dataclass(frozen=True)
class Erasure:
    """What one erasure changed."""

    author: str
    erased_at: datetime
    comments: int  # comments whose body was erased now
    deliveries: int  # stored webhook payloads rewritten now


def _scrub(payload: str, ref: str) -> str | None:
    """The payload with the author's text and name removed; None when it holds none."""
    body = json.loads(payload)
    data = body.get("data") or {}
    author = data.get("author") or {}
    if author.get("id") != ref:
        return None
    author["name"] = None
    if "body" in data:
        data["body"] = ERASED_BODY
    if "note" in data and body.get("type") == "author.banned":
        data["note"] = None
    return json.dumps(body, separators=(",", ":"))


def erase(author: Author, actor: str) -> Erasure:
    """Erase ``author`` in the caller's transaction (the caller commits)."""
    now = utcnow()
    comments = locked(Comment.author_id == author.id, Comment.body != ERASED_BODY)
    for comment in comments:
        comment.body = ERASED_BODY
        comment.meta = None
        comment.client_ip = None
    author.name = None
    author.notes = None
    moderate(comments, CommentStatus.DELETED, actor=actor, reason_code=REASON)
    db.session.flush()
    deliveries = db.session.scalars(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.site_id == author.site_id,
            sa.or_(
                WebhookDelivery.comment_id.in_(
                    sa.select(Comment.id).where(Comment.author_id == author.id)
                ),
                WebhookDelivery.event_type == "author.banned",
            ),
        )
    ).all()
    rewritten = 0
    for delivery in deliveries:
        scrubbed = _scrub(delivery.payload, author.ref)
        if scrubbed is not None and scrubbed != delivery.payload:
            delivery.payload = scrubbed
            rewritten += 1
    first = author.erased_at is None
    if first or comments or rewritten:
        author.erased_at = now
        summary: dict[str, Any] = {
            "author_erased": author.ref,
            "comments": len(comments),
            "deliveries": rewritten,
        }
        db.session.add(SiteEvent(site_id=author.site_id, actor=actor, changes=summary))
        outbox.emit(
            author.site_id,
            "author.erased",
            {"author": {"id": author.ref}, "comments": len(comments), "actor": actor},
        )
    return Erasure(author.ref, author.erased_at, len(comments), rewritten)

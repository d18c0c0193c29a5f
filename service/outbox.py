"""The webhook outbox: event rows written in the same transaction as the change that causes them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.extensions import db
from service.models import Author, Comment, WebhookDelivery, WebhookEndpoint, utcnow

EVENT_TYPES = (
    "comment.created",
    "comment.approved",
    "comment.held",
    "comment.rejected",
    "comment.deleted",
    "comment.reported",
    "author.banned",
    "author.erased",
    "ping",
)
_CACHE = "civility.webhook_endpoints"


_ENDPOINTS = sa.select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
    WebhookEndpoint.site_id == sa.bindparam("site_id"), WebhookEndpoint.enabled.is_(True)
)


def _endpoints(site_id: int) -> list[tuple[int, list[str] | None]]:
    """The site's enabled endpoints as (id, event_types), cached for one transaction.

    Read with Core on the session's connection, in its transaction: asked once per
    submitted comment, where the ORM's query machinery cost several times the query.
    (So no autoflush: endpoints are never changed in a transaction that emits.)
    """
    cache = db.session.info.setdefault(_CACHE, {})
    if site_id not in cache:
        rows = db.session.connection().execute(_ENDPOINTS, {"site_id": site_id})
        cache[site_id] = [(row.id, row.event_types) for row in rows]
    return cache[site_id]


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_endpoints(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CACHE, None)


def message_id() -> str:
    """A new webhook-id: ``msg_`` and 32 hex digits."""
    return f"msg_{uuid.uuid4().hex}"


def encode(event_type: str, data: dict[str, Any]) -> str:
    """The exact body sent: ``{type, timestamp, data}`` as compact JSON."""
    body = {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), default=str)


def emit(
    site_id: int,
    event_type: str,
    data: dict[str, Any],
    *,
    comment_id: int | None = None,
    endpoint_ids: list[int] | None = None,
) -> int:
    """Add one delivery per subscribed endpoint to the caller's transaction; returns how many."""
    targets = [
        endpoint_id
        for endpoint_id, types in _endpoints(site_id)
        if (types is None or event_type in types)
        and (endpoint_ids is None or endpoint_id in endpoint_ids)
    ]
    if not targets:
        return 0
    payload = encode(event_type, data)
    for endpoint_id in targets:
        db.session.add(
            WebhookDelivery(
                message_id=message_id(),
                site_id=site_id,
                endpoint_id=endpoint_id,
                event_type=event_type,
                comment_id=comment_id,
                payload=payload,
            )
        )
    return len(targets)


def comment_data(
    comment: Comment,
    *,
    previous_status: str | None,
    actor: str,
    bulk_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What a receiver needs to act on a comment event without calling back."""
    article = comment.article
    author = comment.author
    return {
        "comment_id": comment.id,
        "article": {"ref": article.ref, "url": article.url, "title": article.title},
        "author": {"id": author.ref, "name": author.name},
        "parent_id": comment.parent_id,
        "body": comment.body,
        "status": comment.status,
        "previous_status": previous_status,
        "reasons": comment.reasons or [],
        "scores": comment.scores,
        "model": comment.model,
        "language": comment.language,
        "language_confidence": comment.language_confidence,
        "actor": actor,
        "bulk_id": bulk_id,
        "created_at": comment.created_at,
        "decided_at": comment.decided_at,
        # The X-Request-ID of its submission, as in the API's, worker's and dispatcher's logs.
        "request_id": comment.request_id,
        **extra,
    }


def comment_event(
    comment: Comment,
    *,
    previous_status: str | None,
    actor: str,
    bulk_id: str | None = None,
    **extra: Any,
) -> int:
    """Emit ``comment.<status>`` for a comment that just reached its status."""
    if not _endpoints(comment.site_id):
        return 0
    data = comment_data(
        comment, previous_status=previous_status, actor=actor, bulk_id=bulk_id, **extra
    )
    event_type = "comment.created" if previous_status is None else f"comment.{comment.status}"
    return emit(comment.site_id, event_type, data, comment_id=comment.id)


def author_banned(
    author: Author,
    *,
    actor: str,
    until: Any = None,
    note: str | None = None,
    bulk_id: str | None = None,
) -> int:
    """Emit ``author.banned``."""
    data = {
        "author": {"id": author.ref, "name": author.name},
        "status": author.status,
        "until": until,
        "note": note,
        "actor": actor,
        "bulk_id": bulk_id,
    }
    return emit(author.site_id, "author.banned", data)

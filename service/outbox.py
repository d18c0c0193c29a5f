"""The webhook outbox: event rows written in the same transaction as the change that causes them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.extensions import db
from service.models import Author, Comment, Report, WebhookDelivery, WebhookEndpoint, utcnow
from service.overlay import Overlay

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


class Moment(ma.fields.Field):
    """A date as webhook bodies write it: ``str(datetime)``, e.g. ``2026-01-02 03:04:05+00:00``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value)


class AuthorData(ma.Schema):
    id = ma.fields.String(attribute="ref")
    name = ma.fields.String(allow_none=True)


class ArticleData(ma.Schema):
    ref = ma.fields.String()
    url = ma.fields.String(allow_none=True)
    title = ma.fields.String(allow_none=True)


class CommentData(ma.Schema):
    """A comment event's ``data``: what a receiver needs to act without calling back."""

    comment_id = ma.fields.Integer(attribute="id")
    article = ma.fields.Nested(ArticleData)
    author = ma.fields.Nested(AuthorData)
    parent_id = ma.fields.Integer(allow_none=True)
    body = ma.fields.String()
    status = ma.fields.String()
    previous_status = ma.fields.String(allow_none=True)
    reasons = ma.fields.Raw()
    scores = ma.fields.Raw(allow_none=True)
    model = ma.fields.String(allow_none=True)
    language = ma.fields.String(allow_none=True)
    language_confidence = ma.fields.Float(allow_none=True)
    actor = ma.fields.String()
    bulk_id = ma.fields.String(allow_none=True)
    created_at = Moment()
    decided_at = Moment(allow_none=True)
    # The X-Request-ID of its submission, as in the API's, worker's and dispatcher's logs.
    request_id = ma.fields.String(allow_none=True)


class ReportData(ma.Schema):
    id = ma.fields.Integer()
    reason = ma.fields.String()
    note = ma.fields.String(allow_none=True)
    created_at = Moment()
    reporter_id = ma.fields.String(attribute="reporter_ref", allow_none=True)


class AuthorBanned(ma.Schema):
    author = ma.fields.Nested(AuthorData)
    status = ma.fields.String()
    until = Moment(allow_none=True)
    note = ma.fields.String(allow_none=True)
    actor = ma.fields.String()
    bulk_id = ma.fields.String(allow_none=True)


COMMENT_DATA = CommentData()
REPORT_DATA = ReportData()
AUTHOR_BANNED = AuthorBanned()


def report_data(report: Report) -> dict[str, Any]:
    """A report as a ``comment.reported`` event carries it."""
    return REPORT_DATA.dump(report)


def comment_data(
    comment: Comment,
    *,
    previous_status: str | None,
    actor: str,
    bulk_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What a receiver needs to act on a comment event without calling back."""
    event = Overlay(
        comment,
        previous_status=previous_status,
        actor=actor,
        bulk_id=bulk_id,
        reasons=comment.reasons or [],
    )
    return {**COMMENT_DATA.dump(event), **extra}


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
    event = Overlay(author, author=author, until=until, note=note, actor=actor, bulk_id=bulk_id)
    data = AUTHOR_BANNED.dump(event)
    return emit(author.site_id, "author.banned", data)

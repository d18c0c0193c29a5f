"""Rows of every kind retention prunes, made old or recent, for tests/test_retention*.py."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa

from service.extensions import db
from service.models import (
    ModerationEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from tests.review_helpers import make_comments, moderator_moves, policy_decides, set_created

NOW = utcnow()
OLD = NOW - timedelta(days=200)  # past the default 180 days of policy-only events
RECENT = NOW - timedelta(days=10)


def age(ids: list[int], when) -> None:
    """Move comments and their events back to ``when`` (events a minute apart)."""
    for comment_id in ids:
        set_created(comment_id, when)
        rows = db.session.scalars(
            sa.select(ModerationEvent).where(ModerationEvent.comment_id == comment_id)
        ).all()
        for n, event in enumerate(sorted(rows, key=lambda e: e.id)):
            event.created_at = when + timedelta(minutes=n)
    db.session.commit()


def event_ids(comment_ids: list[int]) -> set[int]:
    query = sa.select(ModerationEvent.id).where(ModerationEvent.comment_id.in_(comment_ids))
    return set(db.session.scalars(query))


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def arrive(site, ids: list[int]) -> None:
    """The arrival events the submission writes (make_comments inserts rows only)."""
    for comment_id in ids:
        db.session.add(ModerationEvent(site_id=site.id, comment_id=comment_id,
                                       to_status="pending", actor="site-key"))  # fmt: skip
    db.session.commit()


def make_audit(site) -> dict[str, list[int]]:
    """Old and recent comments, decided by the policy only or also by a moderator."""
    made = {}
    for name, when in (("old", OLD), ("recent", RECENT)):
        policy_only = make_comments(site.id, 3, author=f"{name}-reader")
        arrive(site, policy_only)
        policy_decides(policy_only, "approved")
        moderated = make_comments(site.id, 2, author=f"{name}-troll")
        arrive(site, moderated)
        policy_decides(moderated, "held")
        moderator_moves(moderated, "rejected", actor="mod-a")
        age(policy_only + moderated, when)
        made[name] = policy_only
        made[f"{name}_moderated"] = moderated
    return made


def make_endpoint(site) -> int:
    """A webhook endpoint of ``site`` (nothing is sent to it: rows are made directly)."""
    row = WebhookEndpoint(site_id=site.id, url="https://hooks.example/x", secret="whsec_x")
    db.session.add(row)
    db.session.commit()
    return row.id


def delivery(site, endpoint: int, status: str, when, attempts: int = 2) -> int:
    row = WebhookDelivery(message_id=f"msg_{secrets.token_hex(8)}", site_id=site.id,
                          endpoint_id=endpoint, event_type="comment.approved", payload="{}",
                          status=status, created_at=when,
                          delivered_at=when if status == "succeeded" else None)  # fmt: skip
    db.session.add(row)
    db.session.flush()
    for n in range(attempts):
        db.session.add(WebhookAttempt(delivery_id=row.id, attempt=n + 1, status_code=500,
                                      created_at=when + timedelta(minutes=n)))  # fmt: skip
    db.session.commit()
    return row.id

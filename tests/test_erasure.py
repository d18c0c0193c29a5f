"""DELETE /v1/authors/{ref}: a reader is forgotten everywhere, the audit trail keeps its shape."""

from __future__ import annotations

import json

import sqlalchemy as sa

from service.extensions import db
from service.models import (
    Author,
    Comment,
    ModerationEvent,
    SiteEvent,
    WebhookDelivery,
)
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus

SECRET_TEXT = "My address is 12 Elm Street"


def test_erasure_removes_bodies_and_names_everywhere_and_keeps_the_audit(app, client, site, submit):
    admin = site.auth("admin")
    assert (
        client.post(
            "/v1/webhooks", json={"url": "https://93.184.216.34/hook"}, headers=admin
        ).status_code
        == 201
    )
    first = submit(body=SECRET_TEXT, author="reader-9").get_json()["id"]
    second = submit(body="Another thought", author="reader-9").get_json()["id"]
    other = submit(body="Someone else", author="reader-1").get_json()["id"]
    moderate(db.session.get(Comment, first), CommentStatus.APPROVED, actor="policy")
    db.session.commit()
    client.patch("/v1/authors/reader-9", json={"note": "lives nearby"}, headers=admin)
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(ModerationEvent))

    answer = client.delete("/v1/authors/reader-9", headers=admin)
    assert answer.status_code == 200, answer.get_json()
    done = answer.get_json()
    assert (done["author"], done["comments"]) == ("reader-9", 2)
    assert done["deliveries"] >= 2

    for comment_id in (first, second):
        comment = db.session.get(Comment, comment_id)
        assert comment.body == "[erased]" and comment.status == CommentStatus.DELETED
    assert db.session.get(Comment, other).body == "Someone else"
    author = db.session.scalar(sa.select(Author).where(Author.ref == "reader-9"))
    assert author.name is None and author.notes is None and author.erased_at is not None
    # Every stored payload, kept for redelivery, forgot them too.
    payloads = db.session.scalars(sa.select(WebhookDelivery.payload)).all()
    assert not [p for p in payloads if SECRET_TEXT in p or "Reader-9" in p]
    assert any(json.loads(p)["type"] == "author.erased" for p in payloads)
    # The history keeps its shape: every earlier event, plus one "deleted" per comment.
    events = db.session.scalars(
        sa.select(ModerationEvent).where(ModerationEvent.comment_id == first)
    ).all()
    assert [e.to_status for e in events] == ["pending", "approved", "deleted"]
    assert events[-1].reason_code == "erased"
    after = db.session.scalar(sa.select(sa.func.count()).select_from(ModerationEvent))
    assert after == events_before + 2
    audit = db.session.scalars(sa.select(SiteEvent.changes)).all()
    assert {"author_erased": "reader-9", "comments": 2, "deliveries": done["deliveries"]} in audit
    # Readers no longer see it; the site's own read says it is erased.
    shown = client.get(f"/v1/comments/{first}", headers=site.auth()).get_json()
    assert shown["body"] == "[erased]" and shown["author"]["name"] is None


def test_erasure_is_idempotent_and_admin_only(client, site, submit, other_site):
    submit(body=SECRET_TEXT, author="reader-9")
    assert client.delete("/v1/authors/reader-9", headers=site.auth("moderator")).status_code == 403
    assert (
        client.delete("/v1/authors/reader-9", headers=other_site.auth("admin")).status_code == 404
    )
    first = client.delete("/v1/authors/reader-9", headers=site.auth("admin")).get_json()
    again = client.delete("/v1/authors/reader-9", headers=site.auth("admin"))
    assert again.status_code == 200
    assert again.get_json()["comments"] == 0 and again.get_json()["erased_at"] == first["erased_at"]
    audits = db.session.scalar(sa.select(sa.func.count()).select_from(SiteEvent))
    assert audits == 1  # nothing new to erase: nothing new audited
    assert client.delete("/v1/authors/nobody", headers=site.auth("admin")).status_code == 404

"""GET/PATCH /v1/authors/{ref}: status, suspensions that expire, notes, bans that reject."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Author, WebhookDelivery, WebhookEndpoint, utcnow
from tests.review_helpers import make_comments, policy_decides, statuses


def get_author(client, site, ref="reader-1", role="moderator"):
    return client.get(f"/v1/authors/{ref}", headers=site.auth(role))


def patch_author(client, site, ref="reader-1", role="moderator", **body):
    return client.patch(f"/v1/authors/{ref}", json=body, headers=site.auth(role))


def stored(ref="reader-1") -> Author:
    db.session.expire_all()
    return db.session.scalar(sa.select(Author).where(Author.ref == ref))


def test_author_shows_status_counts_and_recent_comments_newest_first(client, site):
    ids = make_comments(site.id, 25)
    policy_decides(ids[:2], "approved")
    policy_decides(ids[2:3], "rejected")
    policy_decides(ids[3:5], "held")
    answer = get_author(client, site)
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["id"], body["status"], body["until"], body["notes"]) == (
        "reader-1",
        "active",
        None,
        None,
    )
    assert (body["approved_count"], body["rejected_count"]) == (2, 1)
    assert body["counts"] == {
        "pending": 20,
        "approved": 2,
        "held": 2,
        "rejected": 1,
        "deleted": 0,
    }
    assert [c["id"] for c in body["recent_comments"]] == ids[::-1][:20]
    assert body["recent_comments"][0]["article"] == "article-1"


def site_author(site, ref) -> Author | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Author).where(Author.site_id == site.id, Author.ref == ref))


def test_unknown_and_other_sites_authors_are_404(client, site, other_site):
    make_comments(site.id, 1, author="kim")
    assert get_author(client, site, "nobody").status_code == 404
    assert get_author(client, other_site, "kim", role="admin").status_code == 404
    # A PATCH from another site acts on that site's own "kim" (made now), never on this one.
    answer = patch_author(client, other_site, "kim", role="admin", status="banned")
    assert answer.status_code == 200
    assert site_author(site, "kim").status == "active"
    assert site_author(other_site, "kim").status == "banned"


def test_an_author_can_be_banned_before_their_first_comment(client, site, submit):
    db.session.add(WebhookEndpoint(site_id=site.id, url="https://hooks.example/x", secret="s"))
    db.session.commit()
    assert site_author(site, "spammer") is None
    answer = patch_author(client, site, "spammer", status="banned", note="Known spammer")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["id"], body["status"], body["counts"]["pending"]) == ("spammer", "banned", 0)
    assert body["notes"].endswith("Known spammer")
    assert get_author(client, site, "spammer").get_json()["status"] == "banned"
    banned = db.session.scalar(
        sa.select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "author.banned")
    )
    assert json.loads(banned)["data"]["author"]["id"] == "spammer"
    # Their first comment is theirs: the same row, still banned.
    before = site_author(site, "spammer").id
    submitted = submit(author="spammer")
    assert submitted.status_code == 202, submitted.get_json()
    author = site_author(site, "spammer")
    assert (author.id, author.status, author.name) == (before, "banned", "Spammer")


def test_a_bad_patch_of_an_unknown_author_creates_nothing(client, site):
    answer = patch_author(client, site, "ghost", status="trusted", until="2999-01-01T00:00:00Z")
    assert answer.status_code == 422
    assert site_author(site, "ghost") is None


def test_status_changes_and_notes_are_appended_never_replaced(client, site):
    make_comments(site.id, 1)
    until = (utcnow() + timedelta(days=7)).replace(microsecond=0)
    answer = patch_author(
        client, site, status="premod", until=until.isoformat(), note="Rude in three threads."
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "premod"
    assert body["until"] == until.isoformat()
    patch_author(client, site, note="Apologised.")
    lines = stored().notes.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(
        f"Example News-moderator: status premod until {until.isoformat(timespec='seconds')}"
    )
    assert lines[1].endswith("Example News-moderator: Rude in three threads.")
    assert lines[2].endswith("Apologised.")
    # A new status without `until` is permanent.
    patch_author(client, site, status="trusted")
    assert (stored().status, stored().status_until) == ("trusted", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "banned", "until": "2000-01-01T00:00:00Z"}, "until"),
        ({"status": "trusted", "until": "2999-01-01T00:00:00Z"}, "until"),
        ({"until": "2999-01-01T00:00:00Z"}, "until"),
        ({"status": "premod", "reject_existing": True}, "reject_existing"),
        ({"status": "superuser"}, "status"),
        ({"note": ""}, "note"),
        ({"notes": "replace"}, "notes"),
    ],
)
def test_bad_author_changes_answer_422_naming_the_field(client, site, body, field):
    make_comments(site.id, 1)
    answer = patch_author(client, site, **body)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["errors"]["json"]
    assert stored().status == "active"


def test_a_suspension_expires_by_itself_at_until(client, site):
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "held")
    until = utcnow() + timedelta(hours=1)
    patch_author(client, site, status="banned", until=until.isoformat())
    assert get_author(client, site).get_json()["status"] == "banned"

    author = stored()
    author.status_until = utcnow() - timedelta(seconds=1)  # an hour later
    db.session.commit()
    item = client.get("/v1/queue", headers=site.auth("moderator")).get_json()["items"][0]
    assert item["author"]["status"] == "active"
    body = get_author(client, site).get_json()
    assert (body["status"], body["until"]) == ("active", None)
    assert (stored().status, stored().status_until) == ("active", None)


def test_ban_with_reject_existing_rejects_live_comments_as_one_undoable_bulk(client, site):
    db.session.add(WebhookEndpoint(site_id=site.id, url="https://hooks.example/x", secret="s"))
    db.session.commit()
    ids = make_comments(site.id, 5)
    others = make_comments(site.id, 1, author="someone-else")
    policy_decides(ids[:2], "approved")
    policy_decides(ids[2:3], "held")
    policy_decides(ids[3:4], "rejected")
    policy_decides(others, "approved")
    before = statuses(ids)

    answer = patch_author(client, site, status="banned", reject_existing=True, note="Spam wave")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "banned"
    assert (body["bulk"]["matched"], body["bulk"]["changed"]) == (4, 4)
    assert set(statuses(ids).values()) == {"rejected"}
    assert statuses(others) == {others[0]: "approved"}
    assert (body["approved_count"], body["rejected_count"]) == (0, 5)

    banned = db.session.scalar(
        sa.select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "author.banned")
    )
    data = json.loads(banned)["data"]
    assert (data["author"]["id"], data["bulk_id"], data["note"]) == (
        "reader-1",
        body["bulk"]["bulk_id"],
        "Spam wave",
    )

    undone = client.post(
        f"/v1/decisions/bulk/{body['bulk']['bulk_id']}/undo", headers=site.auth("moderator")
    )
    assert undone.get_json()["changed"] == 3  # the pending one cannot go back to pending
    assert statuses(ids) == {**before, ids[4]: "rejected"}
    assert stored().status == "banned"  # undo restores comments, not the author


def test_a_ban_without_reject_existing_leaves_comments_alone(client, site):
    ids = make_comments(site.id, 2)
    policy_decides(ids, "approved")
    body = patch_author(client, site, status="banned").get_json()
    assert "bulk" not in body
    assert set(statuses(ids).values()) == {"approved"}

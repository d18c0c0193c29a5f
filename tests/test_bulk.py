"""Bulk decisions: dry runs, chunked transactions, limits, undo, isolation, one event per change."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.extensions import db
from service.models import BulkAction, ModerationEvent, Report, Site
from tests.review_helpers import events, make_comments, moderator_moves, policy_decides, statuses


def bulk(client, site, role="moderator", **body):
    return client.post("/v1/decisions/bulk", json=body, headers=site.auth(role))


def undo(client, site, bulk_id, role="moderator"):
    return client.post(f"/v1/decisions/bulk/{bulk_id}/undo", headers=site.auth(role))


def bulk_events(bulk_id: str) -> list[ModerationEvent]:
    return list(
        db.session.scalars(
            sa.select(ModerationEvent)
            .where(ModerationEvent.bulk_id == bulk_id)
            .order_by(ModerationEvent.id)
        )
    )


@contextlib.contextmanager
def counting_commits() -> Iterator[list[int]]:
    """Count database commits made meanwhile (each is one transaction)."""
    commits: list[int] = []

    def count(session: Session) -> None:
        commits.append(1)

    sa.event.listen(Session, "after_commit", count)
    try:
        yield commits
    finally:
        sa.event.remove(Session, "after_commit", count)


@pytest.fixture
def mixed(site):
    """Nine comments of one article in every status: 3 held, 2 approved, 2 rejected, ..."""
    ids = make_comments(site.id, 9)
    policy_decides(ids[0:3], "held")
    policy_decides(ids[3:5], "approved")
    policy_decides(ids[5:7], "rejected")
    moderator_moves(ids[7:8], "deleted")
    return ids  # ids[8] stays pending


def test_dry_run_counts_exactly_what_the_real_run_changes(client, site, mixed):
    before, events_before = statuses(mixed), len(events())
    dry = bulk(client, site, ids=mixed, decision="reject", dry_run=True)
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json() == {
        "bulk_id": None,
        "dry_run": True,
        "decision": "rejected",
        "matched": 9,
        "changed": 6,
    }
    assert (statuses(mixed), len(events())) == (before, events_before)

    real = bulk(client, site, ids=mixed, decision="reject", reason_code="spam", note="raid")
    body = real.get_json()
    assert (body["matched"], body["changed"], body["status"]) == (9, 6, "done")
    moved = bulk_events(body["bulk_id"])
    assert len(moved) == 6
    assert {e.comment_id for e in moved} == {
        c for c, s in before.items() if s not in ("rejected", "deleted")
    }
    assert {(e.actor, e.reason_code, e.note) for e in moved} == {
        ("Example News-moderator", "spam", "raid")
    }
    after = statuses(mixed)
    assert after[mixed[7]] == "deleted"
    assert {s for c, s in after.items() if c != mixed[7]} == {"rejected"}


def test_dry_run_by_filter_equals_the_real_run(client, site):
    first = make_comments(site.id, 4, article="a1")
    second = make_comments(site.id, 2, article="a2")
    policy_decides(first[:3] + second, "held", scores={"toxicity": 0.9})
    policy_decides(first[3:], "held", scores={"toxicity": 0.2})
    selection = {"article": "a1", "label": "toxicity", "min_score": 0.5}
    dry = bulk(client, site, filter=selection, decision="reject", dry_run=True).get_json()
    real = bulk(client, site, filter=selection, decision="reject").get_json()
    assert (dry["matched"], dry["changed"]) == (real["matched"], real["changed"]) == (3, 3)
    assert statuses(first + second) == {
        **dict.fromkeys(first[:3], "rejected"),
        first[3]: "held",
        **dict.fromkeys(second, "held"),
    }
    record = client.get(f"/v1/decisions/bulk/{real['bulk_id']}", headers=site.auth("moderator"))
    assert record.get_json()["selection"] == {
        "filter": {"status": "held", **selection},
    }


def test_a_bulk_decision_resolves_the_reports_of_the_comments_it_moves(client, site):
    ids = make_comments(site.id, 2)
    policy_decides(ids, "held")
    for comment_id in ids:
        client.post(
            f"/v1/comments/{comment_id}/reports", json={"reason": "spam"}, headers=site.auth()
        )
    bulk(client, site, ids=ids[:1], decision="reject")
    open_by_comment = dict(
        db.session.execute(
            sa.select(Report.comment_id, Report.resolved_at.is_(None)).order_by(Report.id)
        ).all()
    )
    assert open_by_comment == {ids[0]: False, ids[1]: True}


@pytest.fixture
def small_chunks(config):
    config["BULK_CHUNK_SIZE"] = 100
    return config


def test_thousands_change_in_chunked_transactions_with_one_event_each_and_undo(
    small_chunks, client, site
):
    ids = make_comments(site.id, 1500)
    policy_decides(ids, "held")
    with counting_commits() as commits:
        answer = bulk(client, site, filter={"status": "held"}, decision="reject")
    body = answer.get_json()
    assert (body["matched"], body["changed"]) == (1500, 1500)
    # 15 chunks, plus the BulkAction's start and finish.
    assert len(commits) >= 15
    moved = bulk_events(body["bulk_id"])
    assert len(moved) == 1500
    assert sorted(e.comment_id for e in moved) == ids
    assert set(statuses(ids).values()) == {"rejected"}

    restored = undo(client, site, body["bulk_id"]).get_json()
    assert (restored["matched"], restored["changed"], restored["skipped"]) == (1500, 1500, 0)
    assert len(bulk_events(restored["bulk_id"])) == 1500
    assert set(statuses(ids).values()) == {"held"}


def test_undo_restores_exactly_the_previous_statuses_and_skips_later_changes(client, site, mixed):
    before = statuses(mixed)
    action = bulk(client, site, ids=mixed, decision="reject").get_json()
    # Since the bulk: one is approved again by hand, one deleted.
    moderator_moves([mixed[0]], "approved")
    moderator_moves([mixed[1]], "deleted")

    answer = undo(client, site, action["bulk_id"])
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["undo_of"] == action["bulk_id"]
    assert body["decision"] == "undo"
    # 6 moved; 2 changed since, and the pending one cannot go back to pending.
    assert (body["matched"], body["changed"], body["skipped"]) == (6, 3, 3)
    after = statuses(mixed)
    assert after == {
        **before,
        mixed[0]: "approved",
        mixed[1]: "deleted",
        mixed[8]: "rejected",
    }
    restores = bulk_events(body["bulk_id"])
    assert {(e.from_status, e.to_status) for e in restores} == {
        ("rejected", "held"),
        ("rejected", "approved"),
    }
    assert {(e.actor, e.reason_code) for e in restores} == {("Example News-moderator", "undo")}
    original = client.get(
        f"/v1/decisions/bulk/{action['bulk_id']}", headers=site.auth("moderator")
    ).get_json()
    assert original["status"] == "undone"
    assert original["undone_by"] == "Example News-moderator"


def test_a_second_undo_and_the_undo_of_an_undo_answer_409(client, site, mixed):
    action = bulk(client, site, ids=mixed, decision="approve").get_json()
    first = undo(client, site, action["bulk_id"])
    assert first.status_code == 200
    events_before = len(events())
    second = undo(client, site, action["bulk_id"])
    assert second.status_code == 409
    assert second.get_json()["bulk_status"] == "undone"
    assert undo(client, site, first.get_json()["bulk_id"]).status_code == 409
    assert len(events()) == events_before


@pytest.fixture
def bulk_max_3(config):
    config["BULK_MAX"] = 3
    return config


@pytest.mark.parametrize("dry_run", [True, False])
def test_more_matches_than_the_limit_answer_422_naming_the_selection(
    bulk_max_3, client, site, dry_run
):
    ids = make_comments(site.id, 4)
    policy_decides(ids, "held")
    by_filter = bulk(client, site, filter={}, decision="reject", dry_run=dry_run)
    assert by_filter.status_code == 422
    assert by_filter.get_json()["matched"] == 4
    assert "filter" in by_filter.get_json()["errors"]["json"]
    by_ids = bulk(client, site, ids=ids, decision="reject", dry_run=dry_run)
    assert by_ids.status_code == 422
    assert "ids" in by_ids.get_json()["errors"]["json"]
    assert set(statuses(ids).values()) == {"held"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(BulkAction)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "reject"}, "filter"),
        ({"decision": "reject", "ids": [1], "filter": {}}, "filter"),
        ({"decision": "reject", "ids": []}, "ids"),
        ({"decision": "reject", "ids": ["1"]}, "ids"),
        ({"decision": "reject", "filter": {"label": "nope"}}, "filter"),
        ({"decision": "reject", "filter": {"min_score": 0.9, "max_score": 0.1}}, "filter"),
        ({"decision": "maybe", "filter": {}}, "decision"),
        ({"decision": "reject", "filter": {}, "reason_code": "meh"}, "reason_code"),
    ],
)
def test_bad_bulk_requests_answer_422_naming_the_field(client, site, body, field):
    answer = bulk(client, site, **body)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["errors"]["json"]


def test_another_sites_comments_and_bulk_actions_are_out_of_reach(client, site, other_site):
    mine = make_comments(site.id, 2, body="Secret {i}")
    theirs = make_comments(other_site.id, 1)
    policy_decides(mine + theirs, "held")
    action = bulk(client, site, ids=mine[:1], decision="reject").get_json()

    wrong_ids = bulk(client, other_site, ids=mine[1:] + theirs, decision="reject")
    assert wrong_ids.status_code == 422
    assert str(mine[1]) in wrong_ids.get_json()["message"]
    everything = bulk(client, other_site, filter={}, decision="reject").get_json()
    assert (everything["matched"], everything["changed"]) == (1, 1)
    for answer in (
        client.get(f"/v1/decisions/bulk/{action['bulk_id']}", headers=other_site.auth("admin")),
        undo(client, other_site, action["bulk_id"], role="admin"),
    ):
        assert answer.status_code == 404
        assert "Secret" not in answer.get_data(as_text=True)
    assert statuses(mine + theirs) == {mine[0]: "rejected", mine[1]: "held", theirs[0]: "rejected"}


def test_every_state_change_leaves_exactly_one_event(client, site):
    db.session.get(Site, site.id).requeue_reports = 1
    db.session.commit()
    ids = make_comments(site.id, 6)

    def act(action) -> None:
        before, count = statuses(ids), len(events())
        action()
        after = statuses(ids)
        new = events()[count:]
        changed = {c: (before[c], after[c]) for c in ids if before[c] != after[c]}
        assert sorted((e.comment_id, (e.from_status, e.to_status)) for e in new) == sorted(
            changed.items()
        )

    mod = site.auth("moderator")
    act(lambda: policy_decides(ids[:3], "held"))
    act(lambda: policy_decides(ids[3:], "approved"))
    act(
        lambda: client.post(
            f"/v1/comments/{ids[0]}/decision", json={"decision": "approve"}, headers=mod
        )
    )
    act(
        lambda: client.post(
            f"/v1/comments/{ids[0]}/decision", json={"decision": "approve"}, headers=mod
        )
    )
    act(
        lambda: client.post(
            f"/v1/comments/{ids[3]}/reports", json={"reason": "spam"}, headers=site.auth()
        )
    )
    action = {}
    act(lambda: action.update(bulk(client, site, ids=ids, decision="reject").get_json()))
    act(lambda: client.delete(f"/v1/comments/{ids[1]}", headers=site.auth()))
    act(lambda: undo(client, site, action["bulk_id"]))
    act(
        lambda: client.patch(
            "/v1/authors/reader-1",
            json={"status": "banned", "reject_existing": True},
            headers=mod,
        )
    )


def test_a_moderator_works_an_article_from_queue_to_ban_through_the_api(client, site, submit):
    mod = site.auth("moderator")
    toxic = [submit(body=f"Toxic {i}", author="troll").get_json()["id"] for i in range(3)]
    mild = [submit(body=f"Mild {i}", author="kim").get_json()["id"] for i in range(2)]
    policy_decides(toxic, "held", scores={"toxicity": 0.93, "insult": 0.4})
    policy_decides(mild, "held", scores={"toxicity": 0.61, "insult": 0.1})
    worst = {"article": "article-1", "label": "toxicity", "min_score": 0.9}

    page = client.get("/v1/queue", query_string={**worst, "sort": "-score"}, headers=mod)
    assert sorted(item["id"] for item in page.get_json()["items"]) == toxic
    dry = bulk(client, site, filter=worst, decision="reject", dry_run=True).get_json()
    action = bulk(client, site, filter=worst, decision="reject", reason_code="abusive").get_json()
    assert dry["changed"] == action["changed"] == 3
    assert undo(client, site, action["bulk_id"]).status_code == 200
    assert set(statuses(toxic).values()) == {"held"}
    ban = client.patch(
        "/v1/authors/troll", json={"status": "banned", "reject_existing": True}, headers=mod
    )
    assert ban.get_json()["bulk"]["changed"] == 3

    history = client.get(f"/v1/comments/{toxic[0]}/history", headers=mod).get_json()["items"]
    assert [(e["to_status"], e["actor"], e["reason_code"]) for e in history] == [
        ("pending", "Example News-site", None),
        ("held", "policy", "toxicity"),
        ("rejected", "Example News-moderator", "abusive"),
        ("held", "Example News-moderator", "undo"),
        ("rejected", "Example News-moderator", "author_banned"),
    ]
    assert set(statuses(mild).values()) == {"held"}

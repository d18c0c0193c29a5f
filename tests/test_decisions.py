"""One comment at a time: decisions, races (409), the audit trail, and report requeues."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Report, Site, WebhookDelivery, WebhookEndpoint
from tests.review_helpers import events, make_comments, policy_decides, statuses


def decide(client, site, comment_id, role="moderator", **body):
    return client.post(f"/v1/comments/{comment_id}/decision", json=body, headers=site.auth(role))


def report(client, site, comment_id, reporter):
    answer = client.post(
        f"/v1/comments/{comment_id}/reports",
        json={"reason": "abusive", "reporter_id": reporter},
        headers=site.auth(),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def open_reports(comment_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Report)
        .where(Report.comment_id == comment_id, Report.resolved_at.is_(None))
    )


@pytest.mark.parametrize(("decision", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_decision_moves_a_held_comment_audits_it_and_resolves_its_reports(
    client, site, decision, status
):
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "held")
    report(client, site, comment_id, "r1")

    answer = decide(
        client, site, comment_id, decision=decision, reason_code="spam", note="looked at it"
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["changed"], body["resolved_reports"]) == (True, 1)
    assert body["comment"]["status"] == status
    assert body["comment"]["decided_by"] == "Example News-moderator"
    assert body["comment"]["reports"] == []
    last = events(comment_id)[-1]
    assert (last.from_status, last.to_status, last.actor) == (
        "held",
        status,
        "Example News-moderator",
    )
    assert (last.reason_code, last.note, last.bulk_id) == ("spam", "looked at it", None)
    resolved = db.session.scalar(sa.select(Report).where(Report.comment_id == comment_id))
    assert resolved.resolved_by == "Example News-moderator"


def test_stale_expected_status_answers_409_with_the_current_status(client, site):
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "held")
    first = decide(client, site, comment_id, decision="approve", expected_status="held")
    assert first.status_code == 200
    before = len(events(comment_id))

    second = decide(client, site, comment_id, decision="reject", expected_status="held")
    assert second.status_code == 409
    assert second.get_json()["current_status"] == "approved"
    assert statuses([comment_id]) == {comment_id: "approved"}
    assert len(events(comment_id)) == before


def test_two_moderators_racing_on_one_comment_never_overwrite_each_other(app, client, site):
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "held")
    start = threading.Barrier(2)
    answers = {}

    def moderate(decision: str) -> None:
        # Each thread is its own request with its own app context, session and connection.
        with app.test_client() as own:
            start.wait()
            answers[decision] = decide(
                own, site, comment_id, decision=decision, expected_status="held"
            ).status_code

    threads = [threading.Thread(target=moderate, args=(d,)) for d in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers.values()) == [200, 409]
    winner = next(d for d, code in answers.items() if code == 200)
    assert statuses([comment_id]) == {
        comment_id: {"approve": "approved", "reject": "rejected"}[winner]
    }
    assert len(events(comment_id)) == 2


def test_deciding_the_status_a_comment_already_has_changes_nothing(client, site):
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "held")
    before = len(events(comment_id))
    answer = decide(client, site, comment_id, decision="hold", expected_status="held")
    assert answer.status_code == 200
    assert answer.get_json()["changed"] is False
    assert len(events(comment_id)) == before


def test_moderators_can_override_both_ways_and_decide_pending_comments(client, site):
    ids = make_comments(site.id, 2)
    policy_decides(ids[:1], "approved")
    assert decide(client, site, ids[0], decision="reject").get_json()["changed"]
    assert decide(client, site, ids[0], decision="approve").get_json()["changed"]
    assert decide(client, site, ids[0], decision="hold").get_json()["changed"]
    assert decide(client, site, ids[1], decision="reject").status_code == 200
    assert statuses(ids) == {ids[0]: "held", ids[1]: "rejected"}


def test_a_deleted_comment_refuses_reports_with_409_and_its_status(client, site):
    [comment_id] = make_comments(site.id)
    client.delete(f"/v1/comments/{comment_id}", headers=site.auth())
    answer = client.post(
        f"/v1/comments/{comment_id}/reports", json={"reason": "spam"}, headers=site.auth()
    )
    assert answer.status_code == 409
    assert answer.get_json()["current_status"] == "deleted"
    assert open_reports(comment_id) == 0


def test_a_deleted_comment_cannot_be_decided(client, site):
    [comment_id] = make_comments(site.id)
    client.delete(f"/v1/comments/{comment_id}", headers=site.auth())
    answer = decide(client, site, comment_id, decision="approve")
    assert answer.status_code == 409
    assert answer.get_json()["current_status"] == "deleted"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "publish"}, "decision"),
        ({}, "decision"),
        ({"decision": "reject", "reason_code": "rude"}, "reason_code"),
        ({"decision": "reject", "expected_status": "gone"}, "expected_status"),
        ({"decision": "reject", "note": "x" * 2001}, "note"),
    ],
)
def test_bad_decisions_answer_422_naming_the_field(client, site, body, field):
    [comment_id] = make_comments(site.id)
    answer = decide(client, site, comment_id, **body)
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]["json"]


def test_another_sites_moderator_gets_404_and_changes_nothing(client, site, other_site):
    [comment_id] = make_comments(site.id, body="Secret")
    policy_decides([comment_id], "held")
    for path, method in (("decision", "post"), ("history", "get")):
        answer = getattr(client, method)(
            f"/v1/comments/{comment_id}/{path}",
            json={"decision": "approve"} if method == "post" else None,
            headers=other_site.auth("admin"),
        )
        assert answer.status_code == 404
        assert "Secret" not in answer.get_data(as_text=True)
    assert statuses([comment_id]) == {comment_id: "held"}


def test_history_lists_every_event_oldest_first_with_the_policys_scores(client, site, submit):
    comment_id = submit().get_json()["id"]
    policy_decides([comment_id], "held", scores={"toxicity": 0.7})
    decide(client, site, comment_id, decision="reject", reason_code="abusive", note="rude")
    answer = client.get(f"/v1/comments/{comment_id}/history", headers=site.auth("moderator"))
    assert answer.status_code == 200
    items = answer.get_json()["items"]
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in items] == [
        (None, "pending", "Example News-site"),
        ("pending", "held", "policy"),
        ("held", "rejected", "Example News-moderator"),
    ]
    assert items[1]["scores"] == {"toxicity": 0.7}
    assert items[1]["model"] == "test-model@1"
    assert items[1]["reasons"][0]["code"] == "toxicity"
    assert (items[2]["reason_code"], items[2]["note"], items[2]["scores"]) == (
        "abusive",
        "rude",
        None,
    )


def set_requeue(site, n: int) -> None:
    db.session.get(Site, site.id).requeue_reports = n
    db.session.commit()


def test_reports_reaching_the_threshold_send_an_approved_comment_back_to_held(client, site):
    set_requeue(site, 2)
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "approved", reasons=[{"code": "trusted_author"}])
    report(client, site, comment_id, "r1")
    report(client, site, comment_id, "r1")  # the same reader's open report counts once
    assert statuses([comment_id]) == {comment_id: "approved"}

    report(client, site, comment_id, "r2")
    assert statuses([comment_id]) == {comment_id: "held"}
    last = events(comment_id)[-1]
    assert (last.from_status, last.to_status, last.actor, last.reason_code) == (
        "approved",
        "held",
        "Example News-site",
        "reported",
    )
    page = client.get(
        "/v1/queue", query_string={"reason": "reported"}, headers=site.auth("moderator")
    ).get_json()
    [item] = page["items"]
    assert [r["code"] for r in item["reasons"]] == ["trusted_author", "reported"]
    assert len(item["reports"]) == 2

    report(client, site, comment_id, "r3")  # already held: no second move
    assert [e.to_status for e in events(comment_id)] == ["approved", "held"]


def test_a_moderator_approval_resolves_reports_so_requeueing_needs_new_ones(client, site):
    set_requeue(site, 1)
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "approved")
    report(client, site, comment_id, "r1")
    assert statuses([comment_id]) == {comment_id: "held"}
    decide(client, site, comment_id, decision="approve")
    assert open_reports(comment_id) == 0
    report(client, site, comment_id, "r1")
    assert statuses([comment_id]) == {comment_id: "held"}
    reasons = events(comment_id)[-1].reasons
    assert [r["code"] for r in reasons].count("reported") == 1


@pytest.mark.parametrize(("threshold", "status"), [(0, "approved"), (1, "held")])
def test_requeue_never_happens_when_the_setting_is_zero(client, site, threshold, status):
    set_requeue(site, threshold)
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "approved")
    report(client, site, comment_id, "r1")
    assert statuses([comment_id]) == {comment_id: status}


def test_reports_on_held_or_rejected_comments_move_nothing(client, site):
    set_requeue(site, 1)
    ids = make_comments(site.id, 2)
    policy_decides(ids[:1], "held")
    policy_decides(ids[1:], "rejected")
    for comment_id in ids:
        report(client, site, comment_id, "r1")
    assert statuses(ids) == {ids[0]: "held", ids[1]: "rejected"}


def test_every_report_emits_a_comment_reported_webhook(client, site):
    set_requeue(site, 1)
    db.session.add(WebhookEndpoint(site_id=site.id, url="https://hooks.example/x", secret="s"))
    db.session.commit()
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "approved")
    report(client, site, comment_id, "r1")
    types = db.session.scalars(
        sa.select(WebhookDelivery.event_type).order_by(WebhookDelivery.id)
    ).all()
    assert types[-2:] == ["comment.reported", "comment.held"]
    reported = db.session.scalar(
        sa.select(WebhookDelivery.payload).where(WebhookDelivery.event_type == "comment.reported")
    )
    assert '"reporter_id":"r1"' in reported


def test_holding_a_comment_keeps_its_reports_open(client, site):
    set_requeue(site, 0)
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "approved")
    report(client, site, comment_id, "r1")
    answer = decide(client, site, comment_id, decision="hold")
    assert (answer.get_json()["changed"], answer.get_json()["resolved_reports"]) == (True, 0)
    assert open_reports(comment_id) == 1


def test_only_a_review_resolves_reports_whatever_the_decision_records(client, site):
    # moderate() also records what a moderator's decision departs from; that must not
    # stand in for the caller's ``review`` (a name it once shadowed).
    from service.models import Comment
    from service.moderation.moderate import moderate
    from service.moderation.states import CommentStatus

    set_requeue(site, 0)
    first, second = make_comments(site.id, 2)
    policy_decides([first, second], "held")
    report(client, site, first, "r1")
    report(client, site, second, "r2")
    moderate(db.session.get(Comment, first), CommentStatus.APPROVED, actor="mod")
    moderate(db.session.get(Comment, second), CommentStatus.APPROVED, actor="mod", review=True)
    db.session.commit()
    assert (open_reports(first), open_reports(second)) == (1, 0)

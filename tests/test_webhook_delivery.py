"""Delivering webhooks to a real local receiver: signatures, subscriptions, rotation, retries,
two dispatchers, crashes, and an event for every state change (failures: test_webhook_failures)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import standardwebhooks
import svix.webhooks
from werkzeug import Response

from service.extensions import db
from service.models import WebhookEndpoint, utcnow
from service.moderation.states import CommentStatus
from tests.webhook_helpers import (
    REASONS,
    SCORES,
    DispatcherProcess,
    attempt_codes,
    create_endpoint,
    deliveries,
    dispatch,
    emit_events,
    policy_decides,
)
from tests.worker_helpers import wait_for
from workers.dispatcher import Dispatcher

pytestmark = pytest.mark.usefixtures("fast_webhooks")


def test_every_comment_outcome_reaches_the_receiver_verified_and_self_contained(
    app, client, site, submit, receiver
):
    secret = create_endpoint(client, site, receiver.url)["secret"]
    client.put(
        "/v1/articles/article-1",
        json={"url": "https://news.example/a1", "title": "A1"},
        headers=site.auth(),
    )
    approved, held, rejected = (submit(body=f"Comment {n}").get_json()["id"] for n in range(3))
    policy_decides(approved, CommentStatus.APPROVED)
    policy_decides(held, CommentStatus.HELD)
    policy_decides(rejected, CommentStatus.REJECTED)
    client.delete(f"/v1/comments/{approved}", headers=site.auth())

    dispatch(app)

    payloads = [request.verified(secret) for request in receiver.received]
    assert Counter(p["type"] for p in payloads) == {
        "comment.created": 3,
        "comment.approved": 1,
        "comment.held": 1,
        "comment.rejected": 1,
        "comment.deleted": 1,
    }
    rejected_event = next(p for p in payloads if p["type"] == "comment.rejected")
    assert set(rejected_event) == {"type", "timestamp", "data"}
    data = rejected_event["data"]
    assert data["comment_id"] == rejected
    assert data["article"]["ref"] == "article-1"
    assert data["article"]["url"] == "https://news.example/a1"
    assert data["author"]["id"] == "reader-1"
    assert (data["status"], data["previous_status"]) == ("rejected", "pending")
    assert (data["reasons"], data["scores"], data["model"]) == (REASONS, SCORES, "test-model@1")
    assert data["actor"] == "policy"
    assert data["body"] == "Comment 2"
    assert {d.status for d in deliveries()} == {"succeeded"}


def test_endpoint_receives_only_the_event_types_it_subscribed_to(
    app, client, site, submit, make_receiver
):
    every, held_only = make_receiver(), make_receiver()
    every_secret = create_endpoint(client, site, every.url)["secret"]
    held_secret = create_endpoint(client, site, held_only.url, event_types=["comment.held"])[
        "secret"
    ]
    policy_decides(submit().get_json()["id"], CommentStatus.HELD)

    dispatch(app)

    assert sorted(every.types(every_secret)) == ["comment.created", "comment.held"]
    assert held_only.types(held_secret) == ["comment.held"]
    ids = [r.message_id for r in every.received + held_only.received]
    assert len(set(ids)) == 3


def test_deliveries_during_a_secret_rotation_verify_with_the_old_and_the_new_secret(
    app, client, site, receiver
):
    created = create_endpoint(client, site, receiver.url)
    rotated = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=site.auth("admin"))
    old, new = created["secret"], rotated.get_json()["secret"]
    emit_events(site.id, 1)
    dispatch(app)

    during = receiver.received[0]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verified(old) == during.verified(new)

    endpoint = db.session.get(WebhookEndpoint, created["id"])
    endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    emit_events(site.id, 1)
    dispatch(app)

    after = receiver.received[1]
    after.verified(new)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(old).verify(after.body, after.headers)
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(old).verify(after.body, after.headers)


def test_receiver_failing_twice_gets_the_event_three_times_with_one_webhook_id(
    app, client, site, receiver
):
    secret = create_endpoint(client, site, receiver.url)["secret"]
    receiver.will_answer(500, 500, 200)
    emit_events(site.id, 1)

    dispatch(app)
    dispatch(app)

    assert len(receiver.received) == 3
    assert len({r.message_id for r in receiver.received}) == 1
    assert len({r.verified(secret)["timestamp"] for r in receiver.received}) == 1
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert attempt_codes(delivery.id) == [500, 500, 200]


def test_two_dispatchers_deliver_each_event_once(app, client, site, receiver):
    secret = create_endpoint(client, site, receiver.url)["secret"]
    app.config["WEBHOOK_BATCH"] = 3

    def slowly(request):
        time.sleep(0.02)
        return Response("ok", status=200)

    receiver.default = slowly
    emit_events(site.id, 30)
    dispatchers = [Dispatcher(app, burst=True) for _ in range(2)]

    def work(dispatcher):
        with app.app_context():
            dispatcher.run()

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    ids = Counter(r.message_id for r in receiver.received)
    assert len(ids) == 30 and set(ids.values()) == {1}
    assert all(r.verified(secret) for r in receiver.received)
    assert all(d.sent > 0 for d in dispatchers), [d.sent for d in dispatchers]
    assert {d.status for d in deliveries()} == {"succeeded"}


def test_dispatcher_killed_mid_delivery_loses_nothing(
    app, client, site, receiver, config, tmp_path: Path
):
    secret = create_endpoint(client, site, receiver.url)["secret"]
    release = threading.Event()

    def hang(request):
        release.wait(10)
        return Response("too late", status=200)

    receiver.will_answer(hang)
    emit_events(site.id, 1)
    settings = {**config, "WEBHOOK_LOCK_S": 1, "LOG_LEVEL": "DEBUG"}
    settings.pop("TESTING")
    log_path = tmp_path / "dispatcher.log"

    first = DispatcherProcess(settings, log_path)
    try:
        wait_for(lambda: receiver.received, "the first attempt")
        first.kill()
    finally:
        first.stop()
        release.set()
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts) == ("pending", 0)

    second = DispatcherProcess(settings, log_path)
    try:
        wait_for(lambda: deliveries()[0].status == "succeeded", "the redelivery")
        assert second.terminate() == 0, second.log()
    finally:
        second.stop()
    assert len(receiver.received) == 2
    assert len({r.message_id for r in receiver.received}) == 1
    assert all(r.verified(secret) for r in receiver.received)


def test_every_state_change_path_emits_its_event(app, client, site, submit, receiver):
    secret = create_endpoint(client, site, receiver.url)["secret"]
    moderator, admin = site.auth("moderator"), site.auth("admin")
    client.patch("/v1/site", json={"requeue_reports": 1}, headers=admin)
    reported, decided, bulked = (submit(body=f"C{n}").get_json()["id"] for n in range(3))
    trolled = submit(body="Troll", author="troll").get_json()["id"]
    policy_decides(reported, CommentStatus.APPROVED)
    policy_decides(decided, CommentStatus.HELD)
    policy_decides(bulked, CommentStatus.HELD)
    policy_decides(trolled, CommentStatus.APPROVED)

    answers = [
        client.post(
            f"/v1/comments/{decided}/decision", json={"decision": "approve"}, headers=moderator
        ),
        bulk := client.post(
            "/v1/decisions/bulk", json={"ids": [bulked], "decision": "reject"}, headers=moderator
        ),
        undo := client.post(
            f"/v1/decisions/bulk/{bulk.get_json()['bulk_id']}/undo", headers=moderator
        ),
        client.post(
            f"/v1/comments/{reported}/reports", json={"reason": "spam"}, headers=site.auth()
        ),
        ban := client.patch(
            "/v1/authors/troll",
            json={"status": "banned", "reject_existing": True},
            headers=moderator,
        ),
        client.delete(f"/v1/comments/{decided}", headers=site.auth()),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 201, 200, 200]
    bulk_id, undo_id = bulk.get_json()["bulk_id"], undo.get_json()["bulk_id"]
    ban_id = ban.get_json()["bulk"]["bulk_id"]

    dispatch(app)

    events = {
        (p["type"], p["data"].get("comment_id"), p["data"]["actor"], p["data"]["bulk_id"])
        for p in (r.verified(secret) for r in receiver.received)
        if p["type"] != "comment.created"
    }
    mod, site_key = "Example News-moderator", "Example News-site"
    assert events == {
        ("comment.approved", reported, "policy", None),
        ("comment.held", decided, "policy", None),
        ("comment.held", bulked, "policy", None),
        ("comment.approved", trolled, "policy", None),
        ("comment.approved", decided, mod, None),
        ("comment.rejected", bulked, mod, bulk_id),
        ("comment.held", bulked, mod, undo_id),
        ("comment.reported", reported, site_key, None),
        ("comment.held", reported, site_key, None),
        ("author.banned", None, mod, ban_id),
        ("comment.rejected", trolled, mod, ban_id),
        ("comment.deleted", decided, site_key, None),
    }

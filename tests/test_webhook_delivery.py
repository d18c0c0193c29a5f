"""Delivering webhooks to a real local receiver: signatures, retries, failures, crashes, SSRF."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import standardwebhooks
import svix.webhooks
from pytest_httpserver import HTTPServer
from werkzeug import Response

from service import outbox
from service.extensions import db
from service.models import Comment, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus
from tests.webhook_helpers import FAST_WEBHOOKS, DispatcherProcess, Receiver, dispatch, wait_for
from workers.dispatcher import Dispatcher

SCORES = {"toxicity": 0.97, "insult": 0.91}
REASONS = [{"code": "threshold", "label": "toxicity", "score": 0.97, "threshold": 0.9}]


@pytest.fixture(autouse=True)
def webhook_settings(config):
    config.update(FAST_WEBHOOKS)
    return config


@pytest.fixture(scope="module")
def http_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_receiver(http_server):
    yield lambda: Receiver(http_server)
    http_server.clear()


@pytest.fixture
def receiver(make_receiver):
    return make_receiver()


def create_endpoint(client, site, url: str, **fields) -> dict:
    answer = client.post("/v1/webhooks", json={"url": url, **fields}, headers=site.auth("admin"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def policy_decides(comment_id: int, status: CommentStatus) -> None:
    """What the scoring worker does with a decision."""
    comment = db.session.get(Comment, comment_id)
    comment.model = "test-model@1"
    moderate(comment, status, actor="policy", scores=SCORES, reasons=REASONS, model="test-model@1")
    db.session.commit()


def emit_events(site_id: int, count: int) -> None:
    for n in range(count):
        outbox.emit(site_id, "comment.approved", {"n": n})
    db.session.commit()


def deliveries() -> list[sa.Row]:
    """The deliveries as plain rows; the read ends at once (on SQLite it holds the write lock)."""
    d = WebhookDelivery
    query = sa.select(
        d.id, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error
    ).order_by(d.id)
    try:
        return list(db.session.execute(query))
    finally:
        db.session.rollback()


def attempt_codes(delivery_id: int) -> list[int | None]:
    return list(
        db.session.scalars(
            sa.select(WebhookAttempt.status_code)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt)
        )
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_gone_receiver_ends_failed_after_the_schedule_and_is_not_retried(
    app, client, site, receiver
):
    create_endpoint(client, site, receiver.url)
    receiver.default = 410
    emit_events(site.id, 1)

    dispatch(app)
    dispatch(app)

    # WEBHOOK_SCHEDULE "0s,0s": the first attempt and two retries.
    assert len(receiver.received) == 3
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert attempt_codes(delivery.id) == [410, 410, 410]


def test_dead_receiver_ends_failed_with_the_network_error_logged(app, client, site):
    create_endpoint(client, site, f"http://127.0.0.1:{closed_port()}/hook")
    emit_events(site.id, 1)

    dispatch(app)

    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_status_code is None
    assert "connection failed" in delivery.last_error
    assert attempt_codes(delivery.id) == [None, None, None]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(app, client, site, receiver, status):
    create_endpoint(client, site, receiver.url)
    receiver.will_answer((status, {"Retry-After": "1"}), 200)
    emit_events(site.id, 1)

    dispatch(app)

    [delivery] = deliveries()
    assert delivery.status == "pending"
    assert delivery.next_attempt_at - utcnow() > timedelta(seconds=0.5)
    dispatch(app)
    assert len(receiver.received) == 1  # not yet due, though the schedule says 0s

    time.sleep(1.1)
    dispatch(app)
    assert len(receiver.received) == 2
    assert deliveries()[0].status == "succeeded"


def test_redirects_are_not_followed_and_count_as_failures(app, client, site, receiver):
    create_endpoint(client, site, receiver.url)
    receiver.will_answer((307, {"Location": "http://127.0.0.1:1/elsewhere"}), 200)
    emit_events(site.id, 1)

    dispatch(app)

    assert len(receiver.received) == 2
    [delivery] = deliveries()
    assert delivery.status == "succeeded"
    first = db.session.scalars(sa.select(WebhookAttempt).where(WebhookAttempt.attempt == 1)).one()
    assert first.status_code == 307
    assert "redirect" in first.error and "not followed" in first.error


def test_response_read_is_capped_and_a_slow_receiver_times_out(app, client, site, receiver):
    create_endpoint(client, site, receiver.url)
    app.config.update(WEBHOOK_MAX_RESPONSE_BYTES=10, WEBHOOK_READ_TIMEOUT_S=0.3)

    def slow(request):
        time.sleep(0.6)
        return Response("late", status=200)

    receiver.will_answer(slow, lambda request: Response("x" * 100_000, status=200))
    emit_events(site.id, 1)

    dispatch(app)

    [delivery] = deliveries()
    attempts = db.session.scalars(sa.select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
    assert "read timeout" in attempts[0].error
    assert attempts[1].status_code == 200
    assert attempts[1].response_excerpt == "x" * 10
    assert delivery.status == "succeeded"


def test_private_receiver_is_refused_at_delivery_when_not_allowed(app, client, site, receiver):
    create_endpoint(client, site, receiver.url)
    # The URL passed when it was registered; its name now resolves somewhere private.
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    emit_events(site.id, 1)

    dispatch(app)

    assert receiver.received == []
    [delivery] = deliveries()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("refused: host '127.0.0.1' resolves to 127.0.0.1")


def test_endpoint_failing_for_too_long_is_disabled_with_its_reason_and_can_be_re_enabled(
    app, client, site, receiver
):
    endpoint_id = create_endpoint(client, site, receiver.url)["id"]
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    endpoint.failing_since = utcnow() - timedelta(days=6)
    db.session.commit()
    receiver.will_answer(500)
    emit_events(site.id, 1)

    Dispatcher(app).run_once()

    shown = client.get(f"/v1/webhooks/{endpoint_id}", headers=site.auth("admin")).get_json()
    assert shown["enabled"] is False
    assert "HTTP 500" in shown["disabled_reason"]
    assert shown["disabled_at"] is not None
    # Nothing is emitted for a disabled endpoint and its retry waits: the receiver hears nothing.
    emit_events(site.id, 1)
    dispatch(app)
    assert len(receiver.received) == 1
    assert [d.status for d in deliveries()] == ["pending"]

    enabled = client.patch(
        f"/v1/webhooks/{endpoint_id}", json={"enabled": True}, headers=site.auth("admin")
    ).get_json()
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["failing_since"]) == (
        True,
        None,
        None,
    )
    dispatch(app)
    assert len(receiver.received) == 2
    assert [d.status for d in deliveries()] == ["succeeded"]


def test_a_fresh_failure_does_not_disable_and_a_success_clears_failing_since(
    app, client, site, receiver
):
    endpoint_id = create_endpoint(client, site, receiver.url)["id"]
    receiver.will_answer(500)
    emit_events(site.id, 1)

    Dispatcher(app).run_once()
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    assert endpoint.enabled and endpoint.failing_since is not None

    dispatch(app)
    db.session.refresh(endpoint)
    assert endpoint.enabled and endpoint.failing_since is None


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

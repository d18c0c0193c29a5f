"""Webhook deliveries that fail: gone and dead receivers, Retry-After, redirects, capped and
slow reads, private addresses, and endpoints disabled after failing too long."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug import Response

from service.extensions import db
from service.models import WebhookAttempt, WebhookEndpoint, utcnow
from tests.webhook_helpers import (
    attempt_codes,
    closed_port,
    create_endpoint,
    deliveries,
    dispatch,
    emit_events,
)
from workers.dispatcher import Dispatcher

pytestmark = pytest.mark.usefixtures("fast_webhooks")


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

"""The dispatcher sends side by side: one hanging receiver never delays another endpoint."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer

from service import outbox
from service.extensions import db
from tests.webhook_helpers import FAST_WEBHOOKS, Receiver
from tests.worker_helpers import wait_for
from workers.dispatcher import Dispatcher

READ_TIMEOUT_S = 3.0


@pytest.fixture(autouse=True)
def webhook_settings(config):
    config.update(FAST_WEBHOOKS, WEBHOOK_READ_TIMEOUT_S=READ_TIMEOUT_S, WEBHOOK_LOCK_S=30)
    return config


@pytest.fixture
def hanging_url():
    """A receiver that accepts connections and never answers: every POST runs to its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def receiver():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield Receiver(server)
    server.stop()


def endpoint(client, site, url: str) -> int:
    answer = client.post("/v1/webhooks", json={"url": url}, headers=site.auth("admin"))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_a_hanging_receiver_does_not_delay_another_endpoint(
    app, client, site, receiver, hanging_url
):
    endpoint(client, site, hanging_url)
    outbox.emit(site.id, "comment.approved", {"n": 1})  # to the hanging endpoint only
    db.session.commit()
    dispatcher = Dispatcher(app)
    thread = threading.Thread(target=lambda: _run(app, dispatcher), daemon=True)
    thread.start()
    try:
        wait_for(lambda: dispatcher.sent == 0 and _claimed(), "the hanging delivery to start")
        # Now another site's receiver gets an event while the first one hangs.
        endpoint(client, site, receiver.url)
        started = time.monotonic()
        outbox.emit(site.id, "comment.held", {"n": 2})
        db.session.commit()
        wait_for(lambda: any(r for r in receiver.received), "the other endpoint's delivery")
        waited = time.monotonic() - started
    finally:
        dispatcher.stopping = True
        thread.join(READ_TIMEOUT_S + 10)
    # Sequential sending made it wait out the hanging POST's read timeout first.
    assert waited < READ_TIMEOUT_S - 1, waited
    assert dispatcher.sent >= 2  # the hanging one was recorded too (a timeout, retried)


def _run(app, dispatcher: Dispatcher) -> None:
    with app.app_context():
        dispatcher.run()


def _claimed() -> bool:
    from service.models import WebhookDelivery

    try:
        return db.session.query(WebhookDelivery.locked_until.isnot(None)).first()[0]
    finally:
        db.session.commit()


def test_deliveries_to_one_endpoint_are_bounded(app, client, site, hanging_url):
    endpoint(client, site, hanging_url)
    for n in range(6):
        outbox.emit(site.id, "comment.approved", {"n": n})
    db.session.commit()
    app.config["WEBHOOK_PER_ENDPOINT"] = 2
    dispatcher = Dispatcher(app)
    claimed = dispatcher.courier.claim()
    assert len(claimed) == 6
    dispatcher.courier.release([delivery_id for delivery_id, _ in claimed])
    pool_runs = []
    original = dispatcher._deliver_in_thread

    def counting(delivery_id):
        pool_runs.append(delivery_id)
        original(delivery_id)

    dispatcher._deliver_in_thread = counting
    started = time.monotonic()
    dispatcher.run_once()
    # Two at once to the endpoint; the rest were given back, not left claimed.
    assert len(pool_runs) == 2
    assert time.monotonic() - started < READ_TIMEOUT_S * 2

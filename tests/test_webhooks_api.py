"""The admin API of webhooks: endpoints, secrets, test pings, the delivery log and redelivery."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from service import outbox
from service.extensions import db
from service.models import WebhookDelivery, utcnow
from tests.webhook_helpers import FAST_WEBHOOKS, dispatch


@pytest.fixture(autouse=True)
def webhook_settings(config):
    config.update(FAST_WEBHOOKS, WEBHOOK_ROTATION_OVERLAP_S=3600)
    return config


@pytest.fixture
def admin(site):
    return site.auth("admin")


@pytest.fixture
def endpoint(client, admin, receiver) -> dict:
    answer = client.post("/v1/webhooks", json={"url": receiver.url}, headers=admin)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def emit(site_id: int, event_type: str = "comment.approved", count: int = 1) -> None:
    for n in range(count):
        outbox.emit(site_id, event_type, {"n": n})
    db.session.commit()


def delivery_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery))


def test_created_endpoint_shows_its_secret_once(client, admin, receiver):
    answer = client.post(
        "/v1/webhooks",
        json={
            "url": receiver.url,
            "description": "Site backend",
            "event_types": ["comment.approved", "comment.rejected"],
        },
        headers=admin,
    )
    assert answer.status_code == 201
    created = answer.get_json()
    assert created["secret"].startswith("whsec_")
    assert created["url"] == receiver.url
    assert created["event_types"] == ["comment.approved", "comment.rejected"]
    assert created["enabled"] is True

    shown = client.get(f"/v1/webhooks/{created['id']}", headers=admin).get_json()
    listed = client.get("/v1/webhooks", headers=admin).get_json()["items"]
    assert "secret" not in shown and all("secret" not in item for item in listed)
    assert created["secret"] not in str(shown) + str(listed)
    assert [item["id"] for item in listed] == [created["id"]]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/hook",
    ],
)
def test_urls_on_private_addresses_are_refused_unless_allowed(client, admin, app, url):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    answer = client.post("/v1/webhooks", json={"url": url}, headers=admin)
    assert answer.status_code == 422
    error = answer.get_json()
    assert "private targets are not allowed" in error["errors"]["json"]["url"][0]

    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    assert client.post("/v1/webhooks", json={"url": url}, headers=admin).status_code == 201


def test_changing_the_url_checks_it_again(client, admin, app, endpoint):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    answer = client.patch(
        f"/v1/webhooks/{endpoint['id']}", json={"url": "http://10.1.2.3/x"}, headers=admin
    )
    assert answer.status_code == 422
    assert "url" in answer.get_json()["errors"]["json"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://93.184.216.34/hook"}, "url"),
        ({"url": "https://user:pw@93.184.216.34/hook"}, "url"),
        ({"url": "https://93.184.216.34/hook", "event_types": ["comment.eaten"]}, "event_types"),
        ({"url": "https://93.184.216.34/hook", "event_types": []}, "event_types"),
        ({"description": "no url"}, "url"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_field(client, admin, body, field):
    answer = client.post("/v1/webhooks", json=body, headers=admin)
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]["json"]


def test_patch_changes_what_is_given_and_disabling_records_who(client, admin, endpoint, site):
    path = f"/v1/webhooks/{endpoint['id']}"
    changed = client.patch(
        path,
        json={"description": "Slack bridge", "event_types": ["comment.held"], "enabled": False},
        headers=admin,
    ).get_json()
    assert changed["description"] == "Slack bridge"
    assert changed["event_types"] == ["comment.held"]
    assert changed["enabled"] is False
    assert changed["disabled_reason"] == "disabled by Example News-admin"
    emit(site.id, "comment.held")
    assert delivery_count() == 0

    again = client.patch(path, json={"enabled": True, "event_types": None}, headers=admin)
    assert again.get_json()["enabled"] is True
    assert again.get_json()["event_types"] is None


def test_deleting_an_endpoint_removes_its_deliveries(client, admin, endpoint, site):
    emit(site.id, count=2)
    assert client.delete(f"/v1/webhooks/{endpoint['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/webhooks/{endpoint['id']}", headers=admin).status_code == 404
    assert delivery_count() == 0


def test_rotating_issues_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    client, admin, endpoint
):
    answer = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=admin)
    assert answer.status_code == 200
    rotated = answer.get_json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != endpoint["secret"]
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert abs(expires - (utcnow() + timedelta(seconds=3600))) < timedelta(seconds=30)


def test_test_ping_answers_with_the_receivers_status_and_verifies(
    app, client, admin, endpoint, receiver
):
    answer = client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=admin)
    assert answer.status_code == 200
    result = answer.get_json()
    assert (result["ok"], result["status_code"], result["error"]) == (True, 200, None)
    [request] = receiver.received
    assert request.message_id == result["message_id"]
    assert request.verified(endpoint["secret"])["type"] == "ping"
    listed = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=admin).get_json()
    assert [(d["event_type"], d["status"]) for d in listed["items"]] == [("ping", "succeeded")]

    receiver.will_answer(500)
    failed = client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=admin).get_json()
    assert (failed["ok"], failed["status_code"]) == (False, 500)
    dispatch(app)
    assert len(receiver.received) == 2  # a failed test ping is not retried


def test_deliveries_are_listed_newest_first_filtered_and_paged(
    app, client, admin, endpoint, site, receiver
):
    receiver.default = 410
    emit(site.id, "comment.rejected")
    dispatch(app)
    receiver.default = 200
    emit(site.id, "comment.approved", count=3)
    path = f"/v1/webhooks/{endpoint['id']}/deliveries"

    every = client.get(path, headers=admin).get_json()["items"]
    assert [d["event_type"] for d in every] == ["comment.approved"] * 3 + ["comment.rejected"]
    failed = client.get(f"{path}?status=failed", headers=admin).get_json()["items"]
    assert [(d["event_type"], d["attempts"], d["last_status_code"]) for d in failed] == [
        ("comment.rejected", 3, 410)
    ]
    assert failed[0]["next_attempt_at"] is None
    rejected = client.get(f"{path}?event_type=comment.rejected", headers=admin).get_json()
    assert [d["id"] for d in rejected["items"]] == [failed[0]["id"]]

    first = client.get(f"{path}?limit=3", headers=admin).get_json()
    second = client.get(f"{path}?limit=3&cursor={first['next_cursor']}", headers=admin).get_json()
    assert [d["id"] for d in first["items"] + second["items"]] == [d["id"] for d in every]
    assert second["next_cursor"] is None
    assert client.get(f"{path}?cursor=nope", headers=admin).status_code == 422
    assert client.get(f"{path}?status=lost", headers=admin).status_code == 422


def test_delivery_detail_shows_the_body_and_every_attempt(
    app, client, admin, endpoint, site, receiver
):
    receiver.will_answer(503, 200)
    emit(site.id)
    dispatch(app)
    [listed] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=admin).get_json()[
        "items"
    ]
    detail = client.get(f"/v1/webhooks/deliveries/{listed['id']}", headers=admin).get_json()
    assert detail["payload"]["type"] == "comment.approved"
    assert detail["payload"]["data"] == {"n": 0}
    log = [(a["attempt"], a["status_code"], a["response_excerpt"]) for a in detail["attempt_log"]]
    assert log == [(1, 503, "no"), (2, 200, "ok")]
    assert all(a["latency_ms"] is not None for a in detail["attempt_log"])


def test_redeliver_sends_a_failed_delivery_again_with_the_same_webhook_id(
    app, client, admin, endpoint, site, receiver
):
    receiver.default = 410
    emit(site.id)
    dispatch(app)
    [failed] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=admin).get_json()[
        "items"
    ]
    assert failed["status"] == "failed"

    receiver.default = 200
    answer = client.post(f"/v1/webhooks/deliveries/{failed['id']}/redeliver", headers=admin)
    assert answer.status_code == 202
    assert answer.get_json()["status"] == "pending"
    dispatch(app)

    detail = client.get(f"/v1/webhooks/deliveries/{failed['id']}", headers=admin).get_json()
    assert (detail["status"], detail["attempts"]) == ("succeeded", 4)
    assert len(receiver.received) == 4
    assert {r.message_id for r in receiver.received} == {failed["message_id"]}


def test_redelivering_to_a_disabled_endpoint_is_a_conflict(client, admin, endpoint, site):
    emit(site.id)
    [delivery] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=admin).get_json()[
        "items"
    ]
    client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": False}, headers=admin)
    answer = client.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=admin)
    assert answer.status_code == 409


def test_another_sites_admin_gets_404_for_endpoints_and_deliveries(
    client, endpoint, site, other_site
):
    emit(site.id)
    delivery_id = db.session.scalar(sa.select(WebhookDelivery.id))
    theirs = other_site.auth("admin")
    for method, path in [
        ("GET", f"/v1/webhooks/{endpoint['id']}"),
        ("PATCH", f"/v1/webhooks/{endpoint['id']}"),
        ("DELETE", f"/v1/webhooks/{endpoint['id']}"),
        ("POST", f"/v1/webhooks/{endpoint['id']}/rotate-secret"),
        ("POST", f"/v1/webhooks/{endpoint['id']}/test"),
        ("GET", f"/v1/webhooks/{endpoint['id']}/deliveries"),
        ("GET", f"/v1/webhooks/deliveries/{delivery_id}"),
        ("POST", f"/v1/webhooks/deliveries/{delivery_id}/redeliver"),
    ]:
        body = {"description": "mine"} if method == "PATCH" else None
        answer = client.open(path, method=method, json=body, headers=theirs)
        assert answer.status_code == 404, (method, path)
    assert client.get("/v1/webhooks", headers=theirs).get_json()["items"] == []

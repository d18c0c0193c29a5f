"""What the API fuzzing (tests/test_fuzz.py) found, each pinned by the request that showed it."""

from __future__ import annotations

import base64
import json

import pytest

HUGE = 2**64  # past every BIGINT and SQLite INTEGER: once an OverflowError, a 500


def cursor(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", f"/v1/comments/{HUGE}", "site"),
        ("DELETE", f"/v1/comments/{HUGE}", "site"),
        ("POST", f"/v1/comments/{HUGE}/reports", "site"),
        ("POST", f"/v1/comments/{HUGE}/decision", "moderator"),
        ("GET", f"/v1/comments/{HUGE}/history", "moderator"),
        ("GET", f"/v1/webhooks/{HUGE}", "admin"),
        ("POST", f"/v1/webhooks/{HUGE}/test", "admin"),
        ("GET", f"/v1/webhooks/deliveries/{HUGE}", "admin"),
    ],
)
def test_id_in_path_too_large_for_the_database_is_404(client, site, method, path, role):
    body = {"reason": "spam", "decision": "hold"} if method == "POST" else None
    answer = client.open(path, method=method, json=body, headers=site.auth(role))
    assert answer.status_code == 404
    assert answer.get_json()["code"] == 404


def test_parent_id_too_large_is_422_naming_it(submit):
    answer = submit(parent_id=HUGE)
    assert answer.status_code == 422
    assert "parent_id" in answer.get_json()["errors"]["json"]


def test_bulk_ids_too_large_are_422_naming_them(client, site):
    answer = client.post(
        "/v1/decisions/bulk",
        json={"ids": [1, HUGE], "decision": "approve"},
        headers=site.auth("moderator"),
    )
    assert answer.status_code == 422
    assert "ids" in answer.get_json()["errors"]["json"]


def test_public_read_with_site_too_large_is_422(client):
    answer = client.get(f"/v1/articles/article-1/comments?site={HUGE}")
    assert answer.status_code == 422
    assert "site" in answer.get_json()["errors"]["query"]


@pytest.mark.parametrize(
    ("path", "role"),
    [
        (f"/v1/site/events?cursor={HUGE}", "admin"),
        ("/v1/site/events?cursor=%201", "admin"),
        (f"/v1/webhooks/{{endpoint}}/deliveries?cursor={HUGE}", "admin"),
        (
            f"/v1/articles/article-1/comments?cursor={cursor('2026-01-01T00:00:00+00:00', HUGE)}",
            "site",
        ),
        (
            f"/v1/queue?cursor={cursor('created', '2026-01-01T00:00:00+00:00', HUGE)}",
            "moderator",
        ),
    ],
)
def test_cursor_naming_an_id_too_large_is_422(client, site, submit, path, role):
    submit()  # the article exists
    endpoint = client.post(
        "/v1/webhooks", json={"url": "https://93.184.216.34/hook"}, headers=site.auth("admin")
    ).get_json()
    answer = client.get(path.format(endpoint=endpoint["id"]), headers=site.auth(role))
    assert answer.status_code == 422, answer.get_json()
    assert "cursor" in answer.get_json()["errors"]["query"]


def test_every_operation_lists_its_error_codes_in_the_shared_shape(client):
    spec = client.get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert "default" not in responses, (method, path)
            for code, response in responses.items():
                if int(code) >= 400 and path not in ("/readyz",):
                    assert response == {"$ref": f"#/components/responses/{_name(code)}"}
    error = spec["components"]["schemas"]["Error"]["properties"]
    assert {"code", "status", "message", "errors", "current_status", "bulk_status"} <= set(error)


def _name(code: str) -> str:
    from http import HTTPStatus

    return HTTPStatus(int(code)).name

"""Every class of bad input answers its 4xx, names the field, and stores nothing."""

from __future__ import annotations

import unicodedata

import marshmallow as ma
import pytest
import sqlalchemy as sa

from service.api.common import clean_text
from service.extensions import db


def row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def post_raw(
    client, site, data, content_type="application/json", article="article-1", headers=None
):
    return client.post(
        f"/v1/articles/{article}/comments",
        data=data,
        content_type=content_type,
        headers={**site.auth(), **(headers or {})},
    )


VALID_AUTHOR = {"id": "reader-1"}
CASES = [
    # (id, payload, status, error path)
    ("empty-body", {"body": "", "author": VALID_AUTHOR}, 422, ("json", "body")),
    ("whitespace-body", {"body": " \n\t ", "author": VALID_AUTHOR}, 422, ("json", "body")),
    ("too-long-body", {"body": "x" * 10_001, "author": VALID_AUTHOR}, 422, ("json", "body")),
    # 10,000 decomposed é are 20,000 code points; NFC makes them 10,000: accepted below.
    ("nul-in-body", {"body": "a\x00b", "author": VALID_AUTHOR}, 422, ("json", "body")),
    ("escape-in-body", {"body": "a\x1bb", "author": VALID_AUTHOR}, 422, ("json", "body")),
    ("surrogate-in-body", {"body": "a\ud800b", "author": VALID_AUTHOR}, 422, ("json", "body")),
    ("body-not-string", {"body": 42, "author": VALID_AUTHOR}, 422, ("json", "body")),
    ("missing-body", {"author": VALID_AUTHOR}, 422, ("json", "body")),
    ("missing-author", {"body": "hi"}, 422, ("json", "author")),
    ("author-without-id", {"body": "hi", "author": {"name": "x"}}, 422, ("json", "author", "id")),
    (
        "author-id-too-long",
        {"body": "hi", "author": {"id": "x" * 201}},
        422,
        ("json", "author", "id"),
    ),
    (
        "control-char-in-name",
        {"body": "hi", "author": {"id": "a", "name": "a\nb"}},
        422,
        ("json", "author", "name"),
    ),
    ("unknown-field", {"body": "hi", "author": VALID_AUTHOR, "score": 0}, 422, ("json", "score")),
    (
        "parent-not-int",
        {"body": "hi", "author": VALID_AUTHOR, "parent_id": "7"},
        422,
        ("json", "parent_id"),
    ),
    (
        "unknown-parent",
        {"body": "hi", "author": VALID_AUTHOR, "parent_id": 99999},
        422,
        ("json", "parent_id"),
    ),
    (
        "bad-client-ip",
        {"body": "hi", "author": VALID_AUTHOR, "client_ip": "999.1.1.1"},
        422,
        ("json", "client_ip"),
    ),
    (
        "metadata-too-big",
        {"body": "hi", "author": VALID_AUTHOR, "metadata": {"x": "y" * 5000}},
        422,
        ("json", "metadata"),
    ),
    ("not-an-object", ["body"], 422, ("json", "_schema")),
]


@pytest.mark.parametrize(
    ("payload", "status", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_comment_is_refused_with_the_field_named_and_nothing_stored(
    client, site, payload, status, path
):
    before = row_counts()
    answer = client.post("/v1/articles/article-1/comments", json=payload, headers=site.auth())
    assert answer.status_code == status, answer.get_json()
    error = answer.get_json()
    assert error["code"] == status and error["status"] and error["message"]
    node = error["errors"]
    for part in path:
        node = node[part]
    assert node
    assert row_counts() == before


def test_nfc_length_is_what_counts(client, site):
    decomposed = "e\u0301" * 10_000  # 20,000 code points, 10,000 after NFC
    answer = client.post(
        "/v1/articles/a/comments",
        headers=site.auth(),
        json={"body": decomposed, "author": VALID_AUTHOR},
    )
    assert answer.status_code == 202


def test_invalid_json_is_400(client, site):
    before = row_counts()
    answer = post_raw(client, site, b'{"body": "unterminated')
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "Invalid JSON body."
    assert row_counts() == before


def test_invalid_utf8_is_400(client, site):
    answer = post_raw(client, site, b'{"body": "\xff\xfe", "author": {"id": "a"}}')
    assert answer.status_code == 400


def test_body_that_is_not_json_is_415(client, site):
    answer = post_raw(client, site, b"body=hi", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 415
    assert "Content-Type" in answer.get_json()["message"]


def test_request_over_the_size_limit_is_413(client, site):
    before = row_counts()
    answer = post_raw(client, site, b'{"body": "' + b"x" * 300_000 + b'"}')
    assert answer.status_code == 413
    assert answer.get_json()["code"] == 413
    assert row_counts() == before


@pytest.mark.parametrize("ref", ["has space", "a/b", "x" * 201, "émoji"])
def test_bad_article_ref_is_422_naming_ref(client, site, ref):
    answer = client.put(f"/v1/articles/{ref}", json={"title": "t"}, headers=site.auth())
    assert answer.status_code in (404, 422)  # a slash never reaches the route
    if answer.status_code == 422:
        assert "ref" in answer.get_json()["errors"]["path"]
    assert row_counts()["article"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"mode": "sometimes"}, "mode"),
        ({"comments_open": "maybe"}, "comments_open"),
        ({"title": "x" * 501}, "title"),
        ({"published_at": "2024-02-08T19:24:07"}, "published_at"),  # naive: no time zone
    ],
)
def test_bad_article_fields_are_422_naming_the_field(client, site, payload, field):
    answer = client.put("/v1/articles/story", json=payload, headers=site.auth())
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]["json"]
    assert row_counts()["article"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"reason": "boring"}, "reason"),
        ({}, "reason"),
        ({"reason": "spam", "note": "x" * 2001}, "note"),
    ],
)
def test_bad_report_is_422_naming_the_field(submit, client, site, payload, field):
    comment_id = submit().get_json()["id"]
    answer = client.post(f"/v1/comments/{comment_id}/reports", json=payload, headers=site.auth())
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]["json"]
    assert row_counts()["report"] == 0


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there"])
def test_bad_idempotency_key_is_422(submit, key):
    answer = submit(headers={"Idempotency-Key": key})
    assert answer.status_code == 422
    assert "Idempotency-Key" in answer.get_json()["errors"]["headers"]


@pytest.mark.parametrize("allow_newlines", [True, False])
def test_text_check_refuses_exactly_control_characters_and_surrogates(allow_newlines):
    # The regex scan must agree with Unicode's categories Cc and Cs, code point by
    # code point (every Cc and Cs character is in the Basic Multilingual Plane).
    allowed = "\n\t" if allow_newlines else ""
    for code in range(0x10000):
        ch = chr(code)
        if ch == "\r":
            continue  # turned into a newline first
        refused = unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed
        try:
            clean_text(f"a{ch}b", allow_newlines=allow_newlines)
        except ma.ValidationError as exc:
            assert refused, hex(code)
            assert f"U+{code:04X}" in exc.messages[0]
        else:
            assert not refused, hex(code)

"""Input shaped to crash the parser or the calendar answers 4xx naming the field, never 500."""

from __future__ import annotations

import base64
import json

import pytest

from tests.test_bad_input import row_counts

DEEP = 1000  # past Python's recursion limit: json.loads raised RecursionError (a 500)
HUGE_INT = "9" * 4301  # past int/str conversion's limit: json.loads raised ValueError


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_deeply_nested_body_is_400_before_parsing(client, site):
    before = row_counts()
    body = '{"body": "hi", "author": {"id": "a"}, "metadata": {"x": ' + deep(DEEP) + "}}"
    answer = client.post(
        "/v1/articles/a/comments", data=body, content_type="application/json", headers=site.auth()
    )
    assert answer.status_code == 400, answer.get_json()
    error = answer.get_json()
    assert "CIVILITY_JSON_MAX_DEPTH" in error["message"]
    assert error["errors"]["json"]
    assert row_counts() == before


def test_deeply_nested_sign_in_is_400(client):
    answer = client.post(
        "/dashboard/sign-in", data='{"key": ' + deep(DEEP) + "}", content_type="application/json"
    )
    assert answer.status_code == 400


def test_nesting_up_to_the_limit_is_accepted(client, site, config):
    inner = "[" * 30 + "1" + "]" * 30  # metadata object + 30 arrays inside the body: 32 levels
    body = '{"body": "hi", "author": {"id": "a"}, "metadata": {"x": ' + inner + "}}"
    answer = client.post(
        "/v1/articles/a/comments", data=body, content_type="application/json", headers=site.auth()
    )
    assert answer.status_code == 202, answer.get_json()


def test_brackets_inside_strings_do_not_count_as_nesting(client, site):
    body = json.dumps({"body": "[" * 5000 + "{" * 5000, "author": {"id": "a"}})
    answer = client.post(
        "/v1/articles/a/comments", data=body, content_type="application/json", headers=site.auth()
    )
    assert answer.status_code == 202, answer.get_json()


def test_depth_limit_is_a_setting(make_site, config):
    from service import create_app

    app = create_app({**config, "JSON_MAX_DEPTH": 3})
    client = app.test_client()
    with app.app_context():
        answer = client.post(
            "/dashboard/sign-in", data='{"key": [[["x"]]]}', content_type="application/json"
        )
    assert answer.status_code == 400
    assert "3 levels" in answer.get_json()["message"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"body": "hi", "author": {"id": "a"}, "parent_id": %s}', ("parent_id",)),
        ('{"body": "hi", "author": {"id": "a"}, "parent_id": -%s}', ("parent_id",)),
        ('{"body": "hi", "author": {"id": "a"}, "metadata": {"n": [1, %s]}}', ("metadata", "n")),
    ],
)
def test_integer_past_the_conversion_limit_is_422_naming_the_field(client, site, body, path):
    before = row_counts()
    answer = client.post(
        "/v1/articles/a/comments",
        data=body % HUGE_INT,
        content_type="application/json",
        headers=site.auth(),
    )
    assert answer.status_code == 422, answer.get_json()
    node = answer.get_json()["errors"]["json"]
    for part in path:
        node = node[part]
    assert node
    assert row_counts() == before


def test_long_digit_run_inside_a_string_is_just_text(client, site):
    body = json.dumps({"body": HUGE_INT, "author": {"id": "a"}})
    answer = client.post(
        "/v1/articles/a/comments", data=body, content_type="application/json", headers=site.auth()
    )
    assert answer.status_code == 202


EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"]


@pytest.mark.parametrize("when", EDGES)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/queue", "since"),
        ("/v1/queue", "until"),
        ("/v1/stats", "since"),
        ("/v1/stats", "until"),
    ],
)
def test_query_dates_at_the_calendar_edge_are_422_naming_them(client, site, path, field, when):
    answer = client.get(path, query_string={field: when}, headers=site.auth("moderator"))
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["errors"]["query"]


@pytest.mark.parametrize("when", EDGES)
def test_bulk_filter_dates_at_the_calendar_edge_are_422(client, site, when):
    answer = client.post(
        "/v1/decisions/bulk",
        json={"filter": {"since": when}, "decision": "approve", "dry_run": True},
        headers=site.auth("moderator"),
    )
    assert answer.status_code == 422, answer.get_json()
    assert "since" in json.dumps(answer.get_json()["errors"])


@pytest.mark.parametrize("when", EDGES)
def test_body_dates_at_the_calendar_edge_are_422_naming_them(client, site, submit, when):
    answer = client.put("/v1/articles/story", json={"published_at": when}, headers=site.auth())
    assert answer.status_code == 422, answer.get_json()
    assert "published_at" in answer.get_json()["errors"]["json"]
    submit(author="reader-1")
    answer = client.patch(
        "/v1/authors/reader-1",
        json={"status": "banned", "until": when},
        headers=site.auth("moderator"),
    )
    assert answer.status_code == 422, answer.get_json()
    assert "until" in answer.get_json()["errors"]["json"]


def _cursor(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("when", EDGES)
def test_cursor_dates_at_the_calendar_edge_are_422(client, site, when):
    answer = client.get(
        "/v1/queue",
        query_string={"cursor": _cursor("created", when, 1)},
        headers=site.auth("moderator"),
    )
    assert answer.status_code == 422, answer.get_json()
    assert "cursor" in answer.get_json()["errors"]["query"]
    answer = client.get(
        "/v1/articles/a/comments", query_string={"cursor": _cursor(when, 1)}, headers=site.auth()
    )
    assert answer.status_code in (404, 422)  # the article is unknown: 404 comes first


def test_ordinary_dates_still_work(client, site):
    answer = client.put(
        "/v1/articles/story",
        json={"published_at": "1999-12-31T23:00:00-05:00"},
        headers=site.auth(),
    )
    assert answer.status_code in (200, 201)
    assert answer.get_json()["published_at"].startswith("2000-01-01T04:00:00")


FULLWIDTH = str.maketrans(
    "0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"
)


@pytest.mark.parametrize(
    "spell",
    [
        lambda n: str(n).translate(FULLWIDTH),
        lambda n: f"0{n}",
        lambda n: f"0000{n}",
        lambda n: f"+{n}",
        lambda n: f"{n}.0",
        lambda n: "\u0661" * len(str(n)),  # Arabic-Indic digits
    ],
    ids=["fullwidth", "leading-zero", "zeros", "plus", "decimal", "arabic-indic"],
)
def test_an_id_has_one_spelling_in_paths(submit, client, site, spell):
    comment_id = submit().get_json()["id"]
    answer = client.get(f"/v1/comments/{spell(comment_id)}", headers=site.auth())
    assert answer.status_code == 404
    assert answer.get_json()["code"] == 404
    assert client.get(f"/v1/comments/{comment_id}", headers=site.auth()).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        "\u200b",  # zero-width space (Cf)
        "\u200b\u200c\u200d\u2060",  # zero-width space, non-joiner, joiner, word joiner
        "\ufeff",  # byte order mark
        " \u200e\u200f\n\u00ad ",  # bidi marks, soft hyphen, whitespace
        "\u3164\u115f",  # Hangul fillers: letters that render blank
        "\u2800\u2800",  # braille blank
        "\u3000\u00a0",  # ideographic and no-break spaces
    ],
)
def test_a_body_of_only_invisible_characters_is_empty(submit, body):
    before = row_counts()
    answer = submit(body=body)
    assert answer.status_code == 422, answer.get_json()
    assert "body" in answer.get_json()["errors"]["json"]
    assert row_counts() == before


@pytest.mark.parametrize("body", ["\u200bhi", "👍🏽", "👨\u200d👩\u200d👧", "\u0301a"])
def test_a_body_with_anything_visible_is_accepted(submit, body):
    assert submit(body=body).status_code == 202


@pytest.fixture
def author_limit(config):
    config.update(RATELIMIT_ENABLED=True, RATELIMIT_PER_AUTHOR="2 per minute")


def test_an_idempotent_retry_past_the_author_limit_gets_its_original_answer(author_limit, submit):

    def post(idem: str):
        return submit(body=f"Comment {idem}", headers={"Idempotency-Key": idem})

    first = post("one")
    assert post("two").status_code == 202
    assert post("three").status_code == 429  # the author's limit is spent
    retry = post("one")
    assert retry.status_code == 202, retry.get_json()
    assert retry.get_json()["id"] == first.get_json()["id"]

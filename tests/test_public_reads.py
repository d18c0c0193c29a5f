"""Public reads: approved comments only, threaded by parent_id, cursor-paged, ETag, CORS."""

from __future__ import annotations

import pytest

from service.moderation.states import CommentStatus
from tests.test_comments import set_status


@pytest.fixture
def public_site(make_site):
    return make_site("Public Times", public_reads=True, origins=["https://public.example"])


def listing(client, article="article-1", headers=None, **query):
    return client.get(f"/v1/articles/{article}/comments", query_string=query, headers=headers or {})


def test_public_read_shows_approved_comments_only(submit, client, site):
    ids = {status: submit(body=f"I am {status}").get_json()["id"] for status in CommentStatus}
    for status, comment_id in ids.items():
        if status != CommentStatus.PENDING:
            set_status(comment_id, status)
    body = listing(client, headers=site.auth()).get_json()
    assert [item["id"] for item in body["items"]] == [ids[CommentStatus.APPROVED]]
    assert body["items"][0]["body"] == "I am approved"
    assert set(body["items"][0]) == {"id", "parent_id", "author", "body", "created_at"}


def test_replies_carry_parent_id_for_threading(submit, client, site):
    parent = submit().get_json()["id"]
    reply = submit(body="reply", parent_id=parent).get_json()["id"]
    set_status(parent, CommentStatus.APPROVED)
    set_status(reply, CommentStatus.APPROVED)
    items = listing(client, headers=site.auth()).get_json()["items"]
    assert [(i["id"], i["parent_id"]) for i in items] == [(parent, None), (reply, parent)]


@pytest.mark.parametrize("order", ["oldest", "newest"])
def test_cursor_pages_return_every_approved_comment_once_while_new_ones_arrive(
    submit, client, site, order
):
    def add(n):
        new = [submit(body=f"comment {len(seen_ids) + i}").get_json()["id"] for i in range(n)]
        for comment_id in new:
            set_status(comment_id, CommentStatus.APPROVED)
        return new

    seen_ids: list[int] = []
    existing = add(7)
    cursor, pages = None, 0
    while True:
        query = {"limit": 3, "order": order, **({"cursor": cursor} if cursor else {})}
        page = listing(client, headers=site.auth(), **query).get_json()
        seen_ids += [item["id"] for item in page["items"]]
        pages += 1
        add(2)  # arrive between page fetches
        cursor = page["next_cursor"]
        if cursor is None or pages > 20:
            break
    assert len(seen_ids) == len(set(seen_ids)), "a comment was returned twice"
    assert set(existing) <= set(seen_ids), "a comment that existed at the start was skipped"
    expected = sorted(seen_ids) if order == "oldest" else sorted(seen_ids, reverse=True)
    assert seen_ids == expected


def test_anonymous_read_works_only_for_sites_with_public_reads(submit, client, site, public_site):
    set_status(submit(as_site=public_site).get_json()["id"], CommentStatus.APPROVED)
    set_status(submit(as_site=site).get_json()["id"], CommentStatus.APPROVED)
    assert listing(client, site=public_site.id).status_code == 200
    assert len(listing(client, site=public_site.id).get_json()["items"]) == 1
    refused = listing(client, site=site.id)
    assert refused.status_code == 401
    assert listing(client).status_code == 401


def test_cors_allows_only_the_sites_origins(submit, client, public_site):
    submit(as_site=public_site)
    allowed = listing(client, site=public_site.id, headers={"Origin": "https://public.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://public.example"
    other = listing(client, site=public_site.id, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_etag_revalidation_answers_304_until_the_list_changes(submit, client, site):
    set_status(submit().get_json()["id"], CommentStatus.APPROVED)
    first = listing(client, headers=site.auth())
    etag = first.headers["ETag"]
    again = listing(client, headers={**site.auth(), "If-None-Match": etag})
    assert again.status_code == 304
    set_status(submit(body="new").get_json()["id"], CommentStatus.APPROVED)
    changed = listing(client, headers={**site.auth(), "If-None-Match": etag})
    assert changed.status_code == 200
    assert len(changed.get_json()["items"]) == 2


def test_bad_cursor_and_limit_are_422_naming_the_field(submit, client, site):
    submit()
    assert listing(client, headers=site.auth(), cursor="garbage").get_json()["errors"] == {
        "query": {"cursor": ["Not a valid cursor."]}
    }
    too_big = listing(client, headers=site.auth(), limit=10_000)
    assert too_big.status_code == 422
    assert "limit" in too_big.get_json()["errors"]["query"]
    bad_order = listing(client, headers=site.auth(), order="sideways")
    assert "order" in bad_order.get_json()["errors"]["query"]

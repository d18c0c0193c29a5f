"""Submitting and reading comments through the public API."""

from __future__ import annotations

import sqlalchemy as sa

from service.extensions import db
from service.models import Author, Comment, ModerationEvent
from service.moderation.moderate import moderate
from service.moderation.states import CommentStatus


def set_status(comment_id: int, status: CommentStatus) -> None:
    comment = db.session.get(Comment, comment_id)
    moderate(comment, status, actor="test")
    db.session.commit()


def test_submitted_comment_is_stored_pending_and_answered_202(submit, client, site):
    answer = submit(body="  Hello   there  ", parent_id=None, metadata={"page": "/a"})
    assert answer.status_code == 202
    comment = answer.get_json()
    assert comment["status"] == "pending"
    assert comment["article"] == "article-1"
    assert comment["author"] == {"id": "reader-1", "name": "Reader-1"}
    stored = db.session.get(Comment, comment["id"])
    assert stored.body == "  Hello   there  "
    assert stored.meta == {"page": "/a"}
    events = db.session.scalars(sa.select(ModerationEvent)).all()
    assert [(e.from_status, e.to_status, e.actor) for e in events] == [
        (None, "pending", "Example News-site")
    ]


def test_submitted_comment_id_is_added_to_the_scoring_stream(submit, redis_server, redis_prefix):
    comment_id = submit().get_json()["id"]
    entries = redis_server.xrange(f"{redis_prefix}:score")
    assert [fields for _id, fields in entries] == [{"comment_id": str(comment_id)}]


def test_body_is_nfc_normalised_and_crlf_becomes_newline(submit):
    answer = submit(body="Cafe\u0301 ok\r\nnext line")
    stored = db.session.get(Comment, answer.get_json()["id"])
    assert stored.body == "Caf\u00e9 ok\nnext line"


def test_article_is_created_lazily_by_the_first_comment(submit, client, site):
    submit(article="new-story")
    answer = client.get("/v1/articles/new-story", headers=site.auth())
    assert answer.status_code == 200
    assert answer.get_json()["counts"]["pending"] == 1


def test_author_name_is_updated_by_later_comments(submit):
    submit(author="reader-9")
    submit(author="reader-9", body="Second", **{})
    authors = db.session.scalars(sa.select(Author)).all()
    assert len(authors) == 1


def test_reply_must_belong_to_the_same_article(submit):
    parent = submit(article="a1").get_json()["id"]
    assert submit(article="a1", parent_id=parent).status_code == 202
    wrong = submit(article="a2", parent_id=parent)
    assert wrong.status_code == 422
    assert "parent_id" in wrong.get_json()["errors"]["json"]


def test_put_article_creates_then_updates_only_given_fields(client, site):
    created = client.put(
        "/v1/articles/story",
        headers=site.auth(),
        json={"title": "Title", "url": "https://example.com/story"},
    )
    assert created.status_code == 200
    updated = client.put(
        "/v1/articles/story", headers=site.auth(), json={"comments_open": False, "mode": "pre"}
    )
    body = updated.get_json()
    assert body["title"] == "Title"
    assert body["url"] == "https://example.com/story"
    assert body["comments_open"] is False
    assert body["mode"] == "pre"


def test_article_counts_comments_by_status(submit, client, site):
    ids = [submit(article="counted").get_json()["id"] for _ in range(3)]
    set_status(ids[0], CommentStatus.APPROVED)
    set_status(ids[1], CommentStatus.HELD)
    counts = client.get("/v1/articles/counted", headers=site.auth()).get_json()["counts"]
    assert counts == {"pending": 1, "approved": 1, "held": 1, "rejected": 0, "deleted": 0}


def test_site_key_sees_status_but_not_scores(submit, client, site):
    comment_id = submit().get_json()["id"]
    as_site = client.get(f"/v1/comments/{comment_id}", headers=site.auth()).get_json()
    assert as_site["status"] == "pending"
    assert "scores" not in as_site and "reasons" not in as_site
    as_mod = client.get(f"/v1/comments/{comment_id}", headers=site.auth("moderator")).get_json()
    assert "scores" in as_mod and "reasons" in as_mod and "model" in as_mod


def test_delete_marks_comment_deleted_and_audits_it(submit, client, site):
    comment_id = submit().get_json()["id"]
    answer = client.delete(f"/v1/comments/{comment_id}", headers=site.auth())
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "deleted"
    again = client.delete(f"/v1/comments/{comment_id}", headers=site.auth())
    assert again.status_code == 200
    events = db.session.scalars(
        sa.select(ModerationEvent).where(ModerationEvent.to_status == "deleted")
    ).all()
    assert len(events) == 1
    assert events[0].actor == "Example News-site"


def test_report_is_stored_once_per_reader(submit, client, site):
    comment_id = submit().get_json()["id"]
    url = f"/v1/comments/{comment_id}/reports"
    first = client.post(url, headers=site.auth(), json={"reason": "spam", "reporter_id": "r1"})
    second = client.post(url, headers=site.auth(), json={"reason": "spam", "reporter_id": "r1"})
    other = client.post(url, headers=site.auth(), json={"reason": "abusive", "note": "rude"})
    assert first.status_code == second.status_code == other.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"] != other.get_json()["id"]


def test_reporting_a_deleted_comment_conflicts(submit, client, site):
    comment_id = submit().get_json()["id"]
    client.delete(f"/v1/comments/{comment_id}", headers=site.auth())
    answer = client.post(
        f"/v1/comments/{comment_id}/reports", headers=site.auth(), json={"reason": "spam"}
    )
    assert answer.status_code == 409


def test_closed_article_refuses_comments_with_409(submit, client, site):
    client.put("/v1/articles/closed", headers=site.auth(), json={"comments_open": False})
    answer = submit(article="closed")
    assert answer.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0


def test_unknown_article_is_404_when_lazy_creation_is_off(make_site, submit, client):
    strict = make_site("Strict", lazy_articles=False)
    answer = submit(article="unregistered", as_site=strict)
    assert answer.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0


def test_submission_runs_no_statement_after_its_commit(submit, app):
    # A statement after COMMIT would open a second transaction (on SQLite: take the
    # write lock) and hold it across the XADD and the answer.
    submit(body="Warm-up: the article and the author exist from here on")
    # As in a server, where each request starts with an empty session: nothing the
    # warm-up loaded (the site, say) can be reused without a query.
    db.session.remove()
    trace: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        trace.append(statement.split()[0].upper())

    def committed(conn):
        trace.append("COMMIT")

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    sa.event.listen(engine, "commit", committed)
    try:
        assert submit(body="After commit, nothing").status_code == 202
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        sa.event.remove(engine, "commit", committed)
    assert "INSERT" in trace and "COMMIT" in trace
    assert trace[-1] == "COMMIT", " ".join(trace)

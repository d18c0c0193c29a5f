"""What a reader's browser sees and reports: its own comment's status, reports (requeueing,
once per address), article summaries."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Report, Site
from service.moderation.states import CommentStatus
from tests.embed_helpers import GUESSED, ORIGIN, embed_post, reader_token, rows, stored
from tests.review_helpers import moderator_moves


def own_status(client, site_id, comment_id, token):
    return client.get(
        f"/v1/embed/comments/{comment_id}?site={site_id}",
        headers={"X-Civility-Reader-Token": token, "Origin": ORIGIN},
    )


@pytest.mark.parametrize(
    ("moved_to", "reader_sees"),
    [
        (CommentStatus.HELD, "pending"),
        (CommentStatus.APPROVED, "approved"),
        (CommentStatus.REJECTED, "rejected"),
    ],
)
def test_reader_token_shows_the_authors_own_comment_status(client, sso_site, moved_to, reader_sees):
    posted = embed_post(client, sso_site.id, token=reader_token()).get_json()
    mine = own_status(client, sso_site.id, posted["id"], posted["reader_token"])
    assert mine.status_code == 200 and mine.get_json()["status"] == "pending"
    assert mine.get_json()["reader_token"] is None
    moderator_moves([posted["id"]], moved_to)
    assert (
        own_status(client, sso_site.id, posted["id"], posted["reader_token"]).get_json()["status"]
        == reader_sees
    )


def test_reader_token_opens_no_other_comment(client, sso_site, make_site):
    mine = embed_post(client, sso_site.id, token=reader_token()).get_json()
    theirs = embed_post(client, sso_site.id, token=reader_token(sub="user-7")).get_json()
    assert own_status(client, sso_site.id, theirs["id"], mine["reader_token"]).status_code == 404
    assert own_status(client, sso_site.id, mine["id"], "guess").status_code == 404
    assert own_status(client, sso_site.id, mine["id"], "").status_code == 404
    other = make_site("Other Paper")
    assert own_status(client, other.id, mine["id"], mine["reader_token"]).status_code == 404


def embed_report(client, site_id, comment_id, token=None, origin=ORIGIN, **fields):
    headers = {"Origin": origin} if origin else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(
        f"/v1/embed/comments/{comment_id}/reports?site={site_id}",
        json={"reason": "abusive", **fields},
        headers=headers,
    )


def test_reader_reports_a_published_comment_and_enough_reports_requeue_it(client, sso_site):
    site = db.session.get(Site, sso_site.id)
    site.requeue_reports = 2
    db.session.commit()
    comment_id = embed_post(client, sso_site.id, token=reader_token(sub="author")).get_json()["id"]
    before = rows()
    assert embed_report(client, sso_site.id, comment_id, reader_token()).status_code == 404
    assert rows() == before  # pending: not reportable, not even its existence
    moderator_moves([comment_id], CommentStatus.APPROVED)
    first = embed_report(client, sso_site.id, comment_id, reader_token(), note="Name-calling")
    assert first.status_code == 201, first.get_json()
    again = embed_report(client, sso_site.id, comment_id, reader_token())
    assert again.get_json()["id"] == first.get_json()["id"]  # one open report per reader
    assert stored(comment_id).status == CommentStatus.APPROVED
    embed_report(client, sso_site.id, comment_id, reader_token(sub="user-9"), reason="spam")
    assert stored(comment_id).status == CommentStatus.HELD
    reporters = db.session.scalars(sa.select(Report.reporter_ref).order_by(Report.id)).all()
    assert reporters == ["user-42", "user-9"]


def test_reports_need_the_sites_mode_token_and_origin(client, sso_site, make_site):
    comment_id = embed_post(client, sso_site.id, token=reader_token()).get_json()["id"]
    moderator_moves([comment_id], CommentStatus.APPROVED)
    before = rows()
    assert embed_report(client, sso_site.id, comment_id).status_code == 401
    assert embed_report(client, sso_site.id, comment_id, reader_token(GUESSED)).status_code == 401
    assert (
        embed_report(client, sso_site.id, comment_id, reader_token(), origin=None).status_code
        == 403
    )
    assert (
        embed_report(client, sso_site.id, comment_id, reader_token(), reason="boring").status_code
        == 422
    )
    other = make_site("Other Paper", origins=[ORIGIN], browser_submissions="anonymous")
    assert embed_report(client, other.id, comment_id).status_code == 404
    assert rows() == before


def test_article_summary_counts_published_comments_and_says_what_readers_may_do(client, sso_site):
    ids = [embed_post(client, sso_site.id, token=reader_token()).get_json()["id"] for _ in "abc"]
    moderator_moves(ids[:2], CommentStatus.APPROVED)
    moderator_moves(ids[2:], CommentStatus.HELD)
    answer = client.get(f"/v1/embed/articles/budget-vote?site={sso_site.id}")
    assert answer.status_code == 200
    summary = answer.get_json()
    assert summary["count"] == 2
    assert summary["browser_submissions"] == "sso"
    assert summary["report_reasons"] == ["offensive", "abusive", "spam", "other"]
    assert summary["comments_open"] is True
    unknown = client.get(f"/v1/embed/articles/not-yet?site={sso_site.id}").get_json()
    assert unknown["count"] == 0


def test_article_summary_needs_public_reads(client, make_site):
    closed = make_site("Private Post")
    assert client.get(f"/v1/embed/articles/x?site={closed.id}").status_code == 403
    assert client.get("/v1/embed/articles/x?site=987654").status_code == 404
    assert client.get("/v1/embed/articles/x").status_code == 422


def test_anonymous_readers_report_once_per_browser_address(client, anon_site):
    comment_id = embed_post(client, anon_site.id, name="Kim").get_json()["id"]
    moderator_moves([comment_id], CommentStatus.APPROVED)
    first = embed_report(client, anon_site.id, comment_id)
    assert first.status_code == 201, first.get_json()
    assert embed_report(client, anon_site.id, comment_id).get_json()["id"] == first.get_json()["id"]
    [reporter] = db.session.scalars(sa.select(Report.reporter_ref)).all()
    assert reporter.startswith("anon:")

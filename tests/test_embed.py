"""Browser writes: reader tokens, anonymous names, origins, limits; refusals store nothing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Site, SiteEvent, utcnow
from service.moderation.states import CommentStatus
from tests.browser_helpers import release
from tests.embed_helpers import (
    GUESSED,
    ORIGIN,
    SECRET,
    embed_post,
    reader_token,
    rows,
    stored,
    unsigned_token,
)
from tests.review_helpers import moderator_moves
from tests.worker_helpers import WORKER_SETTINGS, WorkerProcess
from tests.worker_helpers import comments as worker_comments


def worker_settings(config) -> dict:
    """The real worker on the test database and Redis prefix (the cheap scorer)."""
    keys = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "INSTANCE_PATH", "SECRET_KEY")
    return {**WORKER_SETTINGS, **{key: config[key] for key in keys}}


def test_signed_in_reader_comments_as_the_tokens_subject(client, sso_site):
    answer = embed_post(client, sso_site.id, token=reader_token())
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "pending"
    assert body["author"] == {"name": "Ada Reader"}
    assert body["reader_token"]
    comment = stored(body["id"])
    assert (comment.author.ref, comment.author.name) == ("user-42", "Ada Reader")
    assert comment.client_ip == "203.0.113.7"
    assert comment.scores is None and comment.decided_by is None
    assert comment.article.ref == "budget-vote"


OTHER_SECRET = "embsec_other-paper-secret-0123456789abcdefghij"
FORGED = {
    "expired": (lambda site: reader_token(lifetime_s=-120), "expired"),
    "wrong secret": (lambda site: reader_token(GUESSED), "signature does not match"),
    "another site": (lambda site: reader_token(aud="999999"), "another site"),
    "alg none": (lambda site: unsigned_token(), "alg: none"),
    "other algorithm": (lambda site: reader_token(algorithm="HS384"), "HS384 is not accepted"),
    "no exp": (lambda site: reader_token(lifetime_s=None), "exp claim is required"),
    "no name": (lambda site: reader_token(name=None), "name claim is required"),
    "no sub": (lambda site: reader_token(sub=None), "sub claim is required"),
    "empty sub": (lambda site: reader_token(sub="  "), "sub claim must be a string"),
    "anonymous sub": (lambda site: reader_token(sub="anon:abc"), "kept for anonymous"),
    "lives too long": (lambda site: reader_token(lifetime_s=90 * 86400), "lives too long"),
    "issued in the future": (lambda site: reader_token(iat=int(time.time()) + 3600), "not valid"),
    "not a jwt": (lambda site: "hello.world", "not a JWT"),
}


@pytest.mark.parametrize("case", FORGED, ids=list(FORGED))
def test_bad_reader_token_is_refused_naming_why_and_stores_nothing(client, sso_site, case):
    make, why = FORGED[case]
    before = rows()
    answer = embed_post(client, sso_site.id, token=make(sso_site))
    assert answer.status_code == 401, answer.get_json()
    assert why in answer.get_json()["message"]
    assert "invalid_token" in answer.headers["WWW-Authenticate"]
    assert rows() == before


def test_token_of_another_site_is_refused(client, sso_site, make_site):
    other = make_site(
        "Other Paper", origins=[ORIGIN], browser_submissions="sso", embed_secret=OTHER_SECRET
    )
    answer = embed_post(client, sso_site.id, token=reader_token(OTHER_SECRET))
    assert answer.status_code == 401
    assert "signature does not match" in answer.get_json()["message"]
    assert embed_post(client, other.id, token=reader_token(OTHER_SECRET)).status_code == 202


def test_token_with_this_sites_audience_is_accepted(client, sso_site):
    answer = embed_post(client, sso_site.id, token=reader_token(aud=str(sso_site.id)))
    assert answer.status_code == 202, answer.get_json()


def test_rotated_secret_verifies_during_its_overlap_and_not_after(client, sso_site):
    old_token = reader_token()
    rotated = client.post("/v1/site/embed-secret", headers=sso_site.auth("admin"))
    assert rotated.status_code == 201
    new_secret = rotated.get_json()["secret"]
    assert new_secret.startswith("embsec_") and new_secret != SECRET
    assert rotated.get_json()["previous_secret_expires_at"]
    assert embed_post(client, sso_site.id, token=old_token).status_code == 202
    assert embed_post(client, sso_site.id, token=reader_token(new_secret)).status_code == 202

    site = db.session.get(Site, sso_site.id)
    site.embed_previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    before = rows()
    answer = embed_post(client, sso_site.id, token=old_token)
    assert answer.status_code == 401
    assert "rotated out" in answer.get_json()["message"]
    assert rows() == before
    assert embed_post(client, sso_site.id, token=reader_token(new_secret)).status_code == 202


def test_embed_secret_is_shown_once_and_its_rotation_audited(client, site):
    assert (
        client.get("/v1/site", headers=site.auth("admin")).get_json()["embed_secret_set"] is False
    )
    refused = client.patch(
        "/v1/site", json={"browser_submissions": "sso"}, headers=site.auth("admin")
    )
    assert refused.status_code == 422
    assert "browser_submissions" in refused.get_json()["errors"]["json"]
    made = client.post("/v1/site/embed-secret", headers=site.auth("admin"))
    assert made.status_code == 201 and made.get_json()["previous_secret_expires_at"] is None
    secret = made.get_json()["secret"]
    changed = client.patch(
        "/v1/site", json={"browser_submissions": "sso"}, headers=site.auth("admin")
    )
    assert changed.status_code == 200
    shown = client.get("/v1/site", headers=site.auth("admin"))
    assert shown.get_json()["embed_secret_set"] is True
    assert shown.get_json()["browser_submissions"] == "sso"
    assert secret not in shown.get_data(as_text=True)
    events = db.session.scalars(
        sa.select(SiteEvent).where(SiteEvent.site_id == site.id).order_by(SiteEvent.id)
    ).all()
    assert [e.changes for e in events] == [
        {"embed_secret": [None, "created"]},
        {"browser_submissions": ["off", "sso"]},
    ]
    assert secret not in str([e.changes for e in events])
    moderator = client.post("/v1/site/embed-secret", headers=site.auth("moderator"))
    assert moderator.status_code == 403


def test_browser_submissions_setting_is_validated(client, site):
    answer = client.patch(
        "/v1/site", json={"browser_submissions": "everyone"}, headers=site.auth("admin")
    )
    assert answer.status_code == 422
    assert "browser_submissions" in answer.get_json()["errors"]["json"]


def test_sites_with_browser_submissions_off_take_nothing_from_browsers(client, make_site):
    site = make_site("Quiet Times", origins=[ORIGIN], public_reads=True, embed_secret=SECRET)
    before = rows()
    answer = embed_post(client, site.id, token=reader_token())
    assert answer.status_code == 403
    assert "browser_submissions off" in answer.get_json()["message"]
    assert embed_post(client, site.id, name="Ann").status_code == 403
    assert rows() == before


def test_sso_site_refuses_a_reader_without_a_token(client, sso_site):
    before = rows()
    answer = embed_post(client, sso_site.id, name="Mallory")
    assert answer.status_code == 401
    assert "Sign in first" in answer.get_json()["message"]
    assert rows() == before


@pytest.mark.parametrize(
    "extra",
    [
        {"status": "approved"},
        {"scores": {"toxicity": 0.0}},
        {"author": {"id": "someone-else"}},
        {"author_id": "someone-else"},
        {"client_ip": "198.51.100.1"},
        {"metadata": {"trusted": True}},
    ],
    ids=["status", "scores", "author", "author_id", "client_ip", "metadata"],
)
def test_a_browser_cannot_set_status_scores_or_author(client, sso_site, extra):
    before = rows()
    answer = embed_post(client, sso_site.id, token=reader_token(), **extra)
    assert answer.status_code == 422
    [field] = extra
    assert field in answer.get_json()["errors"]["json"]
    assert rows() == before


def test_signed_in_reader_cannot_choose_another_name(client, sso_site):
    answer = embed_post(client, sso_site.id, token=reader_token(), name="The Editor")
    assert answer.status_code == 422
    assert "name" in answer.get_json()["errors"]["json"]


@pytest.mark.parametrize("origin", [None, "https://evil.example", "https://news.example.evil"])
def test_writes_from_other_origins_are_refused(client, sso_site, origin):
    before = rows()
    answer = embed_post(client, sso_site.id, token=reader_token(), origin=origin)
    assert answer.status_code == 403
    assert "Origin" in answer.get_json()["message"]
    assert rows() == before


def test_cors_preflight_is_answered_for_the_sites_origins_only(client, sso_site):
    path = f"/v1/embed/articles/budget-vote/comments?site={sso_site.id}"
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = client.options(path, headers={"Origin": ORIGIN, **asked})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    foreign = client.options(path, headers={"Origin": "https://evil.example", **asked})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    posted = embed_post(client, sso_site.id, token=reader_token())
    assert posted.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_anonymous_reader_needs_a_name_and_gets_a_server_made_author(client, anon_site):
    before = rows()
    missing = embed_post(client, anon_site.id)
    assert missing.status_code == 422
    assert "name" in missing.get_json()["errors"]["json"]
    assert rows() == before
    first = embed_post(client, anon_site.id, name="Kim").get_json()
    again = embed_post(client, anon_site.id, body="Second thought.", name="Kim").get_json()
    elsewhere = embed_post(client, anon_site.id, name="Kim", ip="198.51.100.9").get_json()
    authors = {stored(c["id"]).author.ref for c in (first, again)}
    assert len(authors) == 1
    [ref] = authors
    assert ref.startswith("anon:")
    assert stored(elsewhere["id"]).author.ref != ref
    assert stored(first["id"]).author.name == "Kim"


def test_anonymous_site_still_takes_signed_in_readers(client, anon_site):
    site = db.session.get(Site, anon_site.id)
    site.embed_secret = SECRET
    db.session.commit()
    answer = embed_post(client, anon_site.id, token=reader_token())
    assert answer.status_code == 202
    assert stored(answer.get_json()["id"]).author.ref == "user-42"


def test_anonymous_comments_go_through_new_author_premod(client, make_site, config, tmp_path):
    site = make_site(
        "Premod Daily", origins=[ORIGIN], browser_submissions="anonymous", new_author_premod=1
    )
    ids = [embed_post(client, site.id, name="Kim").get_json()["id"]]
    moderator_moves(ids, CommentStatus.APPROVED)  # one approved: Kim is known now
    ids += [
        embed_post(client, site.id, body="Again, with thanks.", name="Kim").get_json()["id"],
        embed_post(client, site.id, body="First time here.", name="Lou").get_json()["id"],
    ]
    release()
    worker = WorkerProcess(["--burst"], worker_settings(config), tmp_path / "worker.log")
    try:
        # Generous: the worker's start alone takes tens of seconds on a loaded machine.
        assert worker.wait(timeout=120) == 0, worker.log()
    finally:
        worker.stop()
    decided = worker_comments(ids[1:])
    assert decided[ids[1]].status == "approved", worker.log()
    assert decided[ids[2]].status == "held"
    assert [r["code"] for r in decided[ids[2]].reasons] == ["new_author"]


def test_reply_needs_a_published_parent_of_the_same_article(client, sso_site):
    token = reader_token()
    parent = embed_post(client, sso_site.id, token=token).get_json()["id"]
    before = rows()
    pending_parent = embed_post(client, sso_site.id, token=token, parent_id=parent)
    assert pending_parent.status_code == 422
    assert "parent_id" in pending_parent.get_json()["errors"]["json"]
    assert rows() == before
    moderator_moves([parent], CommentStatus.APPROVED)
    other_article = embed_post(
        client, sso_site.id, token=token, parent_id=parent, article="other-piece"
    )
    assert other_article.status_code == 422
    reply = embed_post(client, sso_site.id, token=token, parent_id=parent)
    assert reply.status_code == 202
    assert stored(reply.get_json()["id"]).parent_id == parent


def test_browser_limits_per_ip_and_per_author_store_nothing_when_spent(config, make_site):
    from service import create_app

    config.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_PER_BROWSER_IP="2 per minute",
        RATELIMIT_PER_AUTHOR="3 per minute",
    )
    app = create_app(config)
    with app.app_context():
        client = app.test_client()
        site = Site(name="Busy", origins=[ORIGIN], browser_submissions="sso", embed_secret=SECRET)
        db.session.add(site)
        db.session.commit()
        token = reader_token()
        assert embed_post(client, site.id, token=token).status_code == 202
        assert embed_post(client, site.id, token=token).status_code == 202
        before = rows()
        limited = embed_post(client, site.id, token=token)
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert "per browser_ip" in limited.get_json()["message"]
        assert rows() == before
        # Another IP, the same reader: the author's own limit still counts.
        assert embed_post(client, site.id, token=token, ip="198.51.100.2").status_code == 202
        by_author = embed_post(client, site.id, token=token, ip="198.51.100.3")
        assert by_author.status_code == 429
        assert "per author" in by_author.get_json()["message"]
        assert rows()["Comment"] == 3
        db.session.remove()
        db.engine.dispose()
    app.extensions["civility.redis"].close()


def test_closed_article_takes_no_browser_comment(client, sso_site):
    client.put("/v1/articles/budget-vote", json={"comments_open": False}, headers=sso_site.auth())
    before = rows()
    assert embed_post(client, sso_site.id, token=reader_token()).status_code == 409
    assert rows() == before

"""Dashboard sessions are server-side: sign-out, an admin or a new secret key ends them."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from service import create_app
from service.extensions import db
from service.models import DashboardSession, utcnow

COOKIE = "civility_session"


def sign_in(client, key: str) -> str:
    answer = client.post("/dashboard/sign-in", json={"key": key})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["csrf_token"]


def cookie_of(client) -> str:
    return client.get_cookie(COOKIE).value


def replay(app, cookie: str):
    """A fresh client (another browser, an attacker) carrying a copied cookie."""
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    return other


def test_a_cookie_replayed_after_sign_out_reads_and_writes_nothing(app, client, site, submit):
    comment_id = submit().get_json()["id"]
    csrf = sign_in(client, site.moderator)
    stolen = cookie_of(client)
    assert replay(app, stolen).get("/v1/queue").status_code == 200
    assert client.post("/dashboard/sign-out", headers={"X-CSRF-Token": csrf}).status_code == 204
    thief = replay(app, stolen)
    assert thief.get("/v1/queue").status_code == 401
    assert thief.get("/dashboard/session").status_code == 401
    write = thief.post(
        f"/v1/comments/{comment_id}/decision",
        json={"decision": "hold"},
        headers={"X-CSRF-Token": csrf},
    )
    assert write.status_code == 401
    row = db.session.scalar(sa.select(DashboardSession))
    assert row.ended_at is not None and row.ended_by == "sign-out"


def test_an_expired_session_is_over_even_if_the_cookie_lives(app, client, site):
    sign_in(client, site.moderator)
    db.session.execute(sa.update(DashboardSession).values(expires_at=utcnow() - timedelta(1)))
    db.session.commit()
    assert client.get("/v1/queue").status_code == 401


def test_an_admin_lists_and_ends_a_keys_sessions(app, client, site, make_site):
    first, second = app.test_client(), app.test_client()
    sign_in(first, site.moderator)
    sign_in(second, site.moderator)
    admin = site.auth("admin")
    prefix = site.moderator[:12]
    listed = client.get("/v1/sessions", query_string={"key": prefix}, headers=admin).get_json()
    assert len(listed["items"]) == 2
    assert {item["key"]["prefix"] for item in listed["items"]} == {prefix}
    assert "csrf" not in str(listed) and "token" not in str(listed)
    one = listed["items"][0]["id"]
    ended = client.delete(f"/v1/sessions/{one}", headers=admin)
    assert ended.status_code == 200 and ended.get_json()["ended_by"] == "Example News-admin"
    assert client.delete(f"/v1/sessions/{one}", headers=admin).status_code == 200  # idempotent
    assert [c.get("/v1/queue").status_code for c in (second, first)] == [401, 200]
    answer = client.post("/v1/sessions/end", json={"key": prefix}, headers=admin)
    assert answer.get_json() == {"ended": 1}
    assert first.get("/v1/queue").status_code == 401
    assert client.get("/v1/sessions", headers=admin).get_json()["items"] == []
    everything = client.get("/v1/sessions?active=false", headers=admin).get_json()["items"]
    assert len(everything) == 2
    assert site.auth("moderator") and client.get("/v1/queue", headers=site.auth("moderator"))


def test_sessions_are_the_admins_own_sites_only(client, site, other_site):
    sign_in(client, site.moderator)
    row_id = db.session.scalar(sa.select(DashboardSession.id))
    theirs = other_site.auth("admin")
    assert client.get("/v1/sessions", headers=theirs).get_json()["items"] == []
    assert client.delete(f"/v1/sessions/{row_id}", headers=theirs).status_code == 404
    answer = client.post("/v1/sessions/end", json={"key": site.moderator[:12]}, headers=theirs)
    assert answer.status_code == 404
    assert client.get("/v1/sessions", headers=site.auth("moderator")).status_code == 403
    assert client.get("/v1/queue").status_code == 200


def test_a_new_secret_key_ends_every_session(app, client, site, config):
    sign_in(client, site.moderator)
    cookie = cookie_of(client)
    assert replay(app, cookie).get("/v1/queue").status_code == 200
    rotated = create_app({**config, "SECRET_KEY": "a-new-secret-after-rotation"})
    assert replay(rotated, cookie).get("/v1/queue").status_code == 401
    rotated.extensions["civility.redis"].close()

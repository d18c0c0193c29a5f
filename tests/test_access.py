"""Authentication, roles on every route, and tenant isolation."""

from __future__ import annotations

import hmac
import re
import time

import pytest
import sqlalchemy as sa

from service import auth
from service.auth import revoke_key
from service.extensions import db
from service.models import ApiKey, Article, Comment, Report, utcnow

# Every /v1 route with the least role it needs. test_every_route_is_listed keeps it complete.
ROUTES = {
    ("GET", "/v1/articles/<ref>"): "site",
    ("PUT", "/v1/articles/<ref>"): "site",
    ("POST", "/v1/articles/<ref>/comments"): "site",
    ("GET", "/v1/articles/<ref>/comments"): "site",
    ("GET", "/v1/comments/<int:comment_id>"): "site",
    ("DELETE", "/v1/comments/<int:comment_id>"): "site",
    ("POST", "/v1/comments/<int:comment_id>/reports"): "site",
    ("GET", "/v1/site"): "admin",
    ("PATCH", "/v1/site"): "admin",
    ("GET", "/v1/site/events"): "admin",
    ("GET", "/v1/webhooks"): "admin",
    ("POST", "/v1/webhooks"): "admin",
    ("GET", "/v1/webhooks/<int:endpoint_id>"): "admin",
    ("PATCH", "/v1/webhooks/<int:endpoint_id>"): "admin",
    ("DELETE", "/v1/webhooks/<int:endpoint_id>"): "admin",
    ("POST", "/v1/webhooks/<int:endpoint_id>/rotate-secret"): "admin",
    ("POST", "/v1/webhooks/<int:endpoint_id>/test"): "admin",
    ("GET", "/v1/webhooks/<int:endpoint_id>/deliveries"): "admin",
    ("GET", "/v1/webhooks/deliveries/<int:delivery_id>"): "admin",
    ("POST", "/v1/webhooks/deliveries/<int:delivery_id>/redeliver"): "admin",
    ("GET", "/v1/queue"): "moderator",
    ("GET", "/v1/queue/counts"): "moderator",
    ("POST", "/v1/comments/<int:comment_id>/decision"): "moderator",
    ("GET", "/v1/comments/<int:comment_id>/history"): "moderator",
    ("POST", "/v1/decisions/bulk"): "moderator",
    ("GET", "/v1/decisions/bulk/<bulk_id>"): "moderator",
    ("POST", "/v1/decisions/bulk/<bulk_id>/undo"): "moderator",
    ("GET", "/v1/authors/<ref>"): "moderator",
    ("PATCH", "/v1/authors/<ref>"): "moderator",
    ("DELETE", "/v1/authors/<ref>"): "admin",
    ("GET", "/v1/stats"): "moderator",
    ("GET", "/v1/sessions"): "admin",
    ("POST", "/v1/sessions/end"): "admin",
    ("DELETE", "/v1/sessions/<int:session_id>"): "admin",
    ("GET", "/v1/site/calibration"): "moderator",
    ("POST", "/v1/site/simulate"): "admin",
    ("POST", "/v1/site/embed-secret"): "admin",
}
# The drop-in faces answer in their vendors' shapes; tests/test_perspective.py,
# test_moderations.py and test_coral.py test their keys and signatures.
DROPIN_ROUTES = {
    ("POST", "/v1/moderations"),
    ("POST", "/v1/coral/sites/<int:site_id>/moderation"),
    ("POST", "/v1/coral/secret"),
}
# Browsers call these without a key (the site's origins, reader tokens and per-IP limits
# guard them); tests/test_embed.py tests them.
BROWSER_ROUTES = {
    ("GET", "/v1/embed/articles/<ref>"),
    ("POST", "/v1/embed/articles/<ref>/comments"),
    ("GET", "/v1/embed/comments/<int:comment_id>"),
    ("POST", "/v1/embed/comments/<int:comment_id>/reports"),
}
ROLES = ["site", "moderator", "admin"]
BODIES = {
    ("PUT", "/v1/articles/<ref>"): {"title": "Mine now"},
    ("POST", "/v1/articles/<ref>/comments"): {"body": "hi", "author": {"id": "x"}},
    ("POST", "/v1/comments/<int:comment_id>/reports"): {"reason": "spam"},
    ("PATCH", "/v1/site"): {"hold_links": True},
    ("POST", "/v1/comments/<int:comment_id>/decision"): {"decision": "reject"},
    ("POST", "/v1/decisions/bulk"): {"filter": {"status": "pending"}, "decision": "reject"},
    ("PATCH", "/v1/authors/<ref>"): {"note": "Watch this one."},
    ("POST", "/v1/webhooks"): {"url": "https://93.184.216.34/hook"},
    ("PATCH", "/v1/webhooks/<int:endpoint_id>"): {"description": "Mine now"},
    ("POST", "/v1/sessions/end"): {"key": "civ_AAAAAAAA"},
    ("POST", "/v1/site/simulate"): {"hold_links": True},
}


def fill(rule: str, ref: str, comment_id: int) -> str:
    # Other ids (webhook endpoints, deliveries) get the comment's id: unknown there, so 404.
    return re.sub(r"<int:\w+>", str(comment_id), rule.replace("<ref>", ref))


def call(client, method, rule, headers, ref="article-1", comment_id=1):
    return client.open(
        fill(rule, ref, comment_id), method=method, headers=headers, json=BODIES.get((method, rule))
    )


def test_every_route_is_listed(app):
    found = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert found == set(ROUTES) | DROPIN_ROUTES | BROWSER_ROUTES


@pytest.mark.parametrize(("method", "rule"), sorted(ROUTES))
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer civ_not-a-real-key-at-all"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["no-key", "unknown-key", "wrong-scheme", "empty-token"],
)
def test_every_route_refuses_requests_without_a_valid_key(client, site, method, rule, headers):
    answer = call(client, method, rule, headers)
    assert answer.status_code == 401
    assert answer.get_json()["code"] == 401
    assert "WWW-Authenticate" in answer.headers


@pytest.mark.parametrize(("method", "rule"), sorted(ROUTES))
def test_every_route_enforces_its_role(client, site, submit, method, rule):
    comment_id = submit().get_json()["id"]
    needed = ROLES.index(ROUTES[(method, rule)])
    for index, role in enumerate(ROLES):
        answer = call(client, method, rule, site.auth(role), comment_id=comment_id)
        if index < needed:
            assert answer.status_code == 403, (role, answer.get_json())
        else:
            assert answer.status_code not in (401, 403), (role, answer.get_json())


def test_revoked_key_is_refused(client, site, app):
    revoke_key(site.site)
    db.session.commit()
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 401


def test_key_with_right_prefix_but_wrong_secret_is_refused(client, site):
    forged = site.site[:12] + "A" * (len(site.site) - 12)
    answer = client.get("/v1/articles/x", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


@pytest.fixture
def short_key_cache(config):
    config["API_KEY_CACHE_S"] = 0.5
    return config


def revoke_elsewhere(prefix: str) -> None:
    """Revoke a key as ``civility keys revoke`` in another process does: this one's cache
    is not told."""
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(ApiKey).where(ApiKey.prefix == prefix[:12]).values(revoked_at=utcnow())
        )


def test_key_revoked_by_another_process_works_until_the_cache_expires(
    short_key_cache, client, site
):
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 404
    revoke_elsewhere(site.site)
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 404
    time.sleep(0.6)
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 401
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 401


@pytest.fixture
def no_key_cache(config):
    config["API_KEY_CACHE_S"] = 0
    return config


def test_key_revoked_by_another_process_is_refused_at_once_without_the_cache(
    no_key_cache, client, site
):
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 404
    revoke_elsewhere(site.site)
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 401


def key_lookups(client, headers) -> int:
    """SQL statements reading api_key while serving one request with ``headers``."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/v1/articles/x", headers=headers).status_code == 404
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return len([s for s in statements if "api_key" in s])


def test_a_cached_key_is_not_looked_up_again(client, site, app):
    assert key_lookups(client, site.auth()) == 1
    assert key_lookups(client, site.auth()) == 0


@pytest.fixture
def one_key_cache(config):
    config["API_KEY_CACHE_MAX"] = 1
    return config


def test_the_key_cache_holds_at_most_its_setting_and_then_starts_over(one_key_cache, client, site):
    assert key_lookups(client, site.auth()) == 1
    assert key_lookups(client, site.auth()) == 0  # cached
    assert key_lookups(client, site.auth("moderator")) == 1  # a second key: starts over
    assert key_lookups(client, site.auth("moderator")) == 0
    assert key_lookups(client, site.auth()) == 1  # the first was dropped


def test_a_wrong_secret_is_refused_even_after_the_right_key_was_cached(client, site):
    assert client.get("/v1/articles/x", headers=site.auth()).status_code == 404
    forged = site.site[:-4] + ("AAAA" if not site.site.endswith("AAAA") else "BBBB")
    answer = client.get("/v1/articles/x", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


@pytest.mark.parametrize(("method", "rule"), sorted(ROUTES))
@pytest.mark.parametrize("role", ROLES)
def test_other_sites_keys_get_404_and_none_of_the_data(
    client, site, other_site, submit, method, rule, role
):
    client.put("/v1/articles/article-1", headers=site.auth(), json={"title": "Secret title"})
    comment_id = submit(body="Secret body").get_json()["id"]
    client.post(f"/v1/comments/{comment_id}/reports", headers=site.auth(), json={"reason": "spam"})
    before = snapshot()
    answer = call(client, method, rule, other_site.auth(role), comment_id=comment_id)
    text = answer.get_data(as_text=True)
    assert "Secret" not in text
    names_a_resource = "<int:comment_id>" in rule or "<ref>" in rule
    if ROLES.index(role) < ROLES.index(ROUTES[(method, rule)]):
        # The role check comes before any lookup and answers alike for every id.
        assert answer.status_code == 403, answer.get_json()
    elif names_a_resource and ("<int:comment_id>" in rule or method == "GET"):
        assert answer.status_code == 404, answer.get_json()
    # Writes by the other site only ever touch the other site's rows.
    after = snapshot()
    assert after["mine"] == before["mine"]


def snapshot() -> dict:
    def rows(site_id_filter):
        return {
            "articles": db.session.execute(
                sa.select(Article.ref, Article.title).where(site_id_filter(Article))
            ).all(),
            "comments": db.session.execute(
                sa.select(Comment.id, Comment.status, Comment.body).where(site_id_filter(Comment))
            ).all(),
            "reports": db.session.scalar(
                sa.select(sa.func.count()).select_from(Report).where(site_id_filter(Report))
            ),
        }

    first_site = db.session.scalar(sa.select(sa.func.min(Article.site_id)))
    return {"mine": rows(lambda model: model.site_id == first_site)}


def test_openapi_names_the_least_role_of_every_route(client):
    spec = client.get("/openapi.json").get_json()
    for (method, rule), role in ROUTES.items():
        path = re.sub(r"<(?:int:)?(\w+)>", r"{\1}", rule)
        security = spec["paths"][path][method.lower()]["security"]
        assert {"bearerAuth": [role]} in security, (method, rule)


def test_keyed_answers_carry_security_headers_and_are_never_cached(client, site, submit):
    submit()
    for answer in (
        client.get("/v1/articles/article-1", headers=site.auth()),
        client.get("/v1/articles/article-1/comments", headers=site.auth()),
    ):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert (
            answer.headers["Content-Security-Policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "no-store"


def test_public_reads_and_errors_carry_security_headers_and_keep_their_caching(
    client, make_site, submit
):
    public = make_site("Open Times", public_reads=True)
    submit(as_site=public)
    read = client.get(f"/v1/articles/article-1/comments?site={public.id}")
    assert read.status_code == 200 and read.headers["ETag"]
    assert "no-store" not in read.headers.get("Cache-Control", "")
    for answer in (read, client.get("/no/such/page"), client.get("/v1/queue")):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_dashboard_keeps_its_own_security_headers(client):
    page = client.get("/dashboard")
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_key_check_compares_hashes_in_constant_time(app, site, monkeypatch):
    compared = []
    real = hmac.compare_digest

    def compare_digest(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", compare_digest)
    assert auth.authenticate_token(site.site) is not None
    assert compared == [(auth.hash_key(site.site), auth.hash_key(site.site))]

"""The dashboard over HTTP: sign-in, session cookie, CSRF, headers and assets."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from service import demo_banner
from service.auth import revoke_key
from service.dashboard import CSP
from service.demo import SUSPECT_WORDS, run_demo
from service.extensions import db
from service.models import Site
from tests.review_helpers import make_comments, policy_decides, statuses

STATIC = Path(__file__).resolve().parents[1] / "service" / "static" / "dashboard"
CONFIG_TAG = re.compile(
    r'<script type="application/json" id="civility-config">(.*?)</script>', re.S
)


def sign_in(client, key: str):
    return client.post("/dashboard/sign-in", json={"key": key})


def page_config(client) -> dict:
    page = client.get("/dashboard")
    assert page.status_code == 200
    return json.loads(CONFIG_TAG.search(page.get_data(as_text=True)).group(1))


def test_signed_out_dashboard_is_the_sign_in_page_with_strict_headers(client):
    page = client.get("/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="sign-in"' in html and "civility-config" not in html
    assert page.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP and "frame-ancestors 'none'" in CSP
    assert "unsafe-inline" not in CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in html  # no inline script: every script is a file
    assert client.get("/dashboard/").status_code == 308


def test_moderator_signs_in_with_a_strict_session_cookie(client, site):
    answer = sign_in(client, site.moderator)
    assert answer.status_code == 200
    assert answer.get_json()["redirect"] == "/dashboard"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("civility_session=")
    for flag in ("HttpOnly", "SameSite=Strict", "Secure"):
        assert flag in cookie
    assert site.moderator not in cookie
    config = page_config(client)
    assert config["role"] == "moderator"
    assert config["key_name"] == "Example News-moderator"
    assert config["site_id"] == site.id
    assert config["csrf_token"] == answer.get_json()["csrf_token"]
    assert config["hold_at"]["toxicity"] == 0.6 and config["reject_at"]["toxicity"] == 0.95
    session = client.get("/dashboard/session").get_json()
    assert session["csrf_token"] == config["csrf_token"]


def test_session_reads_the_review_api_without_a_bearer_key(client, site):
    sign_in(client, site.admin)
    assert client.get("/v1/queue").status_code == 200
    assert client.get("/v1/site").status_code == 200


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("site", 403, "Site keys cannot sign in"),
        ("civ_not-a-real-key-at-all", 401, "not valid"),
        ("", 422, "paste your API key"),
    ],
)
def test_site_keys_and_bad_keys_cannot_sign_in(client, site, key, status, message):
    answer = sign_in(client, getattr(site, key, key))
    assert answer.status_code == status
    assert message in answer.get_json()["message"]
    assert "Set-Cookie" not in answer.headers
    assert client.get("/dashboard/session").status_code == 401
    assert client.get("/v1/queue").status_code == 401


def test_sign_in_refuses_form_posts_and_other_sites(client, site):
    form = client.post("/dashboard/sign-in", data={"key": site.moderator})
    assert form.status_code == 415
    cross = client.post(
        "/dashboard/sign-in",
        json={"key": site.moderator},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert client.get("/dashboard/session").status_code == 401


def test_sign_in_is_rate_limited_per_ip(config, redis_prefix):
    from service import create_app

    config.update(RATELIMIT_ENABLED=True, RATELIMIT_PER_SIGN_IN_IP="2 per minute")
    app = create_app(config)
    with app.app_context():
        client = app.test_client()
        answers = [sign_in(client, "civ_wrong").status_code for _ in range(3)]
        db.session.remove()
        db.engine.dispose()
    assert answers == [401, 401, 429]


def test_session_writes_need_the_csrf_token(client, site):
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "held")
    csrf = sign_in(client, site.moderator).get_json()["csrf_token"]
    url = f"/v1/comments/{comment_id}/decision"
    assert client.post(url, json={"decision": "approve"}).status_code == 403
    wrong = client.post(url, json={"decision": "approve"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert statuses([comment_id]) == {comment_id: "held"}
    right = client.post(url, json={"decision": "approve"}, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 200
    assert right.get_json()["comment"]["status"] == "approved"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client, site):
    csrf = sign_in(client, site.moderator).get_json()["csrf_token"]
    assert client.post("/dashboard/sign-out").status_code == 403
    assert client.get("/v1/queue").status_code == 200
    assert client.post("/dashboard/sign-out", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/v1/queue").status_code == 401
    assert 'id="sign-in"' in client.get("/dashboard").get_data(as_text=True)


def test_revoking_the_key_ends_its_dashboard_session(client, site):
    sign_in(client, site.moderator)
    revoke_key(site.moderator)
    db.session.commit()
    assert client.get("/dashboard/session").status_code == 401
    assert client.get("/v1/queue").status_code == 401


def test_every_asset_the_pages_name_is_served(client, site):
    html = client.get("/dashboard").get_data(as_text=True)
    sign_in(client, site.moderator)
    html += client.get("/dashboard").get_data(as_text=True)
    assets = set(re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', html))
    modules = {f"/dashboard/static/{path.name}" for path in STATIC.glob("*.js")}
    assert len(assets) >= 4
    for url in assets | modules:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        answer.close()


def test_scripts_never_write_html():
    # Comment bodies are hostile: the scripts build nodes and set text, never parse markup.
    for path in STATIC.glob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{path.name} uses {sink}"
        assert "http://" not in source.replace("http://127.0.0.1", "")
        assert "https://" not in re.sub(r'placeholder: "https://[^"]*"', "", source)


def test_demo_names_the_dashboard_and_holds_some_comments(app):
    demo = run_demo("http://127.0.0.1:8000")
    assert demo["dashboard"] == "http://127.0.0.1:8000/dashboard"
    site = db.session.get(Site, demo["site_id"])
    assert site.suspect_words == SUSPECT_WORDS and site.hold_links
    out = io.StringIO()
    stdin = io.StringIO(json.dumps(demo))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", stdin)
        patch.setattr("sys.stdout", out)
        patch.chdir(Path(demo["env_file"]).parents[1])  # where scripts/run runs it
        demo_banner.main()
    assert "http://127.0.0.1:8000/dashboard" in out.getvalue()
    assert "moderator key" in out.getvalue()
    # The line the README's examples begin with, and what it sets.
    assert "\n  source instance/demo.env\n" in out.getvalue()
    assert f"MOD_KEY={demo['keys']['moderator']}\n" in Path(demo["env_file"]).read_text()

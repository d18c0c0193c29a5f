"""What the embed serves besides the API: the versioned embed.js and its snippet, the demo
page, its token and banner."""

from __future__ import annotations

from service.extensions import db
from service.models import Site
from tests.embed_helpers import embed_post, stored


def test_embed_js_is_versioned_cacheable_and_pinnable_with_integrity(client):
    import base64
    import hashlib

    from service.embed_script import script

    answer = client.get("/embed.js")
    assert answer.status_code == 200
    assert answer.mimetype == "text/javascript"
    assert answer.headers["Cache-Control"] == "public, max-age=3600"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    body = answer.get_data()
    version = hashlib.sha256(body).hexdigest()[:12]
    assert answer.headers["X-Civility-Embed-Version"] == version == script().version
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert script().integrity == integrity
    again = client.get("/embed.js", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304
    pinned = client.get(f"/embed.js?v={version}")
    assert pinned.get_data() == body
    assert "immutable" in pinned.headers["Cache-Control"]
    assert client.get("/embed.js?v=000000000000").status_code == 404


def test_embed_snippet_command_prints_the_pinned_snippet():
    from click.testing import CliRunner

    from service.cli import main
    from service.embed_script import script

    result = CliRunner().invoke(
        main, ["embed-snippet", "--site", "3", "--article", "budget-vote", "--url", "https://c.ex"]
    )
    assert result.exit_code == 0, result.output
    current = script()
    assert 'data-civility-site="3" data-civility-article="budget-vote"' in result.output
    assert f'src="https://c.ex/embed.js?v={current.version}"' in result.output
    assert f'integrity="{current.integrity}" crossorigin="anonymous"' in result.output


def test_demo_page_does_not_exist_unless_turned_on(client):
    assert client.get("/demo/").status_code == 404
    assert client.post("/demo/token").status_code == 404


def test_demo_token_endpoint_signs_the_demo_reader_for_this_machine_only(config):
    from service import create_app
    from service.demo import run_demo

    config["DEMO_PAGE"] = True
    app = create_app(config)
    with app.app_context():
        client = app.test_client()
        made = run_demo("http://127.0.0.1:8000")
        page = client.get("/demo/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert f'data-civility-site="{made["site_id"]}"' in page.get_data(as_text=True)
        token = client.post("/demo/token").get_json()["token"]
        answer = embed_post(
            client,
            made["site_id"],
            token=token,
            origin="http://127.0.0.1:8000",
            article=made["article"],
        )
        assert answer.status_code == 202, answer.get_json()
        assert stored(answer.get_json()["id"]).author.ref == "demo-reader"
        far = client.post("/demo/token", environ_base={"REMOTE_ADDR": "203.0.113.5"})
        assert far.status_code == 403
        assert client.get("/demo/", environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 403
        db.session.remove()
        from tests.conftest import clear_tables

        clear_tables()
        db.engine.dispose()
    app.extensions["civility.redis"].close()


def test_demo_banner_prints_the_demo_article_beside_the_dashboard(app, monkeypatch):
    import io
    import json

    from service import demo_banner
    from service.demo import run_demo

    made = run_demo("http://127.0.0.1:8000")
    site = db.session.get(Site, made["site_id"])
    assert site.browser_submissions == "sso" and site.embed_secret
    assert "http://127.0.0.1:8000" in site.origins
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(made)))
    monkeypatch.setattr("sys.stdout", out)
    demo_banner.main()
    lines = out.getvalue().splitlines()
    dashboard = next(n for n, line in enumerate(lines) if "/dashboard" in line)
    assert "Demo article:" in lines[dashboard + 2]
    assert lines[dashboard + 2].endswith("http://127.0.0.1:8000/demo/")
    # Run again (scripts/run does, every start): the same secret, no duplicate origin.
    secret = site.embed_secret
    run_demo("http://127.0.0.1:8000")
    db.session.expire_all()
    site = db.session.get(Site, made["site_id"])
    assert site.embed_secret == secret
    assert site.origins.count("http://127.0.0.1:8000") == 1

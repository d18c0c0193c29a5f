"""Running it: Redis outages, rate limits, probes, migrations, the CLI and the settings table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service import create_app
from service.cli import main
from service.config import SETTINGS, settings_table
from service.extensions import db
from service.models import ApiKey, Article, Comment, Site
from tests.conftest import drop_postgres_database, migrate, postgres_database

DOWN_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def redis_down(config):
    config["REDIS_URL"] = DOWN_REDIS
    config["RATELIMIT_ENABLED"] = True
    return config


def test_ingest_while_redis_is_down_answers_202_and_keeps_the_comment(redis_down, submit):
    answer = submit(body="Stored even without Redis")
    assert answer.status_code == 202
    stored = db.session.get(Comment, answer.get_json()["id"])
    assert stored.status == "pending"
    assert stored.body == "Stored even without Redis"


def test_readyz_names_what_is_down(redis_down, client):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "redis" in body["checks"]["redis"]["error"]


def test_readyz_and_healthz_answer_200_when_all_is_up(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_openapi_document_lists_the_routes(client):
    spec = client.get("/openapi.json").get_json()
    assert "/v1/articles/{ref}/comments" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.fixture
def limited(config):
    config["RATELIMIT_ENABLED"] = True
    config["RATELIMIT_PER_AUTHOR"] = "3 per minute"
    config["RATELIMIT_PER_KEY"] = "10 per minute"
    config["RATELIMIT_PER_IP"] = "2 per minute"
    return config


def test_author_rate_limit_answers_429_with_retry_after(limited, submit):
    answers = [submit(author="chatty", body=f"comment {n}") for n in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["code"] == 429
    assert submit(author="someone-else").status_code == 202
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 4


def test_key_rate_limit_covers_every_route(limited, client, site):
    codes = [client.get("/v1/articles/none", headers=site.auth()).status_code for _ in range(11)]
    assert codes[:10] == [404] * 10
    assert codes[10] == 429


def test_ip_rate_limit_uses_the_readers_ip(limited, submit):
    codes = [submit(author=f"a{n}", client_ip="203.0.113.7").status_code for n in range(3)]
    assert codes == [202, 202, 429]
    assert submit(author="a9", client_ip="203.0.113.8").status_code == 202


def test_migrations_build_exactly_the_models_on_postgres(tmp_path):
    name = "civility_migration_check"
    url = postgres_database(name)
    try:
        migrate(url, tmp_path)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        engine.dispose()
        assert diff == []
    finally:
        drop_postgres_database(name)


def run_cli(app, *args: str) -> dict:
    result = app.test_cli_runner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_cli_creates_sites_and_keys_and_revokes_them(app, client):
    created = run_cli(app, "sites", "create", "CLI Times", "--origin", "https://cli.example")
    assert created["admin_key"].startswith("civ_")
    site = db.session.get(Site, created["site_id"])
    assert site.origins == ["https://cli.example"]
    key = run_cli(
        app, "keys", "create", "--site", str(site.id), "--role", "moderator", "--name", "alice"
    )["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/articles/x", headers=headers).status_code == 404
    run_cli(app, "keys", "revoke", key[:12])
    assert client.get("/v1/articles/x", headers=headers).status_code == 401
    stored = db.session.scalars(sa.select(ApiKey.key_hash)).all()
    assert key not in stored  # only hashes are kept


def test_cli_refuses_unknown_site_and_key(app):
    runner = app.test_cli_runner()
    assert (
        runner.invoke(
            main, ["keys", "create", "--site", "999", "--role", "site", "--name", "x"]
        ).exit_code
        != 0
    )
    assert runner.invoke(main, ["keys", "revoke", "civ_nothing"]).exit_code != 0


def test_demo_is_idempotent_and_its_curl_lines_name_real_keys(app, client):
    first = run_cli(app, "demo")
    second = run_cli(app, "demo")
    assert first["keys"] == second["keys"]
    assert first["comment_ids"] == second["comment_ids"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Article)) == 1
    article = db.session.scalar(sa.select(Article))
    assert article.title.startswith("Putin and Xi Reject U.S. Interference")
    assert article.published_at.date().isoformat() == "2024-02-08"
    assert len(first["curl"]) == 3
    assert first["keys"]["site"] in first["curl"][0]
    headers = {"Authorization": f"Bearer {first['keys']['moderator']}"}
    assert client.get(f"/v1/comments/{first['comment_ids'][0]}", headers=headers).status_code == 200


def test_bad_setting_in_the_environment_fails_loudly(monkeypatch):
    monkeypatch.setenv("CIVILITY_RATELIMIT_ENABLED", "perhaps")
    with pytest.raises(ValueError, match="CIVILITY_RATELIMIT_ENABLED"):
        create_app({"SECRET_KEY": "x"})


def test_renamed_setting_in_the_environment_names_its_new_name(monkeypatch):
    monkeypatch.setenv("CIVILITY_MODEL_QUANTIZE", "int8")
    with pytest.raises(ValueError, match="CIVILITY_MODEL_QUANTIZE is now CIVILITY_MODEL_PRECISION"):
        create_app({"SECRET_KEY": "x"})


def test_cli_reports_a_bad_setting_in_one_line_without_a_traceback(tmp_path):
    env = {
        **os.environ,
        "CIVILITY_SCORE_BATCH_MAX": "abc",
        "CIVILITY_INSTANCE_PATH": str(tmp_path),
    }
    civility = str(Path(sys.executable).parent / "civility")
    answer = subprocess.run(
        [civility, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 1
    assert answer.stderr.strip() == "Error: CIVILITY_SCORE_BATCH_MAX: expected int, got 'abc'"


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CIVILITY_PAGE_SIZE", "7")
    monkeypatch.setenv("CIVILITY_RATELIMIT_ENABLED", "off")
    app = create_app({"SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path)})
    assert app.config["PAGE_SIZE"] == 7
    assert app.config["RATELIMIT_ENABLED"] is False
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'civility.sqlite3'}"


def test_readme_configuration_table_matches_the_settings():
    readme = README.read_text()
    missing = [s.name for s in SETTINGS if f"`CIVILITY_{s.name}`" not in readme]
    assert missing == []
    assert settings_table() in readme, "run scripts/readme-settings"


def test_readyz_lists_live_workers_and_their_model(client, redis_server, redis_prefix):
    beat = {
        "consumer": "w1",
        "host": "h",
        "pid": 1,
        "model": "profanity-check@1.9.1",
        "scorer_spec": "detoxify:original",
        "fallback_active": True,
        "batch_max": 32,
        "last_batch_size": 3,
        "scored_total": 10,
        "rate_per_s": 2.5,
        "started_at": "2026-01-01T00:00:00+00:00",
        "seen_at": "2026-01-01T00:00:05+00:00",
    }
    redis_server.set(f"{redis_prefix}:worker:w1", json.dumps(beat), ex=15)
    workers = client.get("/readyz").get_json()["workers"]
    assert workers == [beat]

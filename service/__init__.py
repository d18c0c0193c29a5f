"""Civility: a self-hosted comment moderation service (the HTTP API)."""

from __future__ import annotations

import os
import secrets
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request
from flask_smorest import Api

from service import redis_keys
from service.config import DEFAULTS, RENAMED, coerce
from service.errors import ErrorResponses, ErrorSchema

API_SPEC = {
    "API_TITLE": "Civility",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {"description": "Self-hosted comment moderation. See README.md."},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    },
}


class CivilityApi(Api):
    """flask-smorest's Api with our error shape, and no catch-all ``default`` response:
    every operation lists the error codes it can answer (see errors.ErrorResponses)."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the API app: defaults, then ``CIVILITY_*`` env, then ``test_config``."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "CIVILITY_INSTANCE_PATH"
    )
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("CIVILITY", loads=str)
    if test_config:
        app.config.from_mapping(test_config)
    for old, new in RENAMED.items():
        if old in app.config:
            raise ValueError(f"CIVILITY_{old} is now CIVILITY_{new}")
    for name in DEFAULTS:
        app.config[name] = coerce(name, app.config[name])
    _derive_config(app)

    from service import logs, metrics

    logs.configure(app)
    # First: the request id and the timer cover everything the other hooks do.
    logs.init_app(app)
    metrics.init_app(app)
    _init_extensions(app)
    app.after_request(_security_headers)
    return app


def _derive_config(app: Flask) -> None:
    """Translate our settings into the keys Flask and its extensions read."""
    cfg = app.config
    url = cfg["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'civility.sqlite3'}"
    cfg["DATABASE_URL"] = url
    cfg["SQLALCHEMY_DATABASE_URI"] = url
    if url.startswith("sqlite"):
        # Python's sqlite3 starts transactions itself; we take over (see _sqlite_begin).
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"timeout": 30, "isolation_level": None, "check_same_thread": False}
        }
    else:
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    cfg["MAX_CONTENT_LENGTH"] = cfg["MAX_REQUEST_BYTES"]
    cfg["SECRET_KEY"] = _secret_key(app)
    from service.retention import Retention

    Retention.from_config(cfg)  # a negative retention or batch is refused at start
    cfg["SESSION_COOKIE_NAME"] = "civility_session"
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Strict"
    cfg["SESSION_COOKIE_SECURE"] = cfg["COOKIE_SECURE"]
    cfg["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=cfg["SESSION_HOURS"])
    cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"]
    cfg["RATELIMIT_STORAGE_OPTIONS"] = {
        "socket_connect_timeout": cfg["REDIS_TIMEOUT_S"],
        "socket_timeout": cfg["REDIS_TIMEOUT_S"],
        "key_prefix": redis_keys.ratelimits(cfg["REDIS_PREFIX"]),
    }
    cfg.setdefault("JSON_SORT_KEYS", False)
    for key, value in API_SPEC.items():
        cfg.setdefault(key, value)


API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _security_headers(response: Response) -> Response:
    """Headers every answer carries; the dashboard sets its own (service/dashboard.py)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.blueprint == "dashboard" or request.path.startswith("/dashboard/"):
        return response
    # JSON only, never a page: nothing may load, run or frame it.
    response.headers.setdefault("Content-Security-Policy", API_CSP)
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if g.get("api_key") is not None:
        # Keyed answers hold a site's private data: no cache keeps them. Public reads
        # (no key) keep their ETag caching.
        response.headers["Cache-Control"] = "no-store"
    return response


# Placeholders from templates and tutorials: anyone can forge cookies signed with them.
WEAK_SECRETS = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "change-this",
        "secret",
        "secret-key",
        "secretkey",
        "secret_key",
        "your-secret-key",
        "supersecret",
        "password",
        "civility",
        "default",
        "dev",
        "development",
        "insecure",
        "none",
        "null",
    }
)
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def _secret_key(app: Flask) -> str:
    """CIVILITY_SECRET_KEY, or the instance folder's own on the embedded SQLite setup only.

    A missing key elsewhere (replicas on one database each made their own, so sessions
    break) and a known placeholder are refused: the message says how to make a key.
    """
    secret = app.config["SECRET_KEY"]
    if secret is None or not str(secret).strip():
        if not app.config["DATABASE_URL"].startswith("sqlite"):
            raise ValueError(
                "CIVILITY_SECRET_KEY is not set: outside the embedded SQLite setup every "
                f"process needs the same random key; make one with {MAKE_SECRET}"
            )
        return _instance_secret(app)
    secret = str(secret)
    if secret.strip().lower() in WEAK_SECRETS:
        raise ValueError(
            f"CIVILITY_SECRET_KEY is a known placeholder ({secret!r}): anyone could forge "
            f"dashboard sessions; make a random one with {MAKE_SECRET}"
        )
    return secret


def _instance_secret(app: Flask) -> str:
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        # WAL + busy timeout: the API and workers write the same file concurrently.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


@sa.event.listens_for(sa.engine.Engine, "begin")
def _sqlite_begin(conn: sa.engine.Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so a transaction that reads
    # then writes waits on busy_timeout instead of failing with SQLITE_BUSY.
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _init_extensions(app: Flask) -> None:
    from service import (
        auth,
        dashboard,
        demo_page,
        embed_script,
        errors,
        json_guard,
        ratelimit,
        redis_client,
    )
    from service.api import register_blueprints, register_dropins
    from service.api.common import IdConverter
    from service.extensions import db, migrate

    db.init_app(app)
    auth.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    # Before any route: <int:…> ids are bounded to what the database stores.
    app.url_map.converters["int"] = IdConverter
    # One Api per app: it holds the app's OpenAPI document.
    api = CivilityApi(app, spec_kwargs={"extra_plugins": [ErrorResponses()]})
    app.extensions["civility.api"] = api
    ratelimit.init_app(app)
    redis_client.init_app(app)
    errors.init_app(app)
    json_guard.init_app(app)
    register_blueprints(api)
    register_dropins(app)
    dashboard.init_app(app)
    embed_script.init_app(app)
    demo_page.init_app(app)

    @app.teardown_request
    def _end_transaction(exc: BaseException | None) -> None:
        # A request that aborted mid-way leaves nothing behind, even when its
        # app context (and so its session) outlives it, as in tests and the CLI.
        db.session.rollback()

"""Fixtures: a real database per backend (SQLite and Postgres), a real Redis under a test prefix,
real workers in subprocesses and the app served over real HTTP."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug.serving import make_server

from service import create_app
from service.auth import Role, create_key
from service.extensions import db
from service.models import Site
from tests.browser_helpers import HostPage, LiveServer, Reader
from tests.embed_helpers import ORIGIN, SECRET
from tests.webhook_helpers import FAST_WEBHOOKS, Receiver
from tests.worker_helpers import WORKER_SETTINGS, StreamCounts, WorkerProcess, wait_for

# Which databases the suite runs against; CI runs both.
BACKENDS = os.environ.get("CIVILITY_TEST_DATABASES", "sqlite,postgresql").split(",")
POSTGRES_ADMIN_URL = os.environ.get(
    "CIVILITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CIVILITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run the test on these database backends only (the other "
        "backends' runs are deselected, not skipped: they were never meant to run)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the backend runs a ``backends`` mark rules out."""
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        if mark is not None and backend is not None and backend not in mark.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def postgres_database(name: str) -> str:
    """Create an empty Postgres database and return its URL."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(name: str) -> None:
    """Drop a database made by postgres_database."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migrate(url: str, instance: Path) -> None:
    """Bring the database at ``url`` to the newest migration (the way operators do)."""
    from flask_migrate import upgrade

    app = create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "test",
            "REDIS_URL": REDIS_URL,
        }
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each backend, shared by the tests of a session."""
    instance = tmp_path_factory.mktemp("instance")
    if request.param == "sqlite":
        url = f"sqlite:///{instance / 'test.sqlite3'}"
        migrate(url, instance)
        yield url
    elif request.param == "postgresql":
        name = f"civility_test_{RUN_ID}"
        url = postgres_database(name)
        migrate(url, instance)
        yield url
        drop_postgres_database(name)
    else:
        raise ValueError(f"unknown backend {request.param!r} in CIVILITY_TEST_DATABASES")


@pytest.fixture(scope="session")
def redis_server() -> redis.Redis:
    """The real Redis the tests use (each test under its own key prefix)."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.ping()
    return client


@pytest.fixture
def redis_prefix(redis_server: redis.Redis) -> Iterator[str]:
    """A key prefix for one test; its keys are deleted afterwards."""
    prefix = f"civility-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    yield prefix
    keys = list(redis_server.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        redis_server.delete(*keys)


def clear_tables() -> None:
    """Delete every row, children first, so the next test starts empty."""
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def config(database_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, Any]:
    """The test app's settings; tests may change them before asking for ``app``."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "RATELIMIT_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    """A Civility app on the test database and Redis prefix; tables are emptied afterwards."""
    app = create_app(config)
    with app.app_context():
        yield app
        db.session.remove()
        clear_tables()
        db.engine.dispose()
    # Its Redis connections too: left to the garbage collector, they warn (unclosed socket).
    app.extensions["civility.redis"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class SiteKeys:
    """A site and one key of each role."""

    id: int
    site: str
    moderator: str
    admin: str

    def auth(self, role: str = "site") -> dict[str, str]:
        """The Authorization header for this site's key of ``role``."""
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture
def make_site(app: Flask):
    """Factory: a new site with a key per role."""

    def make(name: str = "Example News", **settings: Any) -> SiteKeys:
        site = Site(name=name, **settings)
        db.session.add(site)
        db.session.flush()
        keys = {role.label: create_key(site, role, f"{name}-{role.label}") for role in Role}
        db.session.commit()
        return SiteKeys(id=site.id, **keys)

    return make


@pytest.fixture
def site(make_site) -> SiteKeys:
    return make_site()


@pytest.fixture
def other_site(make_site) -> SiteKeys:
    return make_site("Other Gazette")


@pytest.fixture
def submit(client: FlaskClient, site: SiteKeys):
    """Submit a comment as ``site`` (or ``as_site``); returns the response."""

    def post(
        body: str = "A thoughtful comment.",
        article: str = "article-1",
        author: str = "reader-1",
        as_site: SiteKeys | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ):
        payload = {"body": body, "author": {"id": author, "name": author.title()}, **fields}
        all_headers = {**(as_site or site).auth(), **(headers or {})}
        return client.post(f"/v1/articles/{article}/comments", json=payload, headers=all_headers)

    return post


@pytest.fixture
def start_worker(app: Flask, config: dict[str, Any], tmp_path: Path):
    """Factory: ``civility worker *args`` on the test database and Redis prefix; with
    ``ready``, it returns once the worker has announced that it answers synchronous
    requests. Workers still running are killed afterwards."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: bool = False, **settings: Any) -> WorkerProcess:
        merged = {
            **WORKER_SETTINGS,
            "DATABASE_URL": config["DATABASE_URL"],
            "REDIS_URL": config["REDIS_URL"],
            "REDIS_PREFIX": config["REDIS_PREFIX"],
            "INSTANCE_PATH": config["INSTANCE_PATH"],
            "SECRET_KEY": "test-secret",
            **settings,
        }
        worker = WorkerProcess(list(args), merged, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        if ready:
            client = app.extensions["civility.redis"]
            running = sum(w.process.poll() is None for w in started)
            wait_for(
                lambda: (
                    client.zcount(f"{config['REDIS_PREFIX']}:analyzers", time.time(), "+inf")
                    >= running
                ),
                "the worker announced itself",
                worker,
                timeout=180,  # torch loads slowly on a busy machine
            )
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A Detoxify-format checkpoint and its config dir (tests/checkpoints.py)."""
    from tests.checkpoints import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("detoxify"))


@pytest.fixture(scope="session")
def tiny_multilingual_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A Detoxify-format XLM-R checkpoint shaped like `detoxify:multilingual`, and its config
    dir (tests/checkpoints.py)."""
    from tests.checkpoints import build_tiny_multilingual_checkpoint

    return build_tiny_multilingual_checkpoint(tmp_path_factory.mktemp("xlmr"))


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app behind a threaded HTTP server (clients really talk HTTP); its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright, one for the session (browser_helpers.py)."""
    from tests.browser_helpers import CHROMIUM_ARGS, chromium_or_skip

    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def embed_origin() -> str:
    """The embedding site's origin; browser tests override it with their live host page."""
    return ORIGIN


@pytest.fixture
def sso_site(make_site, embed_origin):
    return make_site(
        "Embed News",
        origins=[embed_origin],
        public_reads=True,
        browser_submissions="sso",
        embed_secret=SECRET,
    )


@pytest.fixture
def anon_site(make_site):
    return make_site(
        "Open Forum", origins=[ORIGIN], public_reads=True, browser_submissions="anonymous"
    )


@pytest.fixture
def live(app):
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def host():
    page = HostPage()
    with page.server:
        yield page


@pytest.fixture
def readers(browser, live, host):
    opened: list[Reader] = []

    def open_reader(**kwargs) -> Reader:
        reader = Reader(browser, live, host, **kwargs)
        opened.append(reader)
        return reader

    yield open_reader
    for reader in opened:
        reader.close()


@pytest.fixture
def fast_webhooks(config):
    """Webhook settings that retry at once (the modules that deliver use it)."""
    config.update(FAST_WEBHOOKS)
    return config


@pytest.fixture(scope="module")
def http_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_receiver(http_server):
    yield lambda: Receiver(http_server)
    http_server.clear()


@pytest.fixture
def receiver(make_receiver):
    return make_receiver()


@pytest.fixture
def stream(redis_server: redis.Redis, redis_prefix: str) -> StreamCounts:
    """Names and counts of the test's scoring stream."""
    return StreamCounts(redis_server, f"{redis_prefix}:score")


@pytest.fixture
def analyze_stream(redis_server: redis.Redis, redis_prefix: str) -> StreamCounts:
    """The analyze stream's length and its group's pending count."""
    return StreamCounts(redis_server, f"{redis_prefix}:analyze")

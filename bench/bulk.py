"""Benchmark a bulk decision on 50,000 held comments, and its undo; writes bench/results/bulk.json.

Run from the repository root: ``.venv/bin/python -m bench.bulk`` (SQLite, and Postgres when
``CIVILITY_TEST_POSTGRES_URL``'s server answers; ``--backends sqlite`` picks), each without
and with one webhook endpoint (``--webhooks 0``). Every run gets a fresh database; the
requests go through the real HTTP routes (Flask's test client).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from service import create_app
from service.auth import Role, create_key
from service.config import DEFAULTS
from service.extensions import db
from service.models import (
    Article,
    Author,
    BulkAction,
    Comment,
    ModerationEvent,
    Site,
    WebhookEndpoint,
    utcnow,
)
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_URL, drop_postgres_database, migrate
from tests.conftest import postgres_database as make_postgres_database

RESULTS = Path(__file__).resolve().parent / "results" / "bulk.json"
COMMENTS = 50_000
AUTHORS = 5_000
INSERT_BATCH = 5_000


def rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Start a new peak-RSS measurement (Linux: ``5`` to clear_refs resets VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def seed(site_id: int) -> None:
    """50,000 held comments by 5,000 authors, each with its policy event, in big inserts."""
    article = Article(site_id=site_id, ref="bench", title="Bench")
    db.session.add(article)
    db.session.flush()
    author_ids = db.session.scalars(
        sa.insert(Author).returning(Author.id),
        [{"site_id": site_id, "ref": f"reader-{i}", "name": f"Reader {i}"} for i in range(AUTHORS)],
    ).all()
    scores = {"toxicity": 0.7, "insult": 0.2}
    reasons = [{"code": "toxicity", "label": "toxicity", "score": 0.7, "threshold": 0.6}]
    now = utcnow()
    for start in range(0, COMMENTS, INSERT_BATCH):
        rows = [
            {
                "site_id": site_id,
                "article_id": article.id,
                "author_id": author_ids[i % AUTHORS],
                "body": f"Bench comment number {i}, held for review.",
                "status": "held",
                "scores": scores,
                "max_score": 0.7,
                "model": "bench@1",
                "reasons": reasons,
                "reason_codes": " toxicity ",
                "created_at": now,
                "scored_at": now,
                "decided_at": now,
                "decided_by": "policy",
            }
            for i in range(start, start + INSERT_BATCH)
        ]
        ids = db.session.scalars(sa.insert(Comment).returning(Comment.id), rows).all()
        db.session.execute(
            sa.insert(ModerationEvent),
            [
                {
                    "site_id": site_id,
                    "comment_id": comment_id,
                    "from_status": "pending",
                    "to_status": "held",
                    "actor": "policy",
                    "scores": scores,
                    "model": "bench@1",
                    "reasons": reasons,
                    "created_at": now,
                }
                for comment_id in ids
            ],
        )
        db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # As autovacuum would have by the time 50,000 comments wait: plans need statistics.
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()


def measure(label: str, action: Callable[[], Any], rows: list[dict[str, Any]]) -> Any:
    """Run ``action``, record its seconds and peak RSS, and return its result."""
    db.session.expunge_all()
    reset_peak()
    before = rss_mib("VmRSS")
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    rows.append(
        {
            "case": label,
            "seconds": round(seconds, 2),
            "rss_before_mib": round(before, 1),
            "peak_rss_mib": round(rss_mib("VmHWM"), 1),
        }
    )
    return result


def run_backend(name: str, url: str, instance: Path, webhooks: bool) -> list[dict[str, Any]]:
    """Seed a fresh database, then time dry run, bulk reject and undo through the API."""
    migrate(url, instance)
    config = {
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "bench",
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"civility-bench-{uuid.uuid4().hex[:6]}",
        "RATELIMIT_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(config)
    rows: list[dict[str, Any]] = []
    with app.app_context():
        site = Site(name="Bench")
        db.session.add(site)
        db.session.flush()
        key = create_key(site, Role.MODERATOR, "bench-moderator")
        if webhooks:
            db.session.add(
                WebhookEndpoint(site_id=site.id, url="https://hooks.example/x", secret="s")
            )
        db.session.commit()
        site_id = site.id
        measure("seed 50,000 held comments", lambda: seed(site_id), rows)
        client = app.test_client()
        auth = {"Authorization": f"Bearer {key}"}
        selection = {"filter": {"status": "held", "article": "bench"}, "decision": "reject"}

        def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            answer = client.post(path, json=body, headers=auth)
            assert answer.status_code == 200, answer.get_json()
            return answer.get_json()

        dry = measure(
            "dry run", lambda: post("/v1/decisions/bulk", {**selection, "dry_run": True}), rows
        )
        done = measure("bulk reject", lambda: post("/v1/decisions/bulk", selection), rows)
        undone = measure("undo", lambda: post(f"/v1/decisions/bulk/{done['bulk_id']}/undo"), rows)
        assert dry["changed"] == done["changed"] == undone["changed"] == COMMENTS, (
            dry,
            done,
            undone,
        )
        held = db.session.scalar(
            sa.select(sa.func.count()).select_from(Comment).where(Comment.status == "held")
        )
        assert held == COMMENTS
        assert db.session.get(BulkAction, done["bulk_id"]).status == "undone"
        db.session.remove()
        db.engine.dispose()
    for row in rows:
        row["backend"] = name
        row["webhook_endpoints"] = int(webhooks)
    return rows


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def run_fresh(backend: str, webhooks: bool) -> list[dict[str, Any]]:
    """``run_backend`` on a new database of ``backend``, dropped afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        if backend == "sqlite":
            return run_backend(
                backend, f"sqlite:///{instance / 'bench.sqlite3'}", instance, webhooks
            )
        if backend == "postgresql" and postgres_available():
            name = f"civility_bench_{uuid.uuid4().hex[:8]}"
            try:
                return run_backend(backend, make_postgres_database(name), instance, webhooks)
            finally:
                drop_postgres_database(name)
    print(f"skipping {backend}: not available")
    return []


def main() -> None:
    """Run every chosen backend, print a table, write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--webhooks",
        default="0,1",
        help="webhook endpoints per run (each move then also writes an outbox row)",
    )
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for backend in options.backends.split(","):
        for webhooks in (bool(int(n)) for n in options.webhooks.split(",")):
            rows += run_fresh(backend, webhooks)

    print(f"{'backend':<11} {'webhooks':>8}  {'case':<26} {'seconds':>8} {'peak RSS MiB':>13}")
    for row in rows:
        print(
            f"{row['backend']:<11} {row['webhook_endpoints']:>8}  {row['case']:<26} "
            f"{row['seconds']:>8.2f} {row['peak_rss_mib']:>13.1f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "load_average_at_end": [round(n, 2) for n in os.getloadavg()],
                "comments": COMMENTS,
                "chunk_size": DEFAULTS["BULK_CHUNK_SIZE"],
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Database size after a year of traffic, before and after retention pruning; bench/results.

Run from the repository root: ``.venv/bin/python -m bench.retention`` (100,000 comments
over a year; ``--comments N`` for more). Seeds Postgres with bench/scale_seed.py's year of one
site (comments, the policy's decisions, moderators' moves, reports), adds what a live
site also writes (an arrival event per comment, a webhook delivery per event with its
attempts, ``suggestscore`` feedback, dashboard sessions), renumbers events and
deliveries in time order as a live table has them, and copies everything into a SQLite
file. On each backend it measures the size (SQLite: the file after VACUUM; Postgres:
``pg_total_relation_size`` of every table, after VACUUM and after VACUUM FULL), prunes
with the default ``CIVILITY_RETAIN_*`` settings (service.retention, as ``civility prune``
does), measures again, and prunes a second time (the cost of an hourly run with nothing
left to do). The year's /v1/stats counts are compared before and after. Writes
bench/results/retention.json and docs/bench-retention.png.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.common import DOCS, loadavg, pyplot, run_record, write_result
from bench.scale_seed import seed
from service import create_app, retention, rollups
from service.auth import Role, create_key
from service.config import DEFAULTS
from service.extensions import db
from service.models import ApiKey, Site, WebhookEndpoint, utcnow
from tests.conftest import REDIS_URL, drop_postgres_database, migrate
from tests.conftest import postgres_database as make_postgres_database

TABLES = (
    "comment",
    "moderation_event",
    "webhook_delivery",
    "webhook_attempt",
    "analyze_feedback",
    "dashboard_session",
    "report",
    "stats_day",
)
EVENT_COLUMNS = (
    "site_id, comment_id, from_status, to_status, actor, reason_code, note, scores, model,"
    " reasons, bulk_id, created_at"
)
# What a live site writes besides bench/scale_seed.py's seed, all in SQL.
SEED_ARRIVALS = """
INSERT INTO moderation_event (site_id, comment_id, from_status, to_status, actor, created_at)
SELECT site_id, id, NULL, 'pending', 'bench-site', created_at FROM comment WHERE site_id = :site
"""
# Events are inserted seed step by seed step; a live table has them in time order.
RENUMBER_EVENTS = f"""
WITH old AS (DELETE FROM moderation_event RETURNING *)
INSERT INTO moderation_event ({EVENT_COLUMNS})
SELECT {EVENT_COLUMNS} FROM old ORDER BY created_at, comment_id
"""
# One endpoint gets every event; 1% of deliveries failed after 5 attempts, the newest
# few are still pending. The payload is what service.outbox signs (the body included).
SEED_DELIVERIES = """
INSERT INTO webhook_delivery (message_id, site_id, endpoint_id, event_type, comment_id,
                              payload, status, attempts, next_attempt_at, created_at,
                              delivered_at, last_status_code, last_latency_ms)
SELECT 'msg_' || e.id, e.site_id, :endpoint,
       CASE WHEN e.from_status IS NULL THEN 'comment.created' ELSE 'comment.' || e.to_status END,
       e.comment_id,
       json_build_object('type', 'comment.' || e.to_status, 'timestamp', e.created_at,
           'data', json_build_object('comment_id', c.id,
               'article', json_build_object('ref', 'article-' || c.article_id),
               'author', json_build_object('id', 'reader-' || c.author_id),
               'body', c.body, 'status', e.to_status, 'previous_status', e.from_status,
               'reasons', c.reasons, 'scores', c.scores, 'model', c.model,
               'actor', e.actor, 'created_at', c.created_at, 'decided_at', c.decided_at))::text,
       CASE WHEN e.id > :pending_after THEN 'pending'
            WHEN e.id % 100 = 0 THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN e.id % 100 = 0 THEN 5 ELSE 1 END,
       e.created_at, e.created_at,
       CASE WHEN e.id % 100 <> 0 AND e.id <= :pending_after THEN e.created_at END,
       CASE WHEN e.id % 100 = 0 THEN 500 ELSE 200 END, 40
FROM moderation_event e JOIN comment c ON c.id = e.comment_id
WHERE e.site_id = :site ORDER BY e.id
"""
SEED_ATTEMPTS = """
INSERT INTO webhook_attempt (delivery_id, attempt, status_code, latency_ms, response_excerpt,
                             error, created_at)
SELECT d.id, n, d.last_status_code, 40,
       CASE WHEN d.last_status_code = 200 THEN '{"ok": true}' ELSE 'Internal Server Error' END,
       CASE WHEN d.last_status_code <> 200 THEN 'HTTP 500' END,
       d.created_at + (power(2, n) - 2) * interval '1 minute'
FROM webhook_delivery d CROSS JOIN LATERAL generate_series(1, d.attempts) AS g(n)
WHERE d.status <> 'pending' ORDER BY d.id, n
"""
# Coral's moderators label one comment in fifty through suggestscore.
SEED_FEEDBACK = """
INSERT INTO analyze_feedback (site_id, created_at, client_token, community_id, attributes,
                              languages, text)
SELECT site_id, created_at, 'coral-' || id, 'bench', '{"TOXICITY": 1.0}', '["en"]', body
FROM comment WHERE site_id = :site AND id % 50 = 0 ORDER BY id
"""
# Eight dashboard sign-ins a day, most signed out after eight hours.
SEED_SESSIONS = """
INSERT INTO dashboard_session (token_hash, site_id, key_id, csrf, ip, user_agent, created_at,
                               last_seen_at, expires_at, ended_at, ended_by)
SELECT md5('session' || i), :site, :key, md5('csrf' || i), '203.0.113.' || (i % 200),
       'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', t, t + interval '7 hours',
       t + interval '12 hours',
       CASE WHEN i % 10 < 7 THEN t + interval '8 hours' END,
       CASE WHEN i % 10 < 7 THEN 'bench-moderator' END
FROM generate_series(1, 365 * 8) AS g(i)
CROSS JOIN LATERAL (SELECT CAST(:start AS timestamp) + i * interval '3 hours' AS t) AS s
"""


def seed_year(engine: sa.Engine, site_id: int, key_id: int, comments: int) -> None:
    """bench/scale_seed.py's year, then what else a live site writes, in time order."""
    seed(engine, site_id, comments)
    with engine.begin() as conn:
        endpoint = conn.execute(
            sa.insert(WebhookEndpoint)
            .values(site_id=site_id, url="https://hooks.example/civility", secret="whsec_bench")
            .returning(WebhookEndpoint.id)
        ).scalar_one()
        conn.execute(sa.text(SEED_ARRIVALS), {"site": site_id})
        conn.execute(sa.text(RENUMBER_EVENTS))
        last = conn.scalar(sa.text("SELECT max(id) FROM moderation_event"))
        bounds = {"site": site_id, "endpoint": endpoint, "pending_after": last - 5}
        conn.execute(sa.text(SEED_DELIVERIES), bounds)
        conn.execute(sa.text(SEED_ATTEMPTS))
        conn.execute(sa.text(SEED_FEEDBACK), {"site": site_id})
        start = (utcnow() - timedelta(days=365)).replace(tzinfo=None)
        conn.execute(sa.text(SEED_SESSIONS), {"site": site_id, "key": key_id, "start": start})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def copy_to_sqlite(source: sa.Engine, target: sa.Engine) -> None:
    """Every row of every table, parents first, in id order, 20,000 at a time."""
    for table in db.metadata.sorted_tables:
        order = list(table.primary_key.columns)
        with source.connect() as read, target.begin() as write:
            rows = read.execution_options(yield_per=20_000).execute(
                sa.select(table).order_by(*order)
            )
            for part in rows.partitions():
                write.execute(table.insert(), [dict(row._mapping) for row in part])


def rows_of(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES}


def postgres_bytes(engine: sa.Engine, full: bool) -> dict[str, int]:
    """Each table's size with its TOAST and indexes, after VACUUM (FULL when ``full``)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM FULL ANALYZE" if full else "VACUUM ANALYZE"))
        sizes = {
            name: size
            for name, size in conn.execute(
                sa.text(
                    "SELECT relname, pg_total_relation_size(oid) FROM pg_class"
                    " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                )
            )
        }
    return {"total": sum(sizes.values()), **{t: sizes.get(t, 0) for t in TABLES}}


def sqlite_bytes(path: Path) -> dict[str, int]:
    """The file's size after VACUUM, and each table's pages with its indexes (dbstat)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes = dict(
            conn.execute(
                "SELECT coalesce(s.tbl_name, d.name), sum(d.pgsize) FROM dbstat d"
                " LEFT JOIN sqlite_schema s ON s.name = d.name GROUP BY 1"
            ).fetchall()
        )
    conn.close()
    return {"total": path.stat().st_size, **{t: sizes.get(t, 0) for t in TABLES}}


def prune_timed(settings: retention.Retention) -> dict[str, Any]:
    """The prune's work, timed in two parts: the days rolled up first, then the deletes."""
    started = time.perf_counter()
    # What prune() does first, done here to time it apart.
    rolled_up = rollups.fill(settings.events_horizon(utcnow()))
    filled = time.perf_counter()
    pruned = retention.prune(settings)
    done = time.perf_counter()
    return {
        "seconds": round(done - started, 2),
        "rollup_seconds": round(filled - started, 2),
        "delete_seconds": round(done - filled, 2),
        "rows": pruned.rows,
        "rolled_up_days": rolled_up + pruned.rolled_up_days,
    }


def measure(app: Any, site_id: int, size: Any) -> dict[str, Any]:
    """Sizes and stats before, the prune, a second (idle) prune, sizes and stats after."""
    settings = retention.Retention.from_config(app.config)
    now = utcnow()
    year = (now - timedelta(days=366), now)
    grace = app.config["STATS_ROLLUP_GRACE_S"]
    db.session.remove()
    before = {"rows": rows_of(db.engine), "bytes": size()}
    # Counted live from the tables: the prune must roll the days up itself.
    stats_before = rollups.live(site_id, *year)
    db.session.remove()
    first = prune_timed(settings)
    second = prune_timed(settings)
    stats_after = rollups.window(site_id, *year, grace)
    db.session.remove()
    db.engine.dispose()
    after = {"rows": rows_of(db.engine), "bytes": size()}
    assert stats_after == stats_before, "pruning changed the year's /v1/stats counts"
    return {"before": before, "prune": first, "prune_again": second, "after": after}


def run(comments: int) -> dict[str, Any]:
    """Seed Postgres, copy to SQLite, measure both; drop what was made."""
    name = f"civility_retention_{uuid.uuid4().hex[:8]}"
    url = make_postgres_database(name)
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_path = Path(tmp) / "retention.sqlite3"
            sqlite_url = f"sqlite:///{sqlite_path}"
            migrate(url, Path(tmp) / "pg")
            migrate(sqlite_url, Path(tmp) / "sqlite")
            apps = {
                backend: create_app(
                    {
                        "DATABASE_URL": database,
                        "INSTANCE_PATH": str(Path(tmp) / backend),
                        "SECRET_KEY": "bench",
                        "REDIS_URL": REDIS_URL,
                        "REDIS_PREFIX": f"civility-retention-{uuid.uuid4().hex[:6]}",
                        "LOG_LEVEL": "WARNING",
                    }
                )
                for backend, database in (("postgresql", url), ("sqlite", sqlite_url))
            }
            with apps["postgresql"].app_context():
                site = Site(name="Bench Gazette")
                db.session.add(site)
                db.session.flush()
                create_key(site, Role.MODERATOR, "bench-moderator")
                site_id = site.id
                key_id = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.site_id == site_id))
                db.session.commit()
                db.session.close()
                started = time.perf_counter()
                seed_year(db.engine, site_id, key_id, comments)
                print(
                    f"{comments:,} comments' year seeded in {time.perf_counter() - started:.0f} s"
                )
                source = db.engine
                with apps["sqlite"].app_context():
                    started = time.perf_counter()
                    copy_to_sqlite(source, db.engine)
                print(f"copied to SQLite in {time.perf_counter() - started:.0f} s", flush=True)
                results["postgresql"] = measure(
                    apps["postgresql"],
                    site_id,
                    lambda: {
                        "vacuum": postgres_bytes(db.engine, full=False),
                        "vacuum_full": postgres_bytes(db.engine, full=True),
                    },
                )
            with apps["sqlite"].app_context():
                results["sqlite"] = measure(
                    apps["sqlite"], site_id, lambda: {"vacuum": sqlite_bytes(sqlite_path)}
                )
                db.engine.dispose()
            for app in apps.values():
                app.extensions["civility.redis"].close()
    finally:
        drop_postgres_database(name)
    return results


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


def table(results: dict[str, Any]) -> str:
    """Rows and MB per table, before → after, per backend, as Markdown."""
    lines = [
        "| table | rows before → after | SQLite MB | Postgres MB (VACUUM FULL) |",
        "|---|---|---|---|",
    ]
    pg, lite = results["postgresql"], results["sqlite"]
    for name in ("total", *TABLES):
        rows = ""
        if name != "total":
            rows = f"{pg['before']['rows'][name]:,} → {pg['after']['rows'][name]:,}"
        cells = [
            f"{mb(r['before']['bytes'][kind][name])} → {mb(r['after']['bytes'][kind][name])}"
            for r, kind in ((lite, "vacuum"), (pg, "vacuum_full"))
        ]
        lines.append(f"| {name} | {rows} | " + " | ".join(cells) + " |")
    for backend in ("sqlite", "postgresql"):
        first, again = results[backend]["prune"], results[backend]["prune_again"]
        lines.append(
            f"\n{backend}: rolled {first['rolled_up_days']} days up in {first['rollup_seconds']}"
            f" s, then deleted {sum(first['rows'].values()):,} rows in"
            f" {first['delete_seconds']} s; again: {again['seconds']} s"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Before and after bars per table, one panel per backend."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=False)
    names = [t for t in TABLES if t != "stats_day"]
    for ax, (backend, kind, title) in zip(
        axes,
        (("sqlite", "vacuum", "SQLite (file after VACUUM)"),
         ("postgresql", "vacuum_full", "Postgres (after VACUUM FULL)")),
        strict=True,
    ):  # fmt: skip
        r = results[backend]
        xs = range(len(names))
        before = [r["before"]["bytes"][kind][t] / 1e6 for t in names]
        after = [r["after"]["bytes"][kind][t] / 1e6 for t in names]
        ax.bar([x - 0.2 for x in xs], before, width=0.4, label="before pruning")
        ax.bar([x + 0.2 for x in xs], after, width=0.4, label="after pruning")
        ax.set_xticks(list(xs), [n.replace("_", "\n") for n in names], fontsize=7)
        ax.set_ylabel("MB (with indexes)")
        total = (r["before"]["bytes"][kind]["total"], r["after"]["bytes"][kind]["total"])
        ax.set_title(f"{title}: {mb(total[0])} → {mb(total[1])} MB", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("A year of one site's traffic, before and after the default retention")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000, help="comments in the year")
    options = parser.parse_args()
    started, load_start = time.time(), loadavg()
    results = run(options.comments)
    print(table(results))
    record = run_record("retention.py", started, load_start)
    settings = {name: DEFAULTS[name] for name in retention.DAYS_SETTINGS}
    path = write_result(
        "retention", {**record, "comments": options.comments, "settings": settings, **results}
    )
    print(f"wrote {path}")
    plot(results, DOCS / "bench-retention.png")
    print(f"drew {DOCS / 'bench-retention.png'}")


if __name__ == "__main__":
    os.environ.setdefault("CIVILITY_LOG_LEVEL", "WARNING")
    main()

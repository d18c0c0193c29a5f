"""How reads grow with the comment table: seeds Postgres by SQL, times each route; bench/results.

Run from the repository root: ``.venv/bin/python -m bench.scale`` (10k, 100k and 1M
comments; ``--max 10000000`` adds 10M, ``--sizes`` picks). Each size gets a fresh database,
seeded straight through SQL (``generate_series``: a year of one site, a few busy articles
and authors, 10% held, one policy event per decision, ~3.6% reported), then ANALYZEd as
autovacuum would have; every route goes through the real Flask app (its test client)
and is timed 5 times after a warm-up call. Writes bench/results/scale.json and
docs/bench-scale.png, and drops each database (``--keep`` leaves the last for EXPLAIN).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.common import DOCS, comment_texts, loadavg, pyplot, run_record, write_result
from service import create_app
from service.auth import Role, create_key
from service.extensions import db
from service.models import Site, utcnow
from tests.conftest import REDIS_URL, drop_postgres_database, migrate
from tests.conftest import postgres_database as make_postgres_database

SIZES = (10_000, 100_000, 1_000_000)
CALLS = 5
TEXTS = 2_000  # distinct real comment bodies the seed cycles through
LABELS = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
)
# Inserted per statement: bounds the seed's memory and WAL per transaction.
SEED_BATCH = 500_000
TABLES = ("comment", "moderation_event", "report", "author", "article")

# One row per comment, all in SQL. The randoms: r_art and r_auth skew towards low ids
# (power laws: a few busy articles and prolific authors; the busiest of 1,000
# articles gets 1% of the comments), r_fate picks the status,
# r_tox the toxicity. ids rise with created_at, as they do in a live table.
SEED_COMMENTS = """
INSERT INTO comment (id, site_id, article_id, author_id, body, status, scores, model,
                     reasons, max_score, reason_codes, created_at, scored_at, decided_at,
                     decided_by)
SELECT g.i, :site, :first_article + floor(:articles * power(g.r_art, 1.5))::bigint,
       :first_author + floor(:authors * power(g.r_auth, 2))::bigint,
       t.body, f.status,
       CASE WHEN f.status <> 'pending' THEN json_build_object(
           'toxicity', f.tox, 'severe_toxicity', f.tox / 8, 'obscene', f.tox / 2,
           'threat', f.tox / 10, 'insult', f.tox * 0.7, 'identity_attack', f.tox / 9,
           'sexual_explicit', f.tox / 12) END,
       CASE WHEN f.status <> 'pending' THEN 'detoxify:original@0.5.2' END,
       CASE f.status WHEN 'held' THEN
            json_build_array(json_build_object('code', 'toxicity', 'label', 'toxicity',
                                               'score', f.tox, 'threshold', 0.6))
            WHEN 'rejected' THEN json_build_array(json_build_object('code', 'banned_word',
                                                                    'word', 'spamword'))
            ELSE '[]'::json END,
       CASE WHEN f.status <> 'pending' THEN f.tox END,
       CASE f.status WHEN 'held' THEN ' toxicity ' WHEN 'rejected' THEN ' banned_word ' END,
       f.created,
       CASE WHEN f.status <> 'pending' THEN f.created + interval '2 seconds' END,
       CASE WHEN f.status <> 'pending' THEN f.created + interval '2 seconds' END,
       CASE WHEN f.status <> 'pending' THEN 'policy' END
FROM (SELECT i, random() AS r_art, random() AS r_auth, random() AS r_fate,
             random() AS r_tox
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS s(i)) AS g
CROSS JOIN LATERAL (
    SELECT fate.status,
           CAST(:start AS timestamp)
               + CAST(:span AS interval) * (CAST(g.i - :first0 AS float8) / :total) AS created,
           CASE fate.status WHEN 'held' THEN 0.6 + 0.4 * g.r_tox
                WHEN 'rejected' THEN 0.5 * g.r_tox
                ELSE 0.3 * power(g.r_tox, 2) END AS tox
    FROM (SELECT CASE WHEN g.i > :last_decided THEN 'pending'
                      WHEN g.r_fate < 0.10 THEN 'held'
                      WHEN g.r_fate < 0.15 THEN 'rejected'
                      ELSE 'approved' END AS status) AS fate
) AS f
JOIN bench_text AS t ON t.n = g.i % :texts
"""
SEED_POLICY_EVENTS = """
INSERT INTO moderation_event (site_id, comment_id, from_status, to_status, actor,
                              reason_code, created_at)
SELECT site_id, id, 'pending', status, 'policy', btrim(reason_codes), decided_at
FROM comment WHERE site_id = :site AND status <> 'pending' AND id BETWEEN :first AND :last
"""
# A third of the comments ever held were decided by a moderator; they are no longer held.
SEED_MODERATOR_MOVES = """
WITH moved AS (
    UPDATE comment SET status = CASE WHEN id % 5 = 0 THEN 'rejected' ELSE 'approved' END,
                       decided_by = 'moderator-' || (id % 4),
                       decided_at = created_at + interval '40 minutes'
    WHERE site_id = :site AND status = 'held' AND id % 3 = 0 AND id BETWEEN :first AND :last
    RETURNING id, site_id, status, decided_by, decided_at
)
INSERT INTO moderation_event (site_id, comment_id, from_status, to_status, actor, created_at)
SELECT site_id, id, 'held', status, decided_by, decided_at FROM moved
"""
SEED_REPORTS = """
INSERT INTO report (site_id, comment_id, reason, reporter_ref, created_at, resolved_at,
                    resolved_by)
SELECT site_id, id, (ARRAY['offensive', 'abusive', 'spam', 'other'])[1 + id % 4],
       'reader-' || (id % 997), created_at + interval '1 hour',
       CASE WHEN id % 10 < 7 THEN created_at + interval '1 day' END,
       CASE WHEN id % 10 < 7 THEN 'moderator-1' END
FROM comment
WHERE site_id = :site AND status IN ('approved', 'held') AND id BETWEEN :first AND :last
      AND (hashint8(id) % 1000 + 1000) % 1000 < 40
"""
SEED_AUTHOR_COUNTS = """
UPDATE author SET approved_count = c.approved, rejected_count = c.rejected
FROM (SELECT author_id, count(*) FILTER (WHERE status = 'approved') AS approved,
             count(*) FILTER (WHERE status = 'rejected') AS rejected
      FROM comment WHERE site_id = :site GROUP BY author_id) AS c
WHERE author.id = c.author_id
"""


def seed(engine: sa.Engine, site_id: int, comments: int) -> dict[str, Any]:
    """A year of ``comments`` on one site, by SQL; returns the refs and ids routes need."""
    articles = max(10, comments // 1000)
    authors = max(100, comments // 20)
    now = utcnow()
    start = (now - timedelta(days=365)).replace(tzinfo=None)  # the columns hold naive UTC
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(0.15)"))
        conn.execute(sa.text("CREATE TEMP TABLE bench_text (n int PRIMARY KEY, body text)"))
        texts = comment_texts(TEXTS)
        conn.execute(
            sa.text("INSERT INTO bench_text VALUES (:n, :body)"),
            [{"n": n, "body": body} for n, body in enumerate(texts)],
        )
        conn.execute(
            sa.text(
                "INSERT INTO article (site_id, ref, title, url, comments_open, created_at,"
                " updated_at) SELECT :site, 'article-' || i, 'Article ' || i,"
                " 'https://news.example/' || i, true, :start, :start"
                " FROM generate_series(1, :n) AS g(i) ORDER BY i"
            ),
            {"site": site_id, "n": articles, "start": start},
        )
        conn.execute(
            sa.text(
                "INSERT INTO author (site_id, ref, name, status, approved_count,"
                " rejected_count, created_at) SELECT :site, 'reader-' || i, 'Reader ' || i,"
                " 'active', 0, 0, :start FROM generate_series(1, :n) AS g(i) ORDER BY i"
            ),
            {"site": site_id, "n": authors, "start": start},
        )
        first_id = conn.scalar(sa.text("SELECT coalesce(max(id), 0) + 1 FROM comment"))
    last_id = first_id + comments - 1
    # The newest 0.01% are still waiting for the worker.
    last_decided = last_id - max(5, comments // 10_000)
    common = {"site": site_id, "articles": articles, "authors": authors, "texts": TEXTS}
    with engine.connect() as conn:
        common["first_article"] = conn.scalar(
            sa.text("SELECT min(id) FROM article WHERE site_id = :site"), common
        )
        common["first_author"] = conn.scalar(
            sa.text("SELECT min(id) FROM author WHERE site_id = :site"), common
        )
    for first in range(first_id, last_id + 1, SEED_BATCH):
        last = min(last_id, first + SEED_BATCH - 1)
        bounds = {**common, "first": first, "last": last}
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT setseed(:s)"), {"s": (first % 1000) / 1000})
            conn.execute(
                sa.text(SEED_COMMENTS),
                {
                    **bounds,
                    "first0": first_id,
                    "total": comments,
                    "start": start,
                    "span": timedelta(days=365) - timedelta(minutes=5),
                    "last_decided": last_decided,
                },
            )
            conn.execute(sa.text(SEED_POLICY_EVENTS), bounds)
            conn.execute(sa.text(SEED_MODERATOR_MOVES), bounds)
            conn.execute(sa.text(SEED_REPORTS), bounds)
    with engine.begin() as conn:
        conn.execute(sa.text(SEED_AUTHOR_COUNTS), common)
        # The ids were given explicitly: move the sequence past them.
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('comment', 'id'), :last)"),
            {"last": last_id},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # As autovacuum would have by now: statistics and the visibility map.
        conn.execute(sa.text("VACUUM ANALYZE"))
        busy = conn.execute(
            sa.text(
                "SELECT a.ref FROM article a JOIN comment c ON c.article_id = a.id"
                " WHERE c.site_id = :site AND c.id >= :last - 5000"
                " GROUP BY a.ref ORDER BY count(*) DESC LIMIT 1"
            ),
            {"site": site_id, "last": last_id},
        ).scalar_one()
        author = conn.execute(
            sa.text(
                "SELECT a.ref FROM author a JOIN comment c ON c.author_id = a.id"
                " WHERE c.id >= :last - 5000 GROUP BY a.ref ORDER BY count(*) DESC LIMIT 1"
            ),
            {"last": last_id},
        ).scalar_one()
        sizes = {
            table: conn.scalar(sa.text(f"SELECT pg_total_relation_size('{table}')"))
            for table in TABLES
        }
        counts = {table: conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in TABLES}
    return {
        "busy_article": busy,
        "busy_author": author,
        "comment_id": last_decided,
        "table_bytes": sizes,
        "rows": counts,
    }


def routes(seeded: dict[str, Any], now: Any) -> list[tuple[str, str, str, Any]]:
    """(name, method, path, query or body) of every timed request."""
    year_ago = (now - timedelta(days=365)).isoformat()
    busy, author = seeded["busy_article"], seeded["busy_author"]
    return [
        ("queue held -score toxicity", "GET", "/v1/queue",
         {"status": "held", "sort": "-score", "label": "toxicity"}),
        ("queue counts by article", "GET", "/v1/queue/counts", {"by_article": "true"}),
        ("queue counts", "GET", "/v1/queue/counts", {}),
        ("stats (30 days)", "GET", "/v1/stats", {}),
        ("stats (a year)", "GET", "/v1/stats", {"since": year_ago}),
        ("bulk dry run held tox>=0.9", "POST", "/v1/decisions/bulk",
         {"filter": {"status": "held", "label": "toxicity", "min_score": 0.9},
          "decision": "reject", "dry_run": True}),
        # The flat ones: everything that reads by article, author or comment.
        ("queue held (oldest first)", "GET", "/v1/queue", {}),
        ("queue held -score (any label)", "GET", "/v1/queue", {"sort": "-score"}),
        ("queue of one article", "GET", "/v1/queue", {"article": busy}),
        ("queue counts of one article", "GET", "/v1/queue/counts", {"article": busy}),
        ("public comments of busy article", "GET", f"/v1/articles/{busy}/comments", {}),
        ("article with counts", "GET", f"/v1/articles/{busy}", {}),
        ("author", "GET", f"/v1/authors/{author}", {}),
        ("comment history", "GET", f"/v1/comments/{seeded['comment_id']}/history", {}),
    ]  # fmt: skip


def call(client: Any, auth: dict[str, str], route: tuple[str, str, str, Any]) -> None:
    """One request of ``route``; anything but 200 stops the bench."""
    name, method, path, params = route
    if method == "GET":
        answer = client.get(path, query_string=params, headers=auth)
    else:
        answer = client.post(path, json=params, headers=auth)
    assert answer.status_code == 200, (name, answer.status_code, answer.get_json())


def time_routes(app: Any, key: str, seeded: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Median and max ms of CALLS calls of each route after a warm-up call (timed too)."""
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    timings = {}
    for route in routes(seeded, utcnow()):
        started = time.perf_counter()
        call(client, auth, route)
        first = (time.perf_counter() - started) * 1000
        samples = []
        for _ in range(CALLS):
            started = time.perf_counter()
            call(client, auth, route)
            samples.append((time.perf_counter() - started) * 1000)
        timings[route[0]] = {
            "median_ms": round(statistics.median(samples), 1),
            "max_ms": round(max(samples), 1),
            # The warm-up: cold caches, and stats' first count of each closed day.
            "first_ms": round(first, 1),
        }
    return timings


def run_size(comments: int, keep: bool) -> dict[str, Any]:
    """Seed a fresh database with ``comments`` comments and time every route on it."""
    name = f"civility_scale_{uuid.uuid4().hex[:8]}"
    url = make_postgres_database(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            migrate(url, Path(tmp))
            app = create_app(
                {
                    "DATABASE_URL": url,
                    "INSTANCE_PATH": tmp,
                    "SECRET_KEY": "bench",
                    "REDIS_URL": REDIS_URL,
                    "REDIS_PREFIX": f"civility-scale-{uuid.uuid4().hex[:6]}",
                    "RATELIMIT_ENABLED": False,
                    "LOG_LEVEL": "WARNING",
                    # The dry run counts every match; the real run is what BULK_MAX bounds.
                    "BULK_MAX": 10**9,
                }
            )
            with app.app_context():
                site = Site(name="Bench Gazette", public_reads=True)
                db.session.add(site)
                db.session.flush()
                key = create_key(site, Role.MODERATOR, "bench-moderator")
                site_id = site.id
                db.session.commit()
                # No transaction of ours may stay open: VACUUM could not mark pages visible.
                db.session.close()
                started = time.perf_counter()
                seeded = seed(db.engine, site_id, comments)
                seed_s = time.perf_counter() - started
                print(f"{comments:>10,} comments seeded in {seed_s:.0f} s", flush=True)
                timings = time_routes(app, key, seeded)
                db.session.remove()
                db.engine.dispose()
            app.extensions["civility.redis"].close()
    finally:
        if keep:
            print(f"kept database {name}: {url}")
        else:
            drop_postgres_database(name)
    return {"comments": comments, "seed_s": round(seed_s, 1), **seeded, "routes": timings}


def table(results: list[dict[str, Any]]) -> str:
    """The growth table (median ms, max in brackets) as Markdown."""
    sizes = [f"{r['comments']:,}" for r in results]
    lines = [
        "| request | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for name in results[0]["routes"]:
        cells = [
            f"{r['routes'][name]['median_ms']:.1f} ({r['routes'][name]['max_ms']:.0f})"
            for r in results
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Median latency against comments, log-log, one line per route."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    sizes = [r["comments"] for r in results]
    for name in results[0]["routes"]:
        ax.plot(sizes, [r["routes"][name]["median_ms"] for r in results], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(50, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("comments in the database")
    ax.set_ylabel("median latency, ms (5 calls after a warm-up)")
    ax.set_title("Civility on Postgres: request latency as the comment table grows")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    """Seed, time and drop each size; print the table, write JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=1_000_000, help="largest size (10M: 1e7)")
    parser.add_argument("--sizes", help="comma-separated sizes instead of 10k, 100k, 1M…")
    parser.add_argument("--keep", action="store_true", help="keep the last database")
    parser.add_argument("--name", default="scale", help="results name (bench/results/NAME.json)")
    options = parser.parse_args()
    if options.sizes:
        sizes = [int(float(s)) for s in options.sizes.split(",")]
    else:
        sizes = [s for s in (*SIZES, 10_000_000) if s <= options.max]
    started, load_start = time.time(), loadavg()
    results = []
    for i, size in enumerate(sizes):
        results.append(run_size(size, keep=options.keep and i == len(sizes) - 1))
        print(f"  load average {loadavg()}", flush=True)
    print(table(results))
    record = run_record("scale.py", started, load_start)
    path = write_result(options.name, {**record, "calls": CALLS, "sizes": results})
    print(f"wrote {path}")
    if len(results) > 1:
        plot(results, DOCS / f"bench-{options.name}.png")
        print(f"drew {DOCS / f'bench-{options.name}.png'}")


if __name__ == "__main__":
    main()

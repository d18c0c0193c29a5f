"""How reads grow with the comment table: seeds Postgres by SQL, times each route; bench/results.

Run from the repository root: ``.venv/bin/python -m bench.scale`` (10k, 100k and 1M
comments; ``--max 10000000`` adds 10M, ``--sizes`` picks). Each size gets a fresh database,
seeded straight through SQL (``generate_series``: a year of one site, a few busy articles
and authors, 10% held, one policy event per decision, ~3.6% reported), then ANALYZEd as
autovacuum would have; every route goes through the real Flask app (its test client)
and is timed 5 times after a warm-up call. Writes bench/results/scale.json and
docs/bench-scale.png, and drops each database (``--keep`` leaves the last for EXPLAIN;
``--database URL`` times such a kept database again, migrated to the current schema).
"""

from __future__ import annotations

import argparse
import json
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

from bench.common import DOCS, loadavg, pyplot, run_record, write_result
from bench.scale_seed import refs, seed
from service import create_app
from service.auth import Role, create_key
from service.extensions import db
from service.models import Site, utcnow
from tests.conftest import REDIS_URL, drop_postgres_database, migrate
from tests.conftest import postgres_database as make_postgres_database

SIZES = (10_000, 100_000, 1_000_000)
SITE_NAME = "Bench Gazette"
CALLS = 5


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


def _app(url: str, tmp: str) -> Any:
    return create_app(
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


def run_size(comments: int, keep: bool) -> dict[str, Any]:
    """Seed a fresh database with ``comments`` comments and time every route on it."""
    name = f"civility_scale_{uuid.uuid4().hex[:8]}"
    url = make_postgres_database(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            migrate(url, Path(tmp))
            app = _app(url, tmp)
            with app.app_context():
                site = Site(name=SITE_NAME, public_reads=True)
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


def run_kept(url: str) -> dict[str, Any]:
    """Time every route on a database an earlier ``--keep`` run seeded (migrated to the
    current schema first: a change's migration is timed on the data it met)."""
    with tempfile.TemporaryDirectory() as tmp:
        migrate(url, Path(tmp))
        app = _app(url, tmp)
        with app.app_context():
            site = db.session.scalars(sa.select(Site).where(Site.name == SITE_NAME)).one()
            key = create_key(site, Role.MODERATOR, f"bench-moderator-{uuid.uuid4().hex[:6]}")
            site_id = site.id
            db.session.commit()
            db.session.close()
            seeded = refs(db.engine, site_id)
            comments = seeded["rows"]["comment"]
            print(f"{comments:>10,} comments in the kept database", flush=True)
            timings = time_routes(app, key, seeded)
            db.session.remove()
            db.engine.dispose()
        app.extensions["civility.redis"].close()
    return {"comments": comments, "seed_s": None, **seeded, "routes": timings}


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


def draw(results: list[dict[str, Any]], name: str) -> None:
    """The plot of ``results`` as docs/bench-NAME.png."""
    path = DOCS / f"bench-{name}.png"
    plot(results, path)
    print(f"drew {path}")


def main() -> None:
    """Seed, time and drop each size; print the table, write JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=1_000_000, help="largest size (10M: 1e7)")
    parser.add_argument("--sizes", help="comma-separated sizes instead of 10k, 100k, 1M…")
    parser.add_argument("--keep", action="store_true", help="keep the last database")
    parser.add_argument("--name", default="scale", help="results name (bench/results/NAME.json)")
    parser.add_argument(
        "--database", help="time the kept database at this URL instead of seeding (not dropped)"
    )
    parser.add_argument(
        "--plot-from",
        nargs="+",
        metavar="JSON",
        help="draw bench-NAME.png from these results files (joined by size) and stop",
    )
    options = parser.parse_args()
    if options.plot_from:
        results = [r for f in options.plot_from for r in json.loads(Path(f).read_text())["sizes"]]
        draw(sorted(results, key=lambda r: r["comments"]), options.name)
        return
    if options.sizes:
        sizes = [int(float(s)) for s in options.sizes.split(",")]
    else:
        sizes = [s for s in (*SIZES, 10_000_000) if s <= options.max]
    started, load_start = time.time(), loadavg()
    results = []
    if options.database:
        results.append(run_kept(options.database))
        sizes = []
    for i, size in enumerate(sizes):
        results.append(run_size(size, keep=options.keep and i == len(sizes) - 1))
        print(f"  load average {loadavg()}", flush=True)
    print(table(results))
    record = run_record("scale.py", started, load_start)
    path = write_result(options.name, {**record, "calls": CALLS, "sizes": results})
    print(f"wrote {path}")
    if len(results) > 1:
        draw(results, options.name)


if __name__ == "__main__":
    main()

"""Latency while scoring: fixed comment rates against the API with one BERT-base worker.

For each worker thread budget (CIVILITY_MODEL_THREADS) a fresh Civility (SQLite, API
under gunicorn with 2 workers, one `civility worker` scoring with the BERT-base-shaped
checkpoint of bench/scoring.py) is offered each rate for a bounded time by
bench/loadgen.py; then the backlog drains (bounded too). Reports ingest p50/p99 (from the
scheduled send time), submit→decision p50/p99 (the comments' created_at → decided_at),
the backlog over time (comments pending, and the stream's length) and whether the
worker kept up.
Prints a table, writes bench/results/e2e.json and docs/bench-e2e.png.

    .venv/bin/python bench/e2e.py [--quick] [--rates 5,20,100] [--threads 1,2] [--duration 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DOCS,
    ROOT,
    Civility,
    comment_texts,
    loadavg,
    percentile,
    pyplot,
    run_loadgen,
    run_record,
    wait_until,
    write_result,
)

CACHE = Path(os.environ.get("CIVILITY_BENCH_CACHE", Path(tempfile.gettempdir()) / "civility-bench"))


def queue_sampler(civility: Civility, client, samples: list, stop: threading.Event) -> None:
    """Append (time, comments pending, stream length) twice a second until ``stop``.

    The pending count is the backlog; the stream can be longer, because the sweeper
    re-adds comments that waited longer than CIVILITY_SWEEP_AFTER_S (duplicates the
    worker drops unscored).
    """
    import sqlalchemy as sa

    engine = civility.engine()
    query = sa.text("SELECT count(*) FROM comment WHERE status = 'pending'")
    while not stop.is_set():
        with engine.connect() as conn:
            pending = conn.execute(query).scalar()
        samples.append((time.time(), pending, client.xlen(f"{civility.prefix}:score")))
        stop.wait(0.5)
    engine.dispose()


def decision_latencies(civility: Civility, ids: list[int]) -> tuple[list[float], int]:
    """Seconds from created_at to decided_at of the decided ``ids``; and how many are pending."""
    import sqlalchemy as sa

    engine = civility.engine()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT created_at, decided_at FROM comment WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        ).all()
    engine.dispose()
    done = [parse(d) - parse(c) for c, d in rows if d is not None]
    return done, len(ids) - len(done)


def parse(value) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp()


def one_rate(civility: Civility, redis_client, rate: float, args, texts, workdir) -> dict:
    """Offer ``rate`` comments/s for args.duration s, then wait (bounded) for the drain."""
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=queue_sampler, args=(civility, redis_client, samples, stop))
    count = max(1, round(rate * args.duration))
    requests = [
        {
            "method": "POST",
            "url": f"{civility.url}/v1/articles/e2e/comments",
            "headers": {
                "Authorization": f"Bearer {civility.site_key}",
                "Content-Type": "application/json",
            },
            "body": json.dumps({"body": text, "author": {"id": f"u{i % 200}"}}),
        }
        for i, text in enumerate(texts[:count])
    ]
    began = time.time()
    sampler.start()
    try:
        out = run_loadgen(
            {"mode": "rate", "rate": rate, "count": count, "requests": requests, "record": True},
            workdir,
        )
        offered_end = time.time()
        ids = [r[3] for r in out["records"] if r[2] == 202]
        backlog_at_end = decision_latencies(civility, ids)[1]
        drained = True
        try:
            wait_until(lambda: decision_latencies(civility, ids)[1] == 0, args.drain_max, "drain")
        except TimeoutError:
            drained = False
        drain_s = time.time() - offered_end
    finally:
        stop.set()
        sampler.join()
    latencies, pending = decision_latencies(civility, ids)
    decided = len(latencies)
    return {
        "rate": rate,
        "offered": count,
        "accepted": len(ids),
        "ingest_p50_ms": out["p50_ms"],
        "ingest_p99_ms": out["p99_ms"],
        "ingest_max_ms": out["max_ms"],
        "ingest_errors": out["errors"],
        "decision_p50_s": percentile(latencies, 50),
        "decision_p99_s": percentile(latencies, 99),
        "decided": decided,
        "still_pending": pending,
        "backlog_at_end_of_offer": backlog_at_end,
        "drain_s": drain_s if drained else None,
        "scored_per_s": decided / (time.time() - began) if decided else 0.0,
        "kept_up": backlog_at_end <= max(32, rate),
        "stream_max": max((x for _, _, x in samples), default=0),
        "queue": [(round(t - began, 2), n, x) for t, n, x in samples],
    }


def run_threads(threads: int, rates, args, texts, workdir: Path) -> list[dict]:
    import redis

    from tests.checkpoints import build_bert_base_checkpoint

    checkpoint, config_dir = build_bert_base_checkpoint(CACHE)
    civility = Civility("sqlite", RATELIMIT_ENABLED="false")
    try:
        civility.serve(workers=2)
        civility.start(
            f"worker-{threads}",
            "worker",
            CIVILITY_SCORER=f"detoxify:{checkpoint}",
            CIVILITY_SCORER_FALLBACK="none",
            CIVILITY_MODEL_CONFIG_DIR=str(config_dir),
            CIVILITY_MODEL_THREADS=str(threads),
            CIVILITY_HEARTBEAT_S="1",
        )
        client = redis.Redis.from_url(civility.redis_url)
        wait_until(
            lambda: any(client.scan_iter(f"{civility.prefix}:worker:*")), 180, "worker heartbeat"
        )
        rows = []
        for rate in rates:
            row = one_rate(civility, client, rate, args, texts, workdir)
            row["threads"] = threads
            print(
                f"  threads={threads} rate={rate:>5}/s  ingest p50 {row['ingest_p50_ms']:.1f} "
                f"p99 {row['ingest_p99_ms']:.1f} ms  decision p50 {row['decision_p50_s']:.1f} "
                f"p99 {row['decision_p99_s']:.1f} s  backlog {row['backlog_at_end_of_offer']}  "
                f"drain {row['drain_s']}",
                flush=True,
            )
            rows.append(row)
        return rows
    finally:
        civility.close()


def plot(rows: list[dict]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for row in rows:
        t, depth, _ = zip(*row["queue"], strict=True) if row["queue"] else ((), (), ())
        style = "-" if row["threads"] == 1 else "--"
        label = f"{row['rate']:g}/s, {row['threads']} thread{'s' * (row['threads'] > 1)}"
        left.plot(t, depth, style, label=label)
    left.axvline(rows[0]["offered"] / rows[0]["rate"], color="grey", linewidth=0.8)
    left.set_xlabel("seconds since the first comment (grey: end of the offer)")
    left.set_ylabel("comments pending (backlog)")
    left.set_title("Queue depth: offer, then drain")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    for threads in sorted({r["threads"] for r in rows}):
        mine = [r for r in rows if r["threads"] == threads]
        rates = [str(r["rate"]) for r in mine]
        right.plot(rates, [r["ingest_p50_ms"] for r in mine], "o-", label=f"p50, {threads}t")
        right.plot(rates, [r["ingest_p99_ms"] for r in mine], "x--", label=f"p99, {threads}t")
    right.set_xlabel("offered comments/s")
    right.set_ylabel("ingest latency, ms")
    right.set_title("POST latency while the worker scores")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "bench-e2e.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5,20,100", help="offered comments per second")
    parser.add_argument("--threads", default="1,2", help="CIVILITY_MODEL_THREADS values")
    parser.add_argument("--duration", type=float, default=20, help="seconds each rate is offered")
    parser.add_argument("--drain-max", type=float, default=300, help="most seconds to drain")
    parser.add_argument("--quick", action="store_true", help="rates 5,20 for 8 s, 1 thread")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.threads, args.duration, args.drain_max = "5,20", "1", 8, 120
    sys.path.insert(0, str(ROOT))
    rates = [float(r) for r in args.rates.split(",")]
    texts = comment_texts(int(max(rates) * args.duration) + 1)
    started, load_start = time.time(), loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="civility-e2e-"))
    rows = []
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            rows += run_threads(threads, rates, args, texts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        "| worker threads | offered/s | comments | ingest p50 ms | ingest p99 ms | errors | "
        "decision p50 s | decision p99 s | backlog at end | drain s | stream max | kept up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        drain = f"{r['drain_s']:.0f}" if r["drain_s"] is not None else f"> {args.drain_max:.0f}"
        lines.append(
            f"| {r['threads']} | {r['rate']:g} | {r['offered']} | {r['ingest_p50_ms']:.1f} | "
            f"{r['ingest_p99_ms']:.1f} | {r['ingest_errors']} | {r['decision_p50_s']:.1f} | "
            f"{r['decision_p99_s']:.1f} | {r['backlog_at_end_of_offer']} | {drain} | "
            f"{r['stream_max']} | "
            f"{'yes' if r['kept_up'] else 'no'} |"
        )
    print("\n" + "\n".join(lines))
    result = {
        **run_record("e2e.py", started, load_start),
        "duration_s": args.duration,
        "rows": rows,
        "tables": lines,
    }
    print(f"\nload average: start {load_start}, end {result['loadavg_end']}")
    plot(rows)
    write_result("e2e", result)


if __name__ == "__main__":
    main()

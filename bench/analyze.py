"""Synchronous scoring end to end: Perspective's comments:analyze under gunicorn, one worker.

For each scorer (the BERT-base-shaped checkpoint, the cost of detoxify:original, and
profanity-check), once idle and once while 1,000 comments are being scored from the
backlog: Coral's exact request offered at 1, 5 and 20 requests/s (open loop), then at
saturation (closed loop, 16 callers). Reports p50/p99/max latency, answered/s, 503s,
and the latency of public reads made meanwhile (the API must stay fast while analyze
calls wait). Saturation throughput is compared with the raw batched scorer in the same
run (the mean of its rates before and after the phases). Prints a table, writes
bench/results/analyze.json, draws docs/bench-analyze.png.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DOCS,
    Civility,
    comment_texts,
    loadavg,
    percentile,
    pyplot,
    run_record,
    wait_until,
    write_result,
)

PASS_LINE = re.compile(
    r"analyze pass: (\d+) requests, (\d+) texts in ([\d.]+)s, waited up to ([\d.]+)s"
)
BATCH_LINE = re.compile(r"batch of (\d+): (\d+) decided.* in ([\d.]+)s")
EXPIRED_LINE = re.compile(r"analyze: (\d+) requests dropped unscored")
LATE_LINE = re.compile(r"analyze: (\d+) answers dropped")
REFUSED_LINE = re.compile(r"analyze: (\d+) requests refused unscored")
CACHE = Path(os.environ.get("CIVILITY_BENCH_CACHE", Path(tempfile.gettempdir()) / "civility-bench"))
SATURATION_CALLERS = 16
# A text this long or longer is read in more than one window of 256 tokens (real comments
# average about 4 characters a token): its own scoring, not waiting, sets its latency.
LONG_TEXT_CHARS = 1000


def coral_call(text: str) -> dict:
    """The body Coral's Perspective service sends."""
    return {
        "comment": {"text": text},
        "doNotStore": True,
        "requestedAttributes": {"TOXICITY": {}},
        "languages": ["en"],
    }


def offer(url: str, key: str, texts: list[str], rate: float | None, duration: float) -> dict:
    """Offer analyze calls at ``rate``/s (None: closed loop at saturation) for ``duration``;
    public reads run meanwhile. Latencies in ms."""
    import httpx

    latencies: list[float] = []
    statuses: list[int] = []
    lengths: list[int] = []
    reads: list[float] = []
    stop = threading.Event()
    lock = threading.Lock()
    client = httpx.Client(timeout=5, limits=httpx.Limits(max_connections=200))
    analyze_url = f"{url}/v1alpha1/comments:analyze?key={key}"

    def one(n: int) -> None:
        text = texts[n % len(texts)]
        started = time.perf_counter()
        try:
            status = client.post(analyze_url, json=coral_call(text)).status_code
        except httpx.HTTPError:
            status = 0
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)
            statuses.append(status)
            lengths.append(len(text))

    def reader() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            # A read that failed is counted at the time it took: it was not fast.
            with contextlib.suppress(httpx.HTTPError):
                client.get(f"{url}/v1/articles/bench/comments")
            reads.append((time.perf_counter() - started) * 1000)
            stop.wait(0.05)

    side = threading.Thread(target=reader)
    side.start()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        if rate is None:

            def caller(first: int) -> None:
                n = first
                while time.perf_counter() - began < duration:
                    one(n)
                    n += SATURATION_CALLERS

            for c in range(SATURATION_CALLERS):
                pool.submit(caller, c)
        else:
            for n in range(int(rate * duration)):
                delay = began + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(one, n)
    elapsed = time.perf_counter() - began
    stop.set()
    side.join()
    client.close()
    ok = [lat for lat, status in zip(latencies, statuses, strict=True) if status == 200]
    short = [
        lat
        for lat, status, chars in zip(latencies, statuses, lengths, strict=True)
        if status == 200 and chars < LONG_TEXT_CHARS
    ]
    return {
        "offered_per_s": rate,
        "requests": len(statuses),
        "answered": len(ok),
        "unavailable": sum(s == 503 for s in statuses),
        "errors": sum(s not in (200, 503) for s in statuses),
        "answered_per_s": len(ok) / elapsed,
        "p50_ms": percentile(ok, 50),
        "p99_ms": percentile(ok, 99),
        "max_ms": max(ok, default=0.0),
        "p99_short_ms": percentile(short, 99),
        "read_p50_ms": percentile(reads, 50),
        "read_p99_ms": percentile(reads, 99),
    }


def worker_share(log: str, seconds: float) -> dict:
    """What the worker's log (at INFO) says it did during one offered phase: the share of
    the phase its synchronous passes and its backlog batches took, their sizes, the rate of
    texts within the synchronous passes, and requests dropped: expired unscored, refused
    unscored at once (no pass could answer them in time), or scored and answered after
    their callers had gone (model time spent for nothing)."""
    passes = [tuple(map(float, m.groups())) for m in PASS_LINE.finditer(log)]
    batches = [tuple(map(float, m.groups())) for m in BATCH_LINE.finditer(log)]
    sync_s = sum(p[2] for p in passes)
    sync_texts = sum(p[1] for p in passes)
    return {
        # The longest wait of each pass for the pass to begin (at 1 and 5/s nearly every
        # pass answers one request): what the backlog pass in progress cost it.
        "wait_p99_ms": percentile([p[3] * 1000 for p in passes], 99),
        "backlog_pass_p90_ms": percentile([b[2] * 1000 for b in batches], 90),
        "sync_passes": len(passes),
        "sync_texts_per_pass": sync_texts / len(passes) if passes else 0.0,
        "sync_share": sync_s / seconds,
        "sync_texts_per_pass_s": sync_texts / sync_s if sync_s else 0.0,
        "backlog_batches": len(batches),
        "backlog_share": sum(b[2] for b in batches) / seconds,
        "backlog_scored": int(sum(b[1] for b in batches)),
        "expired": sum(int(m.group(1)) for m in EXPIRED_LINE.finditer(log)),
        "late": sum(int(m.group(1)) for m in LATE_LINE.finditer(log)),
        "refused": sum(int(m.group(1)) for m in REFUSED_LINE.finditer(log)),
    }


def raw_rate(
    spec: str, config_dir: str | None, texts: list[str], threads: int, precision: str
) -> float:
    """Texts/s of the scorer itself, batched as the saturated worker batches them."""
    import torch

    from workers.scorers import load_scorer

    if threads:
        torch.set_num_threads(threads)
    scorer = load_scorer(spec, "none", config_dir=config_dir, max_tokens=256, precision=precision)
    batch = SATURATION_CALLERS
    scorer.score(texts[:batch])  # warm up
    began = time.perf_counter()
    done = 0
    while time.perf_counter() - began < 10 and done < len(texts):
        scorer.score(texts[done : done + batch])
        done += batch
    return done / (time.perf_counter() - began)


def backlog(civility: Civility, texts: list[str]) -> None:
    """Submit comments for the worker's backlog (ingest is fast: 202 and an XADD)."""
    import httpx

    headers = {"Authorization": f"Bearer {civility.site_key}"}
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: client.post(
                    f"{civility.url}/v1/articles/bench/comments",
                    json={"body": texts[n], "author": {"id": f"r{n % 50}"}},
                    headers=headers,
                ),
                range(len(texts)),
            )
        )


def run_scorer(name: str, spec: str, config_dir: str | None, args, texts) -> list[dict]:
    import redis

    threads = args.model_threads
    raw_before = raw_rate(spec, config_dir, texts, threads, args.precision)
    print(f"{name}: raw batched scorer {raw_before:.1f} texts/s", flush=True)
    civility = Civility("sqlite", RATELIMIT_ENABLED="false")
    rows = []
    try:
        civility.serve(workers=2)
        env = {
            "CIVILITY_SCORER": spec,
            "CIVILITY_SCORER_FALLBACK": "none",
            "CIVILITY_MODEL_THREADS": str(threads),
            "CIVILITY_MODEL_PRECISION": args.precision,
            "CIVILITY_HEARTBEAT_S": "1",
            "CIVILITY_LOG_LEVEL": "INFO",  # its passes, read back by worker_share()
        }
        if args.pass_budget_ms is not None:
            env["CIVILITY_SCORE_PASS_BUDGET_MS"] = str(args.pass_budget_ms)
        if args.thread_wait:
            env["CIVILITY_MODEL_THREAD_WAIT"] = args.thread_wait
        if args.yield_ms is not None:
            env["CIVILITY_SCORE_YIELD_MS"] = str(args.yield_ms)
        if config_dir:
            env["CIVILITY_MODEL_CONFIG_DIR"] = config_dir
        worker = civility.start("worker", "worker", **env)
        client = redis.Redis.from_url(civility.redis_url)
        wait_until(lambda: client.zcard(f"{civility.prefix}:analyzers"), 240, "the worker")
        backlog(civility, ["The first comment: the article the reads list exists."])
        for phase in ("idle", "backlog"):
            if phase == "backlog":
                backlog(civility, comment_texts(args.backlog, seed=11))
            for rate in [*args.rates, None]:
                mark = worker.log_path.stat().st_size
                began = time.perf_counter()
                row = offer(civility.url, civility.site_key, texts, rate, args.duration)
                with worker.log_path.open(encoding="utf-8", errors="replace") as log:
                    log.seek(mark)
                    row.update(worker_share(log.read(), time.perf_counter() - began))
                row.update(
                    scorer=name,
                    phase=phase,
                    backlog_left=client.xlen(f"{civility.prefix}:score"),
                )
                offered = "saturation" if rate is None else f"{rate:g}/s"
                print(
                    f"  {name} {phase:<7} {offered:>10}: p50 {row['p50_ms']:.0f} ms, p99 "
                    f"{row['p99_ms']:.0f} ms, {row['answered_per_s']:.1f}/s answered, "
                    f"{row['unavailable']} 503, reads p99 {row['read_p99_ms']:.0f} ms, "
                    f"worker busy {row['sync_share']:.0%} sync + {row['backlog_share']:.0%} "
                    f"backlog, {row['sync_texts_per_pass']:.1f} texts/pass at "
                    f"{row['sync_texts_per_pass_s']:.1f}/s, {row['expired']} expired unscored, "
                    f"{row['refused']} refused, "
                    f"{row['late']} answered late, wait p99 {row['wait_p99_ms']:.0f} ms, "
                    f"backlog passes p90 {row['backlog_pass_p90_ms']:.0f} ms, "
                    f"{row['backlog_scored']} decided, "
                    f"backlog left {row['backlog_left']}",
                    flush=True,
                )
                rows.append(row)
    finally:
        civility.close()
    # Measured again once the service has stopped: the host's speed drifts over the run's
    # minutes, and saturation is compared with the mean of the two.
    raw_after = raw_rate(spec, config_dir, texts, threads, args.precision)
    print(f"{name}: raw batched scorer {raw_after:.1f} texts/s after the phases", flush=True)
    for row in rows:
        row.update(
            raw_before=raw_before, raw_after=raw_after, raw_per_s=(raw_before + raw_after) / 2
        )
    return rows


def plot(rows: list[dict], name: str) -> None:
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(8, 4.5))
    for scorer in dict.fromkeys(r["scorer"] for r in rows):
        for phase, style in (("idle", "-"), ("backlog", "--")):
            mine = [r for r in rows if (r["scorer"], r["phase"]) == (scorer, phase)]
            offered = [r for r in mine if r["offered_per_s"] is not None]
            x = [r["offered_per_s"] for r in offered]
            axis.plot(
                x,
                [r["p99_ms"] for r in offered],
                style,
                marker="o",
                label=f"{scorer}, {phase}, p99",
            )
            axis.plot(
                x,
                [r["p50_ms"] for r in offered],
                style,
                marker=".",
                alpha=0.5,
                label=f"{scorer}, {phase}, p50",
            )
    axis.axhline(800, color="red", linewidth=0.8)
    axis.text(1, 820, "Coral gives up (800 ms)", color="red", fontsize=8)
    axis.set_xscale("log")
    axis.set_xlabel("offered analyze requests per second")
    axis.set_ylabel("latency (ms)")
    axis.set_title("comments:analyze end to end, one worker")
    axis.legend(fontsize=7)
    fig.tight_layout()
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / name, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1,5,20", help="offered analyze requests per second")
    parser.add_argument("--duration", type=float, default=15, help="seconds per rate")
    parser.add_argument("--backlog", type=int, default=1000, help="comments in the backlog")
    parser.add_argument("--model-threads", type=int, default=0, help="CIVILITY_MODEL_THREADS")
    parser.add_argument("--scorers", default="bert-base,profanity-check")
    parser.add_argument(
        "--precision", default="auto", help="CIVILITY_MODEL_PRECISION (auto, fp32, bf16, int8)"
    )
    parser.add_argument(
        "--pass-budget-ms", type=int, help="CIVILITY_SCORE_PASS_BUDGET_MS (default: its default)"
    )
    parser.add_argument(
        "--yield-ms", type=int, help="CIVILITY_SCORE_YIELD_MS (default: its default)"
    )
    parser.add_argument("--thread-wait", help="CIVILITY_MODEL_THREAD_WAIT (default: its default)")
    parser.add_argument("--quick", action="store_true", help="5 s per rate, 200 comments")
    parser.add_argument("--name", help="results name (default: analyze, with the options changed)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.backlog = 5, 200
    args.rates = [float(r) for r in args.rates.split(",")]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    texts = comment_texts(2000)
    started, load_start = time.time(), loadavg()
    rows = []
    for name in args.scorers.split(","):
        if name == "bert-base":
            from tests.checkpoints import build_bert_base_checkpoint

            checkpoint, config_dir = build_bert_base_checkpoint(CACHE)
            rows += run_scorer(name, f"detoxify:{checkpoint}", str(config_dir), args, texts)
        else:
            rows += run_scorer(name, name, None, args, texts)
    lines = [
        "| scorer | backlog | offered | answered/s | p50 ms | p99 ms | p99 ms, texts < 1,000 "
        "chars | max ms | 503s | of them expired + refused + answered late | reads p99 ms | "
        "worker busy: sync + backlog | texts a sync pass | wait for a pass p99 ms | backlog "
        "pass p90 ms | backlog decided | saturation ÷ raw scorer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        offered = "saturation" if r["offered_per_s"] is None else f"{r['offered_per_s']:g}/s"
        ratio = f"{r['answered_per_s'] / r['raw_per_s']:.2f}" if r["offered_per_s"] is None else ""
        lines.append(
            f"| {r['scorer']} | {r['phase']} | {offered} | {r['answered_per_s']:.1f} | "
            f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['p99_short_ms']:.0f} | "
            f"{r['max_ms']:.0f} | {r['unavailable']} | "
            f"{r['expired']} + {r['refused']} + {r['late']} | {r['read_p99_ms']:.0f} | "
            f"{r['sync_share']:.0%} + {r['backlog_share']:.0%} | {r['sync_texts_per_pass']:.1f} | "
            f"{r['wait_p99_ms']:.0f} | {r['backlog_pass_p90_ms']:.0f} | {r['backlog_scored']} | "
            f"{ratio} |"
        )
    print("\n" + "\n".join(lines))
    result = {**run_record("analyze.py", started, load_start), "rows": rows, "tables": lines}
    print(f"\nload average: start {load_start}, end {result['loadavg_end']}")
    suffix = "" if args.precision == "auto" else f"-{args.precision}"
    if args.pass_budget_ms is not None:
        suffix += f"-budget{args.pass_budget_ms}"
    if args.model_threads:
        suffix += f"-threads{args.model_threads}"
    if args.thread_wait:
        suffix += f"-{args.thread_wait}"
    if args.yield_ms is not None:
        suffix += f"-yield{args.yield_ms}"
    result["precision"] = args.precision
    result["pass_budget_ms"] = args.pass_budget_ms
    result["thread_wait"] = args.thread_wait
    result["yield_ms"] = args.yield_ms
    name = args.name or f"analyze{suffix}"
    plot(rows, f"bench-{name}.png")
    write_result(name, result)


if __name__ == "__main__":
    main()

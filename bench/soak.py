"""Soak with chaos: comments at a steady rate while workers, the dispatcher and Redis die.

A fresh Civility (API under gunicorn with 2 workers, two `profanity-check` scoring
workers, one webhook dispatcher) on its own redis-server (port of its own, no
persistence), a local receiver that checks every signature. While bench/loadgen.py
offers the comments, the script SIGKILLs a random worker every few seconds and starts a
new one, SIGKILLs the dispatcher once, restarts Redis once (its data lost) and makes the
receiver answer 500 for a while. Then it waits (bounded) for the drain and checks: every
comment answered 202 (no 5xx), decided exactly once (one policy event each), every
expected webhook delivered with a valid signature. Writes bench/results/soak.json and
docs/bench-soak.png; exits 1 when a check fails.

    .venv/bin/python bench/soak.py [--quick] [--count 10000] [--rate 10]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DOCS,
    Civility,
    RedisServer,
    comment_texts,
    loadavg,
    machine,
    percentile,
    pyplot,
    run_loadgen,
    wait_until,
    write_result,
)
from receiver import Receiver
from soak_checks import check, recovery, sample


@dataclass
class Chaos:
    """When faults happen: seconds, or fractions of the offer's duration."""

    worker_kill_every_s: float = 20
    dispatcher_kill_at: float = 0.3
    redis_restart_at: float = 0.5
    redis_down_s: float = 5
    receiver_down_at: float = 0.6
    receiver_down_s: float = 60
    # Civility's timings, shortened so that recovery shows within the run.
    settings: dict = field(
        default_factory=lambda: {
            "SCORE_CLAIM_IDLE_MS": 10000,
            "SWEEP_AFTER_S": 30,
            "SWEEP_INTERVAL_S": 10,
            "WEBHOOK_LOCK_S": 15,
            "WEBHOOK_SCHEDULE": "1s,2s,5s,10s,20s,30s,60s,60s,120s,300s",
        }
    )


# The CI version: the same faults, closer together.
CI_CHAOS = Chaos(
    worker_kill_every_s=5,
    redis_down_s=3,
    receiver_down_s=10,
    settings={
        "SCORE_CLAIM_IDLE_MS": 3000,
        "SWEEP_AFTER_S": 5,
        "SWEEP_INTERVAL_S": 2,
        "WEBHOOK_LOCK_S": 5,
        "WEBHOOK_SCHEDULE": "1s,1s,2s,4s,4s,8s,8s,8s,30s",
    },
)


class Cluster:
    """The processes under test and the faults done to them, with a timeline."""

    def __init__(self, civility: Civility, redis_server: RedisServer, receiver: Receiver) -> None:
        self.civility, self.redis, self.receiver = civility, redis_server, receiver
        self.workers = [self._worker(n) for n in range(2)]
        self.dispatcher = civility.start("dispatcher", "webhooks")
        beats, client = f"{civility.prefix}:worker:*", redis_server.client()
        wait_until(lambda: len(list(client.scan_iter(beats))) >= 2, 60, "both workers")
        client.close()
        self.t0 = time.time()
        self.events: list[tuple[float, str]] = []
        self.spawned = 2
        self.engine = None  # the sampler's, made on first use

    def _worker(self, n: int):
        # INFO: the claims of a dead worker's messages are logged at that level.
        return self.civility.start(f"worker-{n}", "worker", CIVILITY_LOG_LEVEL="INFO")

    def event(self, what: str) -> None:
        self.events.append((round(time.time() - self.t0, 2), what))
        print(f"  t={time.time() - self.t0:6.1f}s  {what}", flush=True)

    def kill_worker(self, rng: random.Random) -> None:
        i = rng.randrange(len(self.workers))
        self.workers[i].kill()
        self.workers[i] = self._worker(self.spawned)
        self.spawned += 1
        self.event("kill -9 worker")

    def kill_dispatcher(self) -> None:
        self.dispatcher.kill()
        self.event("kill -9 dispatcher")
        time.sleep(1)
        self.dispatcher = self.civility.start("dispatcher", "webhooks")

    def kill_redis(self) -> None:
        self.redis.kill()
        self.event("kill -9 Redis")

    def start_redis(self) -> None:
        self.redis.start()
        self.event("Redis back, its data lost")


def create_endpoint(civility: Civility, url: str) -> str:
    """Register the receiver for every event; returns its secret."""
    request = urllib.request.Request(
        f"{civility.url}/v1/webhooks",
        data=json.dumps({"url": url}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {civility.admin_key}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["secret"]


def run_soak(
    count: int = 10000,
    rate: float = 10,
    chaos: Chaos | None = None,
    database: str = "sqlite",
    drain_max: float = 900,
    seed: int = 1,
) -> dict:
    """Run the soak and return its report (``report["ok"]`` says whether every check passed)."""
    chaos = chaos or Chaos()
    rng = random.Random(seed)
    texts = comment_texts(count, sources=("wiki", "tweets"))
    logdir = Path(tempfile.mkdtemp(prefix="civility-soak-"))
    redis_server = RedisServer(logdir)
    receiver = Receiver()
    civility = None
    try:
        civility = Civility(
            database,
            redis_url=redis_server.url,
            SCORER="profanity-check",
            SCORER_FALLBACK="none",
            HEARTBEAT_S=1,
            SCORE_BLOCK_MS=500,
            WEBHOOK_ALLOW_PRIVATE="true",
            WEBHOOK_POLL_S=0.2,
            RATELIMIT_PER_KEY="100000 per minute",
            RATELIMIT_PER_AUTHOR="1000 per minute",
            **chaos.settings,
        )
        civility.logdir = logdir
        civility.serve(workers=2)
        receiver.secret = create_endpoint(civility, receiver.url)
        cluster = Cluster(civility, redis_server, receiver)
        report = drive(cluster, count, rate, chaos, rng, texts, drain_max, logdir)
    finally:
        if civility is not None:
            civility.close()
        receiver.close()
        redis_server.stop()
    report.update({"count": count, "rate": rate, "database": database, "chaos": asdict(chaos)})
    if report["ok"]:
        shutil.rmtree(logdir, ignore_errors=True)
    else:
        print(f"logs kept in {logdir}")
    return report


def drive(cluster: Cluster, count, rate, chaos: Chaos, rng, texts, drain_max, logdir) -> dict:
    """Offer the comments, inject the faults, wait for the drain, check the invariants."""
    civility, receiver = cluster.civility, cluster.receiver
    headers = {"Authorization": f"Bearer {civility.site_key}", "Content-Type": "application/json"}
    requests = [
        {
            "method": "POST",
            "url": f"{civility.url}/v1/articles/soak-{i % 20}/comments",
            "headers": headers,
            "body": json.dumps({"body": text, "author": {"id": f"u{i % 1000}"}}),
        }
        for i, text in enumerate(texts)
    ]
    spec = {"mode": "rate", "rate": rate, "count": count, "requests": requests, "record": True}
    spec["idempotency_prefix"] = f"soak-{civility.prefix}"
    offer_s = count / rate
    faults = [(chaos.dispatcher_kill_at * offer_s, cluster.kill_dispatcher)]
    redis_at = chaos.redis_restart_at * offer_s
    faults.append((redis_at, cluster.kill_redis))
    faults.append((redis_at + chaos.redis_down_s, cluster.start_redis))
    down_at = chaos.receiver_down_at * offer_s
    faults.append((down_at, lambda: _receiver(cluster, True)))
    faults.append((down_at + chaos.receiver_down_s, lambda: _receiver(cluster, False)))
    t = chaos.worker_kill_every_s
    while t < offer_s:
        jitter = rng.uniform(-0.2, 0.2) * chaos.worker_kill_every_s
        faults.append((t + jitter, lambda: cluster.kill_worker(rng)))
        t += chaos.worker_kill_every_s
    faults.sort(key=lambda f: f[0])

    loadgen: dict = {}
    offer = threading.Thread(target=lambda: loadgen.update(run_loadgen(spec, logdir)))
    timeline: list[dict] = []
    cluster.t0 = time.time()
    cluster.event(f"offer {count} comments at {rate:g}/s")
    offer.start()
    next_sample, offer_end = 0.0, None
    while offer.is_alive() or faults:
        now = time.time() - cluster.t0
        while faults and faults[0][0] <= now:
            faults.pop(0)[1]()
        if offer_end is None and not offer.is_alive():
            offer_end = now
            cluster.event("offer done; draining")
        if now >= next_sample:
            timeline.append(sample(cluster, now))
            next_sample = now + 1
        time.sleep(0.05)
    offer.join()
    if offer_end is None:
        offer_end = time.time() - cluster.t0
        cluster.event("offer done; draining")
    ids = [r[3] for r in loadgen["records"] if r[2] == 202]
    deadline = time.time() + drain_max
    drained = False
    while time.time() < deadline:
        point = sample(cluster, time.time() - cluster.t0)
        timeline.append(point)
        decided = point["decided"] >= len(ids)
        delivered = point["deliveries"] <= min(point["delivered"], point["received"])
        if decided and delivered:
            drained = True
            break
        time.sleep(1)
    drain_s = time.time() - cluster.t0 - offer_end
    cluster.event("drained" if drained else f"not drained after {drain_max:.0f}s")
    cluster.engine.dispose()
    checks = check(civility, receiver, loadgen, ids, count)
    checks["drained"] = (drained, f"in {drain_s:.1f}s after the offer ended")
    lat = [r[1] * 1000 for r in loadgen["records"]]
    return {
        "ok": all(passed for passed, _ in checks.values()),
        "checks": checks,
        "drain_s": drain_s,
        "offer_s": offer_end,
        "ingest_p50_ms": percentile(lat, 50),
        "ingest_p99_ms": percentile(lat, 99),
        "ingest_max_ms": max(lat, default=0),
        "statuses": loadgen["statuses"],
        "recovery": recovery(logdir),
        "worker_kills": sum(1 for _, what in cluster.events if what == "kill -9 worker"),
        "events": cluster.events,
        "timeline": timeline,
    }


def _receiver(cluster: Cluster, failing: bool) -> None:
    cluster.receiver.failing = failing
    cluster.event("receiver answers 500" if failing else "receiver answers 200 again")


def plot(report: dict, path: Path) -> None:
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    tl = report["timeline"]
    t = [p["t"] for p in tl]
    for key, label in (
        ("comments", "comments accepted"),
        ("decided", "comments decided"),
        ("delivered", "webhooks delivered"),
    ):
        top.plot(t, [p[key] for p in tl], label=label)
    queue = [p["queue"] if p["queue"] is not None else float("nan") for p in tl]
    bottom.plot(t, queue, label="scoring queue (stream length)")
    bottom.plot(t, [p["comments"] - p["decided"] for p in tl], label="comments pending")
    bottom.plot(t, [p["deliveries"] - p["delivered"] for p in tl], label="webhooks undelivered")
    spans = {
        "receiver answers 500": ("receiver", "orange"),
        "Redis down (kill -9, back empty)": ("Redis", "grey"),
    }
    marks = {"kill -9 worker": ("red", ":"), "kill -9 dispatcher": ("purple", "--")}
    for ax in (top, bottom):
        for label, (what, color) in spans.items():
            edges = [at for at, event in report["events"] if what in event.split(" ")[:3]]
            if len(edges) == 2:
                ax.axvspan(*edges, color=color, alpha=0.25, label=label)
        seen = set()
        for at, what in report["events"]:
            if what in marks:
                color, style = marks[what]
                label = what if what not in seen else None
                ax.axvline(at, color=color, linestyle=style, linewidth=1, label=label)
                seen.add(what)
        ax.grid(alpha=0.3)
        ax.set_ylabel("count")
    top.legend(fontsize=8, loc="upper left")
    bottom.legend(fontsize=8, loc="upper right")
    bottom.set_xlabel("seconds since the first comment")
    top.set_title(f"Soak: {report['count']} comments at {report['rate']:g}/s, faults injected")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="comments offered")
    parser.add_argument("--rate", type=float, default=10, help="comments per second")
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--drain-max", type=float, default=900, help="most seconds to drain")
    parser.add_argument("--quick", action="store_true", help="the CI version: 500, faults closer")
    args = parser.parse_args()
    started, load_start = time.time(), loadavg()
    if args.quick:
        report = run_soak(500, args.rate, CI_CHAOS, args.database, drain_max=120)
    else:
        report = run_soak(args.count, args.rate, Chaos(), args.database, args.drain_max)
    report.update(
        machine=machine(),
        started=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        loadavg_start=load_start,
        loadavg_end=loadavg(),
        command="python bench/soak.py " + " ".join(sys.argv[1:]),
    )
    print("\n| check | result | detail |\n|---|---|---|")
    for name, (passed, detail) in report["checks"].items():
        print(f"| {name} | {'pass' if passed else 'FAIL'} | {detail} |")
    print("\n| recovery path | times |\n|---|---|")
    for name, times in report["recovery"].items():
        print(f"| {name} | {times} |")
    print(
        f"\ningest p50 {report['ingest_p50_ms']:.1f} ms, p99 {report['ingest_p99_ms']:.1f} ms; "
        f"{report['worker_kills']} worker kills; drain {report['drain_s']:.1f} s; "
        f"load average: start {load_start}, end {report['loadavg_end']}"
    )
    plot(report, DOCS / ("bench-soak-quick.png" if args.quick else "bench-soak.png"))
    write_result("soak-quick" if args.quick else "soak", report)
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()

"""Load generator: an asyncio + aiohttp client in its own process, on loopback only.

    python bench/loadgen.py SPEC.json OUT.json

SPEC: ``requests`` (a list of ``{method, url, headers, body}``, used in turn), and either
``mode: closed`` with ``concurrency``, ``warmup`` and ``duration`` seconds (each of N
clients sends its next request as soon as the last is answered), or ``mode: rate`` with
``rate`` per second and ``count`` (requests start on a fixed schedule, whatever the
answers; latency counts from the scheduled time, so a stalled server cannot hide it).
``idempotency_prefix`` adds a unique ``Idempotency-Key`` per request. Bounded in count
and time; it refuses any host but loopback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

SAMPLES_MAX = 20000  # latencies kept per run for the distribution plot
RATE_IN_FLIGHT_MAX = 512


def loopback_only(spec: dict[str, Any]) -> None:
    for request in spec["requests"]:
        host = urlsplit(request["url"]).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loadgen: refusing {host!r}: load tests target loopback only")


class Run:
    """What one run measured."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.requests = spec["requests"]
        self.prefix = spec.get("idempotency_prefix")
        self.record = spec.get("record", False)
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors: list[str] = []
        self.records: list[list[Any]] = []
        self.n = 0

    def next_request(self) -> tuple[int, dict[str, Any]]:
        n, self.n = self.n, self.n + 1
        return n, self.requests[n % len(self.requests)]

    async def send(self, session: aiohttp.ClientSession, n: int, req: dict, started: float):
        """Send one request; returns (status or None, latency s, comment id or None)."""
        headers = dict(req.get("headers") or {})
        if self.prefix:
            headers["Idempotency-Key"] = f"{self.prefix}-{n}"
        body = req.get("body")
        try:
            async with session.request(
                req["method"], req["url"], data=body, headers=headers
            ) as answer:
                payload = await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
        ident = None
        if self.record and status < 300 and payload:
            try:
                ident = json.loads(payload).get("id")
            except (ValueError, AttributeError):
                ident = None
        return status, time.perf_counter() - started, ident

    def count(self, status: int | None, latency: float, detail: Any) -> None:
        key = str(status) if status is not None else "error"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if status is None and len(self.errors) < 20:
            self.errors.append(str(detail))
        if len(self.latencies) < SAMPLES_MAX or status is None:
            self.latencies.append(latency)


async def closed(run: Run, session: aiohttp.ClientSession) -> float:
    """N clients back to back; only requests started after the warm-up count."""
    spec = run.spec
    start = time.perf_counter()
    measure_from = start + spec.get("warmup", 0)
    end = measure_from + spec["duration"]

    async def client() -> None:
        while (now := time.perf_counter()) < end:
            n, req = run.next_request()
            status, latency, detail = await run.send(session, n, req, now)
            if now >= measure_from:
                run.count(status, latency, detail)

    await asyncio.gather(*(client() for _ in range(spec["concurrency"])))
    return time.perf_counter() - measure_from


async def rate(run: Run, session: aiohttp.ClientSession) -> float:
    """``count`` requests at ``rate`` per second on a fixed schedule."""
    spec = run.spec
    interval = 1 / spec["rate"]
    gate = asyncio.Semaphore(RATE_IN_FLIGHT_MAX)
    start = time.perf_counter()
    wall_start = time.time()

    async def one(n: int, req: dict, due: float) -> None:
        async with gate:
            status, latency, detail = await run.send(session, n, req, due)
        run.count(status, latency, detail)
        if run.record:
            run.records.append([round(wall_start + due - start, 4), latency, status, detail])

    tasks = []
    for _ in range(spec["count"]):
        n, req = run.next_request()
        due = start + n * interval
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, req, due)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


async def main_async(spec: dict[str, Any]) -> dict[str, Any]:
    run = Run(spec)
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 60))
    connector = aiohttp.TCPConnector(limit=0, force_close=spec.get("force_close", False))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        elapsed = await (closed if spec["mode"] == "closed" else rate)(run, session)
    done = sum(run.statuses.values())
    ms = sorted(x * 1000 for x in run.latencies)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, round(q / 100 * (len(ms) - 1)))] if ms else 0.0

    failed = sum(n for s, n in run.statuses.items() if s == "error" or int(s) >= 400)
    return {
        "requests": done,
        "elapsed_s": elapsed,
        "per_s": done / elapsed if elapsed else 0.0,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": ms[-1] if ms else 0.0,
        "statuses": run.statuses,
        "errors": failed,
        "error_samples": run.errors,
        "samples_ms": [round(x, 2) for x in ms],
        "records": run.records,
    }


def main() -> None:
    spec_path, out_path = sys.argv[1:3]
    with open(spec_path) as f:
        spec = json.load(f)
    loopback_only(spec)
    result = asyncio.run(main_async(spec))
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()

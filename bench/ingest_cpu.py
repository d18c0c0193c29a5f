"""CPU time and SQL statements per request, for ingest and a 304 read: numbers a busy machine
blurs far less than requests per second.

Server CPU: Civility (SQLite) served as ``bench/ingest.py`` serves it (``civility serve``,
gunicorn with 2 workers, rate limits off, metrics in multiprocess mode) is sent N
sequential requests; the CPU time (user + system, from /proc) of gunicorn's processes is
read every 100 requests, and the least and the median per request are reported. SQL: the
same requests in-process (Flask's test client), statements (BEGIN and COMMIT included)
counted by a SQLAlchemy listener. ``--profile`` adds a cProfile (CPU time) of the
in-process POSTs.

    .venv/bin/python bench/ingest_cpu.py [-n 2000] [--profile] [--no-server]
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Civility, comment_texts, loadavg

ARTICLES = 10
BATCH = 100  # requests per CPU reading


def summary(name: str, per_batch: list[float]) -> dict[str, float]:
    """The least and the median CPU per request over the batches: other processes on the
    same cores inflate CPU time too (shared caches), and the least is the least inflated."""
    ordered = sorted(per_batch)
    return {f"{name}_min": ordered[0], f"{name}_median": ordered[len(ordered) // 2]}


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (gunicorn's workers)."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def comment(i: int, texts: list[str]) -> tuple[str, str]:
    ref = f"bench-{i % ARTICLES}"
    body = {"body": texts[i % len(texts)], "author": {"id": f"u{i % 500}", "name": f"R {i % 500}"}}
    return f"/v1/articles/{ref}/comments", json.dumps(body)


def server_cpu(civility: Civility, texts: list[str], n: int) -> dict[str, float]:
    """CPU ms per POST and per 304 GET, measured on the gunicorn processes."""
    api = civility.serve(workers=2)
    conn = http.client.HTTPConnection("127.0.0.1", civility.port, timeout=30)
    headers = {"Authorization": f"Bearer {civility.site_key}", "Content-Type": "application/json"}
    prefix = uuid.uuid4().hex[:8]

    def post(i: int) -> None:
        path, body = comment(i, texts)
        conn.request("POST", path, body, {**headers, "Idempotency-Key": f"{prefix}-{i}"})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 202, answer.status

    read = f"/v1/articles/bench-0/comments?site={civility.site_id}"

    def get(etag: str | None) -> str:
        conn.request("GET", read, headers={"If-None-Match": etag} if etag else {})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == (304 if etag else 200), answer.status
        return answer.headers["ETag"]

    for i in range(200):  # warm-up: imports, caches, the database file
        post(i)
    out = {}
    per_batch = []
    for start in range(200, 200 + n, BATCH):
        before = tree_cpu_s(api.pid)
        for i in range(start, start + BATCH):
            post(i)
        per_batch.append((tree_cpu_s(api.pid) - before) / BATCH * 1000)
    out.update(summary("post_cpu_ms", per_batch))
    etag = get(None)
    for _ in range(200):
        get(etag)
    per_batch = []
    for _ in range(0, n, BATCH):
        before = tree_cpu_s(api.pid)
        for _ in range(BATCH):
            get(etag)
        per_batch.append((tree_cpu_s(api.pid) - before) / BATCH * 1000)
    out.update(summary("get304_cpu_ms", per_batch))
    conn.close()
    api.stop()
    return out


def isso_cpu(texts: list[str], n: int) -> dict[str, float]:
    """Isso's CPU per POST, served and sent the same way (bench/ingest.py's set-up)."""
    import shutil
    import tempfile
    from contextlib import ExitStack

    from ingest import Isso

    workdir = Path(tempfile.mkdtemp(prefix="civility-isso-cpu-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        isso = Isso(stack, workdir)
        master = _listening_pid(isso.port)
        conn = http.client.HTTPConnection("127.0.0.1", isso.port, timeout=30)
        requests = isso.ingest(texts)

        def post(i: int) -> None:
            req = requests[i % len(requests)]
            conn.request("POST", req["url"].removeprefix(isso.url), req["body"], req["headers"])
            answer = conn.getresponse()
            answer.read()
            assert answer.status in (201, 202), answer.status

        for i in range(200):
            post(i)
        per_batch = []
        for start in range(200, 200 + n, BATCH):
            before = tree_cpu_s(master)
            for i in range(start, start + BATCH):
                post(i)
            per_batch.append((tree_cpu_s(master) - before) / BATCH * 1000)
    return summary("isso_post_cpu_ms", per_batch)


def _listening_pid(port: int) -> int:
    """The gunicorn master serving ``port`` (the oldest process naming it)."""
    import subprocess

    found = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True)
    return min(int(pid) for pid in found.stdout.split())


def in_process(civility: Civility, texts: list[str], n: int, profile: bool) -> dict[str, float]:
    """SQL statements per POST and per 304 GET, and optionally a cProfile of the POSTs."""
    import sqlalchemy as sa

    for name, value in civility.env.items():
        os.environ[name] = value
    from service import create_app
    from service.extensions import db

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {civility.site_key}"}
    prefix = uuid.uuid4().hex[:8]
    statements = 0

    def count(*args: object) -> None:
        nonlocal statements
        statements += 1

    def post(i: int) -> None:
        path, body = comment(i, texts)
        answer = client.post(
            path,
            data=body,
            content_type="application/json",
            headers={**headers, "Idempotency-Key": f"{prefix}-{i}"},
        )
        assert answer.status_code == 202, answer.get_json()

    with app.app_context():
        engine = db.engine
    for i in range(500):  # every article and author exists from here on
        post(i)
    prefix = uuid.uuid4().hex[:8]  # the same authors and articles again, new comments
    sa.event.listen(engine, "before_cursor_execute", count)
    sa.event.listen(engine, "commit", count)
    statements = 0
    for i in range(100):
        post(i)
    out = {"post_sql": statements / 100}
    read = f"/v1/articles/bench-0/comments?site={civility.site_id}"
    etag = client.get(read).headers["ETag"]
    statements = 0
    for _ in range(100):
        assert client.get(read, headers={"If-None-Match": etag}).status_code == 304
    out["get304_sql"] = statements / 100
    sa.event.remove(engine, "before_cursor_execute", count)
    sa.event.remove(engine, "commit", count)
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not waits
        started = time.process_time()
        profiler.enable()
        for i in range(200, 200 + n):
            post(i)
        profiler.disable()
        out["post_inprocess_cpu_ms"] = (time.process_time() - started) / n * 1000
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests measured per kind")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process POSTs")
    parser.add_argument("--no-server", action="store_true", help="in-process numbers only")
    parser.add_argument("--isso", action="store_true", help="also Isso's CPU per POST")
    args = parser.parse_args()
    texts = comment_texts(2000)
    print(f"load average at start: {loadavg()}")
    results: dict[str, float] = {}
    civility = Civility("sqlite", RATELIMIT_ENABLED="false")
    try:
        if not args.no_server:
            results.update(server_cpu(civility, texts, args.n))
        results.update(in_process(civility, texts, args.n, args.profile))
    finally:
        civility.close()
    if args.isso:
        results.update(isso_cpu(texts, args.n))
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()

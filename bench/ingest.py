"""Ingest and public reads: Civility (SQLite, Postgres) against Isso, the same load on both.

Each server runs under gunicorn with 2 sync workers on loopback; bench/loadgen.py (its
own process) drives each with real comment bodies from bench/data/ at several
concurrencies, warm-up first. Civility's rate limits are off (CIVILITY_RATELIMIT_ENABLED=
false), Isso's guard is off and its moderation on (new comments wait, as in Civility).
Levels are interleaved (Isso, Civility/SQLite, Civility/Postgres at each concurrency) so
background load hits all three alike. Prints tables, writes bench/results/ingest.json and
docs/bench-ingest.png, docs/bench-ingest-latency.png.

    .venv/bin/python bench/ingest.py [--quick] [--levels 1,8,32,64] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    BIN,
    DOCS,
    Civility,
    Proc,
    answers,
    comment_texts,
    free_port,
    loadavg,
    machine,
    pyplot,
    run_loadgen,
    run_record,
    wait_until,
    write_result,
)

ARTICLES = 10  # comments spread over this many articles/threads
READ_SEED = 50  # approved comments on the article read back (one page for both)
ISSO_CONFIG = """\
[general]
dbpath = {db}
host = http://127.0.0.1:{port}/
[moderation]
enabled = true
[guard]
enabled = false
[server]
listen = http://127.0.0.1:{port}/
"""


def post(url: str, payload: dict, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


class Isso:
    """Isso under gunicorn (2 workers), moderation on, guard off, a fresh SQLite file."""

    name = "isso"

    def __init__(self, stack: ExitStack, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = workdir / "isso.db"
        config = workdir / "isso.cfg"
        config.write_text(ISSO_CONFIG.format(db=self.db, port=self.port))
        argv = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "2"]
        argv.append("isso.run:application")
        proc = Proc("isso", argv, {**os.environ, "ISSO_SETTINGS": str(config)}, workdir)
        stack.callback(proc.stop)
        wait_until(lambda: answers(f"{self.url}/config"), 30, "Isso")

    def ingest(self, texts: list[str]) -> list[dict]:
        return [self._new(f"/bench-{i % ARTICLES}", text, i) for i, text in enumerate(texts)]

    def _new(self, uri: str, text: str, i: int) -> dict:
        body = {"text": text, "author": f"Reader {i % 500}", "title": "Bench"}
        return {
            "method": "POST",
            "url": f"{self.url}/new?uri={uri}",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body),
        }

    def seed_reads(self, texts: list[str]) -> None:
        for i, text in enumerate(texts):
            req = self._new("/read", text, i)
            post(req["url"], json.loads(req["body"]), req["headers"])
        # Approve them as a moderator would (Isso's activate links need its admin keys).
        with sqlite3.connect(self.db) as conn:
            conn.execute("UPDATE comments SET mode = 1")

    def reads(self) -> list[dict]:
        return [{"method": "GET", "url": f"{self.url}/?uri=/read"}]


class CivilityTarget:
    """Civility's API (gunicorn, 2 workers) on a fresh SQLite or Postgres database."""

    def __init__(self, stack: ExitStack, database: str) -> None:
        self.name = f"civility-{database}"
        self.civility = Civility(database, RATELIMIT_ENABLED="false")
        stack.callback(self.civility.close)
        self.api = self.civility.serve(workers=2)
        self.url = self.civility.url
        self.headers = {
            "Authorization": f"Bearer {self.civility.site_key}",
            "Content-Type": "application/json",
        }

    def ingest(self, texts: list[str]) -> list[dict]:
        return [self._new(f"bench-{i % ARTICLES}", text, i) for i, text in enumerate(texts)]

    def _new(self, ref: str, text: str, i: int) -> dict:
        body = {"body": text, "author": {"id": f"u{i % 500}", "name": f"Reader {i % 500}"}}
        return {
            "method": "POST",
            "url": f"{self.url}/v1/articles/{ref}/comments",
            "headers": self.headers,
            "body": json.dumps(body),
        }

    def seed_reads(self, texts: list[str]) -> None:
        import sqlalchemy as sa

        for i, text in enumerate(texts):
            req = self._new("read", text, i)
            post(req["url"], json.loads(req["body"]), req["headers"])
        # Approved by hand: no worker runs here, and only approved comments are read back.
        engine = self.civility.engine()
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE comment SET status = 'approved'"))
        engine.dispose()

    def reads(self, etag: str | None = None) -> list[dict]:
        url = f"{self.url}/v1/articles/read/comments?site={self.civility.site_id}"
        return [{"method": "GET", "url": url, "headers": {"If-None-Match": etag} if etag else {}}]

    def etag(self) -> str:
        with urllib.request.urlopen(self.reads()[0]["url"], timeout=10) as answer:
            assert len(json.loads(answer.read())["items"]) == READ_SEED
            return answer.headers["ETag"]


def measure(targets, levels, args, workdir: Path, texts: list[str]) -> dict:
    """Every (kind, target, concurrency) measurement, interleaved by concurrency."""
    plans = {}
    for target in targets:
        plans[("ingest", target.name)] = (target.ingest(texts), "ingest")
        plans[("read", target.name)] = (target.reads(), None)
        if isinstance(target, CivilityTarget):
            plans[("read-etag", target.name)] = (target.reads(target.etag()), None)
    results: dict = {}
    for level in levels:
        for (kind, name), (requests, prefix) in plans.items():
            spec = {
                "mode": "closed",
                "requests": requests,
                "concurrency": level,
                "warmup": args.warmup,
                "duration": args.duration,
            }
            if prefix and name.startswith("civility"):
                spec["idempotency_prefix"] = f"{prefix}-{level}-{time.monotonic_ns()}"
            out = run_loadgen(spec, workdir)
            print(
                f"  {kind:9} {name:19} c={level:<3} {out['per_s']:8.1f}/s  p50 {out['p50_ms']:7.1f}"
                f"  p99 {out['p99_ms']:7.1f}  max {out['max_ms']:7.1f} ms  errors {out['errors']}",
                flush=True,
            )
            results.setdefault(kind, {}).setdefault(name, {})[str(level)] = out
    return results


def table(kind: str, results: dict, levels: list[int]) -> list[str]:
    """A Markdown table of one kind of request, with Civility/Isso ratios."""
    rows = [
        f"| {kind} | c | req/s | p50 ms | p99 ms | max ms | errors | ÷ Isso |",
        "|---|---|---|---|---|---|---|---|",
    ]
    isso = results.get(kind.replace("-etag", ""), {}).get("isso", {})
    for name, by_level in results[kind].items():
        for level in levels:
            out = by_level[str(level)]
            base = isso.get(str(level))
            ratio = f"{out['per_s'] / base['per_s']:.2f}x" if base and base["per_s"] else "—"
            if name == "isso":
                ratio = ""
            rows.append(
                f"| {name} | {level} | {out['per_s']:.0f} | {out['p50_ms']:.1f} | "
                f"{out['p99_ms']:.1f} | {out['max_ms']:.0f} | {out['errors']} | {ratio} |"
            )
    return rows


# Where a sample's time goes: the first rule (leaf first) that matches one of its frames.
PROFILE_RULES = (
    ("SQL in the driver (sqlite3/psycopg, incl. commit)", ("do_execute", "do_commit", "psycopg/")),
    ("SQLAlchemy (ORM, Core, pool)", ("sqlalchemy/",)),
    ("Redis client (XADD)", ("redis/",)),
    ("schemas: webargs/marshmallow/flask-smorest", ("marshmallow/", "webargs/", "flask_smorest/")),
    ("Civility's own code", ("(service/", "/service/")),
    ("Flask/Werkzeug", ("flask/", "werkzeug/")),
    ("gunicorn (HTTP parsing, sockets)", ("gunicorn/",)),
)


def profile(target: CivilityTarget, texts: list[str], args, workdir: Path) -> dict:
    """py-spy on Civility's gunicorn workers while 32 clients POST; shares of CPU samples."""
    import subprocess

    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        print("  profile skipped: pip install py-spy")
        return {}
    raw = workdir / "py-spy.txt"
    argv = [spy, "record", "--pid", str(target.api.pid), "--subprocesses", "--format", "raw"]
    argv += ["--rate", "200", "--duration", str(int(args.duration)), "--output", str(raw)]
    spec = {"mode": "closed", "requests": target.ingest(texts), "concurrency": 32}
    spec.update(warmup=1.0, duration=args.duration + 1, idempotency_prefix=f"p-{time.time_ns()}")
    spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_loadgen(spec, workdir)
    spy_proc.wait(60)
    shares: dict[str, float] = {}
    sites: dict[str, float] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")[::-1]
        rule = next(
            (
                name
                for frame in frames
                for name, marks in PROFILE_RULES
                if any(m in frame for m in marks)
            ),
            "other (interpreter, stdlib)",
        )
        shares[rule] = shares.get(rule, 0) + int(count)
        # The innermost Civility function on the stack: which of our calls cost what.
        site = next((f.split(" (")[0] for f in frames if "service/" in f), "(outside Civility)")
        sites[site] = sites.get(site, 0) + int(count)
    total = sum(shares.values()) or 1

    def ranked(counts: dict[str, float]) -> dict[str, float]:
        return {k: n / total for k, n in sorted(counts.items(), key=lambda kv: -kv[1])}

    return {"layers": ranked(shares), "civility_functions": dict(list(ranked(sites).items())[:12])}


def profile_only(args, workdir: Path, texts: list[str], load_start: list[float]) -> None:
    """The --profile run: writes bench/results/ingest-profile.json."""
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        shares = profile(CivilityTarget(stack, "sqlite"), texts, args, workdir)
    lines = ["| Civility/SQLite, POST at c=32: where CPU samples fall | share |", "|---|---|"]
    lines += [f"| {name} | {share:.0%} |" for name, share in shares.get("layers", {}).items()]
    lines += ["", "| innermost Civility function on the stack | share |", "|---|---|"]
    lines += [f"| `{k}` | {v:.0%} |" for k, v in shares.get("civility_functions", {}).items()]
    print("\n".join(lines))
    result = {"machine": machine(), "loadavg_start": load_start, "loadavg_end": loadavg()}
    result.update(command="python bench/ingest.py --profile", shares=shares, table=lines)
    write_result("ingest-profile", result)


def plot(results: dict, levels: list[int], results_name: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind in zip(axes, ("ingest", "read"), strict=True):
        for name, by_level in results[kind].items():
            ax.plot(levels, [by_level[str(c)]["per_s"] for c in levels], marker="o", label=name)
        if kind == "read":
            for name, by_level in results.get("read-etag", {}).items():
                per_s = [by_level[str(c)]["per_s"] for c in levels]
                ax.plot(levels, per_s, marker="x", linestyle="--", label=f"{name} (304)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("requests/s")
        ax.set_title("POST a comment" if kind == "ingest" else "GET approved comments (50)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / f"bench-{results_name}.png", dpi=110)
    level = "32" if "32" in next(iter(results["ingest"].values())) else str(levels[-1])
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, by_level in results["ingest"].items():
        samples = by_level[level]["samples_ms"]
        ax.plot(samples, [i / len(samples) for i in range(len(samples))], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("fraction of requests answered")
    ax.set_title(f"POST a comment: latency distribution at concurrency {level}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / f"bench-{results_name}-latency.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,64", help="concurrencies")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=2, help="seconds before measuring")
    parser.add_argument("--databases", default="sqlite,postgresql", help="Civility's databases")
    parser.add_argument("--quick", action="store_true", help="3 s per level, 1 s warm-up")
    parser.add_argument(
        "--name", default="ingest", help="results name (bench/results/NAME.json, bench-NAME.png)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="only py-spy Civility/SQLite at concurrency 32"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 3, 1
    levels = [int(c) for c in args.levels.split(",")]
    texts = comment_texts(2000)
    started, load_start = time.time(), loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="civility-ingest-"))
    if args.profile:
        return profile_only(args, workdir, texts, load_start)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        targets = [Isso(stack, workdir)]
        targets += [CivilityTarget(stack, db) for db in args.databases.split(",")]
        for target in targets:
            target.seed_reads(texts[:READ_SEED])
        results = measure(targets, levels, args, workdir, texts)
    result = {
        **run_record("ingest.py", started, load_start),
        "levels": levels,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "results": results,
    }
    lines = []
    for kind in ("ingest", "read", "read-etag"):
        lines += ["", *table(kind, results, levels)]
    print("\n".join(lines))
    print(f"\nload average: start {load_start}, end {result['loadavg_end']}")
    result["tables"] = lines
    plot(results, levels, args.name)
    for by_name in results.values():
        for by_level in by_name.values():
            for out in by_level.values():
                del out["samples_ms"], out["records"]
    write_result(args.name, result)


if __name__ == "__main__":
    main()

"""Shared bench helpers: real comment texts, free ports, processes, a Civility stack, plots."""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Labelled real comments shipped with the project (bench/data/README.md). CIVILITY_BENCH_DATA
# names a folder with more of them (such as the Wikipedia identity set, which may be read but
# not copied here); files it lacks are taken from the shipped folder.
SHIPPED_DATA = ROOT / "bench" / "data"
DATA = Path(os.environ.get("CIVILITY_BENCH_DATA", SHIPPED_DATA))
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
CLI = str(BIN / "civility")
LOADGEN = str(ROOT / "bench" / "loadgen.py")
POSTGRES_ADMIN_URL = os.environ.get(
    "CIVILITY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CIVILITY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SOURCES = {
    "wiki": (
        ("jigsaw_test_sample_cc0.csv", "comment_text"),
        ("wiki_toxicity_identity_test.csv", "text"),
    ),
    "tweets": (("davidson_labeled.csv", "text"),),
}


def data_file(name: str) -> Path | None:
    """A data file from CIVILITY_BENCH_DATA or the shipped folder; None if neither has it."""
    for folder in (DATA, SHIPPED_DATA):
        if (folder / name).exists():
            return folder / name
    return None


def clean(text: str) -> str:
    """The text as a site would send it: no control characters but newline and tab."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))


def comment_texts(count: int, sources: tuple[str, ...] = ("wiki",), seed: int = 7) -> list[str]:
    """``count`` real human-written comments in a fixed shuffled order, repeated if needed."""
    texts = []
    for source in sources:
        for name, column in SOURCES[source]:
            path = data_file(name)
            if path is None:
                continue
            with open(path, newline="", encoding="utf-8") as f:
                texts += [clean(row[column]).strip() for row in csv.DictReader(f)]
    texts = [t[:10000] for t in texts if len(t) >= 3]
    random.Random(seed).shuffle(texts)
    return [texts[i % len(texts)] for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``th percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until truthy; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def machine() -> str:
    """The machine in words, for results and docs."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {python}"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_record(script: str, started: float, load_start: list[float]) -> dict[str, Any]:
    """The fields every result starts with: machine, start time, load, exact command."""
    return {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Proc:
    """A subprocess with its output in a log file; stopped by SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                argv, env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 30) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def run_loadgen(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run bench/loadgen.py (its own process, so it never shares a GIL with a server)."""
    name = uuid.uuid4().hex[:8]
    spec_path, out_path = workdir / f"spec-{name}.json", workdir / f"out-{name}.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run([sys.executable, LOADGEN, str(spec_path), str(out_path)], check=True)
    return json.loads(out_path.read_text())


def postgres_database(name: str, *, drop: bool = False) -> str:
    """Create (or with ``drop``, drop) a Postgres database; returns its URL."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


class Civility:
    """A fresh Civility: its own database (SQLite file or Postgres), Redis prefix and keys."""

    def __init__(
        self, database: str = "sqlite", redis_url: str = REDIS_URL, **settings: Any
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="civility-bench-"))
        self.logdir = self.workdir
        self.database = database
        self.prefix = f"civility-bench-{uuid.uuid4().hex[:8]}"
        self.pg_name = f"civility_bench_{uuid.uuid4().hex[:8]}"
        if database == "sqlite":
            self.db_url = f"sqlite:///{self.workdir / 'civility.sqlite3'}"
        elif database == "postgresql":
            self.db_url = postgres_database(self.pg_name)
        else:
            raise ValueError(f"unknown database {database!r}")
        self.redis_url = redis_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CIVILITY_")}
        self.env.update(
            {
                "CIVILITY_DATABASE_URL": self.db_url,
                "CIVILITY_REDIS_URL": redis_url,
                "CIVILITY_REDIS_PREFIX": self.prefix,
                "CIVILITY_INSTANCE_PATH": str(self.workdir),
                "CIVILITY_SECRET_KEY": "bench",
                "CIVILITY_LOG_LEVEL": "WARNING",
            }
        )
        self.env.update({f"CIVILITY_{k}": str(v) for k, v in settings.items()})
        self.procs: list[Proc] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        subprocess.run([CLI, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        site = self.cli("sites", "create", "Bench", "--public-reads")
        self.site_id = site["site_id"]
        self.admin_key = site["admin_key"]
        self.site_key = self.cli(
            "keys", "create", "--site", str(self.site_id), "--role", "site", "--name", "bench"
        )["key"]

    def cli(self, *args: str) -> dict[str, Any]:
        out = subprocess.run(
            [CLI, *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    def start(self, name: str, *args: str, **env: str) -> Proc:
        """Start ``civility <args>`` as ``name`` (extra CIVILITY_* settings in ``env``)."""
        proc = Proc(name, [CLI, *args], {**self.env, **env}, self.logdir)
        self.procs.append(proc)
        return proc

    def serve(self, workers: int = 2) -> Proc:
        """The API under gunicorn; returns once /healthz answers."""
        proc = self.start("api", "serve", "--port", str(self.port), "--workers", str(workers))
        wait_until(lambda: answers(f"{self.url}/healthz"), 30, "the Civility API")
        return proc

    def engine(self):
        import sqlalchemy as sa

        return sa.create_engine(self.db_url)

    def close(self) -> None:
        """Stop every process, delete the Redis keys and the database."""
        import redis

        for proc in reversed(self.procs):
            proc.stop()
        try:
            client = redis.Redis.from_url(self.redis_url)
            keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        if self.database == "postgresql":
            postgres_database(self.pg_name, drop=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


class RedisServer:
    """A private redis-server on a free port, without persistence: a restart loses its data."""

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logdir = logdir
        self.proc: Proc | None = None
        self.start()

    def start(self) -> None:
        import redis

        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.proc = Proc("redis", argv, os.environ, self.logdir)
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), 10, "redis-server")

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def kill(self) -> None:
        """SIGKILL: started again on the same port, it has lost its data."""
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False

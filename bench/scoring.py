"""Scoring throughput: naive per-comment Detoxify vs the batched scorer vs the whole pipeline.

Uses a Detoxify-format checkpoint with the architecture and cost of `detoxify:original`
(BERT-base, random weights, the real bert-base-uncased vocabulary) and real comment
texts from ../shared/data/. Prints a table and writes bench/results/scoring.json.

    .venv/bin/python bench/scoring.py [--count 256] [--batch 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
CACHE = Path(os.environ.get("CIVILITY_BENCH_CACHE", Path(tempfile.gettempdir()) / "civility-bench"))
CLI = str(Path(sys.executable).parent / "civility")
sys.path.insert(0, str(ROOT))

from common import machine  # noqa: E402  (bench/, beside this script)


def comment_texts(count: int) -> list[str]:
    """Real human-written comments (Wikipedia talk pages), in a fixed shuffled order."""
    texts = []
    for name, column in (
        ("jigsaw_test_sample_cc0.csv", "comment_text"),
        ("wiki_toxicity_identity_test.csv", "text"),
    ):
        with open(DATA / name, newline="", encoding="utf-8") as f:
            texts += [row[column].strip() for row in csv.DictReader(f) if row[column].strip()]
    random.Random(7).shuffle(texts)
    return texts[:count]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def naive(checkpoint: Path, config_dir: Path, texts: list[str]) -> float:
    """(a) Detoxify.predict once per comment, as a one-job-per-comment integration does."""
    from detoxify import Detoxify

    model = Detoxify(checkpoint=str(checkpoint), huggingface_config_path=str(config_dir))
    model.predict(texts[0])  # warm-up
    start = time.perf_counter()
    for text in texts:
        model.predict(text)
    return len(texts) / (time.perf_counter() - start)


def raw(
    checkpoint: Path, config_dir: Path, texts: list[str], batch: int, tokens: int, quantize: str
) -> tuple[float, list[dict[str, float]]]:
    """(b) The worker's scorer, one call over all texts (batched, length-sorted), with the
    worker's torch set-up (threads that sleep when idle, CIVILITY_MODEL_THREAD_WAIT)."""
    from workers.scorers import load_scorer

    scorer = load_scorer(
        f"detoxify:{checkpoint}",
        "none",
        config_dir=config_dir,
        max_batch=batch,
        max_tokens=tokens,
        quantize=quantize,
    )
    scorer.score(texts[:batch])  # warm-up
    start = time.perf_counter()
    scores = scorer.score(texts)
    return len(texts) / (time.perf_counter() - start), scores


def in_own_process(part: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """Run one measurement in a fresh interpreter: torch reads its threading environment
    once, when it loads, and (a) must run as a plain integration would, (b) as the worker."""
    command = [sys.executable, __file__, "--part", part, "--count", str(args.count)]
    command += ["--batch", str(args.batch), "--tokens", str(args.tokens)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_part(part: str, args: argparse.Namespace, checkpoint: Path, config_dir: Path) -> None:
    """The child's side of in_own_process: measure and print the result as JSON."""
    texts = comment_texts(args.count)
    if part == "naive":
        result = {"per_s": naive(checkpoint, config_dir, texts)}
    else:
        quantize = part.removeprefix("raw-")
        per_s, scores = raw(checkpoint, config_dir, texts, args.batch, args.tokens, quantize)
        result = {"per_s": per_s, "scores": scores}
    print(json.dumps(result))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def civility(env: dict[str, str], *args: str) -> dict:
    out = subprocess.run([CLI, *args], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def pipeline(
    checkpoint: Path, config_dir: Path, texts: list[str], batch: int, tokens: int, quantize: str
) -> dict:
    """(c) Comments submitted over HTTP until one worker has decided them all."""
    import redis
    import sqlalchemy as sa

    workdir = Path(tempfile.mkdtemp(prefix="civility-bench-"))
    db_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    prefix = f"civility-bench-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "CIVILITY_DATABASE_URL": db_url,
        "CIVILITY_REDIS_PREFIX": prefix,
        "CIVILITY_INSTANCE_PATH": str(workdir),
        "CIVILITY_RATELIMIT_ENABLED": "false",
        "CIVILITY_SCORER": f"detoxify:{checkpoint}",
        "CIVILITY_SCORER_FALLBACK": "none",
        "CIVILITY_MODEL_CONFIG_DIR": str(config_dir),
        "CIVILITY_SCORE_BATCH_MAX": str(batch),
        "CIVILITY_MODEL_MAX_TOKENS": str(tokens),
        "CIVILITY_MODEL_QUANTIZE": quantize,
        "CIVILITY_LOG_LEVEL": os.environ.get("CIVILITY_BENCH_LOG_LEVEL", "WARNING"),
        "PYTHONPATH": str(ROOT),
    }
    r = redis.Redis.from_url(os.environ.get("CIVILITY_REDIS_URL", "redis://localhost:6379/0"))
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        site = civility(env, "sites", "create", "Bench")
        key = civility(
            env,
            "keys",
            "create",
            "--site",
            str(site["site_id"]),
            "--role",
            "site",
            "--name",
            "bench",
        )["key"]
        procs.append(subprocess.Popen([CLI, "worker"], env=env))
        procs.append(
            subprocess.Popen(
                [CLI, "serve", "--port", str(port), "--workers", "1"],
                env=env,
                stderr=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        )
        wait_until(lambda: any(r.scan_iter(f"{prefix}:worker:*")), 120, "worker heartbeat")
        wait_until(lambda: _answers(port), 30, "API up")

        def submit(n_text):
            n, text = n_text
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/articles/bench/comments",
                method="POST",
                data=json.dumps({"body": text[:10000], "author": {"id": f"u{n % 50}"}}).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request) as answer:
                assert answer.status == 202

        engine = sa.create_engine(db_url)
        start = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(submit, enumerate(texts)))

        def decided() -> int:
            with engine.connect() as conn:
                return conn.execute(
                    sa.text("SELECT count(*) FROM comment WHERE status != 'pending'")
                ).scalar()

        wait_until(lambda: decided() == len(texts), 1800, "all comments decided")
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT created_at, decided_at FROM comment")).all()
        engine.dispose()
        parse = _parse_time
        latencies = [(parse(d) - parse(c)) for c, d in rows]
        elapsed = max(parse(d) for _, d in rows) - start
        return {
            "per_s": len(texts) / elapsed,
            "latency_p50_s": percentile(latencies, 50),
            "latency_p99_s": percentile(latencies, 99),
        }
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        for k in r.scan_iter(f"{prefix}:*"):
            r.delete(k)
        shutil.rmtree(workdir, ignore_errors=True)


def _parse_time(value) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=256, help="comments scored per method")
    parser.add_argument("--batch", type=int, default=32, help="scorer batch size")
    parser.add_argument(
        "--tokens", type=int, default=512, help="max tokens per text (Detoxify.predict's is 512)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each method, interleaved; medians count"
    )
    parser.add_argument("--part", help=argparse.SUPPRESS)  # one measurement, in a child
    args = parser.parse_args()

    from tests.checkpoints import build_bert_base_checkpoint

    checkpoint, config_dir = build_bert_base_checkpoint(CACHE)
    if args.part:
        run_part(args.part, args, checkpoint, config_dir)
        return
    texts = comment_texts(args.count)
    load_before = os.getloadavg()[0]
    plain = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    # The worker's default (CIVILITY_MODEL_THREAD_WAIT=passive), for (b) as for (c).
    as_worker = {**plain, "OMP_WAIT_POLICY": "PASSIVE"}
    # The host's speed drifts by a fifth from minute to minute (a shared VM), so every
    # method runs `repeat` times, interleaved, and the medians are compared.
    naive_runs: list[float] = []
    samples: dict[str, dict[str, list]] = {q: {"b": [], "c": []} for q in ("none", "int8")}
    scores = {}
    for _ in range(args.repeat):
        naive_runs.append(in_own_process("naive", args, plain)["per_s"])
        for quantize, sample in samples.items():
            b = in_own_process(f"raw-{quantize}", args, as_worker)
            scores[quantize] = b["scores"]
            sample["b"].append(b["per_s"])
            sample["c"].append(
                pipeline(checkpoint, config_dir, texts, args.batch, args.tokens, quantize)
            )
    a = statistics.median(naive_runs)
    runs = {}
    for quantize, sample in samples.items():
        middle = sorted(sample["c"], key=lambda c: c["per_s"])[len(sample["c"]) // 2]
        runs[quantize] = {
            "raw_per_s": statistics.median(sample["b"]),
            **middle,
            "raw_runs": sample["b"],
            "pipeline_runs": [c["per_s"] for c in sample["c"]],
        }
    exact, int8 = scores["none"], scores["int8"]
    int8_max_diff = max(abs(x[k] - y[k]) for x, y in zip(exact, int8, strict=True) for k in x)
    result = {
        "command": "python bench/scoring.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "load_avg_1m": [load_before, os.getloadavg()[0]],
        "count": args.count,
        "batch": args.batch,
        "max_tokens": args.tokens,
        "repeat": args.repeat,
        "naive_per_s": a,
        "naive_runs": naive_runs,
        "int8_max_score_diff": int8_max_diff,
    }
    print(f"\n{'method':46} {'comments/s':>10} {'c/a':>6} {'c/b':>6} {'p50 s':>7} {'p99 s':>7}")
    print(f"{'(a) naive: Detoxify.predict per comment':46} {a:>10.1f}")
    for quantize, run in runs.items():
        tag = "" if quantize == "none" else ", int8"
        run["c_over_a"] = run["per_s"] / a
        run["b_over_a"] = run["raw_per_s"] / a  # the most batching alone can gain
        run["c_over_b"] = run["per_s"] / run["raw_per_s"]
        result[quantize] = run
        print(f"{'(b) raw: batched scorer call' + tag:46} {run['raw_per_s']:>10.1f}")
        print(
            f"{'(c) pipeline: HTTP → Redis → worker → DB' + tag:46} {run['per_s']:>10.1f} "
            f"{run['c_over_a']:>6.2f} {run['c_over_b']:>6.2f} "
            f"{run['latency_p50_s']:>7.2f} {run['latency_p99_s']:>7.2f}"
        )
    print(f"\nmedians of {args.repeat} interleaved runs each; every run, in comments/s:")
    print(f"  (a) {' '.join(f'{x:.1f}' for x in naive_runs)}")
    for quantize, run in runs.items():
        print(f"  (b) {quantize}: {' '.join(f'{x:.1f}' for x in run['raw_runs'])}")
        print(f"  (c) {quantize}: {' '.join(f'{x:.1f}' for x in run['pipeline_runs'])}")
    print(
        "(b)/(a), the most batching alone can gain: "
        + ", ".join(f"{q} {run['b_over_a']:.2f}" for q, run in runs.items())
    )
    print(
        f"int8 vs exact scores on these random weights: max difference {int8_max_diff:.4f} "
        f"(bench/quantization.py measures a trained encoder); load {result['load_avg_1m']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scoring.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

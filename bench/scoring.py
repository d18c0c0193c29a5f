"""Scoring throughput: naive per-comment Detoxify vs the batched scorer vs the whole pipeline.

Uses a Detoxify-format checkpoint with the architecture and cost of `detoxify:original`
(BERT-base, random weights, the real bert-base-uncased vocabulary) and real comment
texts from bench/data/ (and CIVILITY_BENCH_DATA). Prints a table and writes
bench/results/scoring.json.

    .venv/bin/python bench/scoring.py [--count 256] [--batch 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
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
RESULTS = ROOT / "bench" / "results"
CACHE = Path(os.environ.get("CIVILITY_BENCH_CACHE", Path(tempfile.gettempdir()) / "civility-bench"))
CLI = str(Path(sys.executable).parent / "civility")
sys.path.insert(0, str(ROOT))

from common import comment_texts, machine  # noqa: E402  (bench/, beside this script)

from workers.threads import OPERATORS_OWN, apply_thread_wait  # noqa: E402  (imports no torch)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def naive(checkpoint: Path, config_dir: Path, texts: list[str], device: str) -> float:
    """(a) Detoxify.predict once per comment, as a one-job-per-comment integration does."""
    from detoxify import Detoxify

    model = Detoxify(
        checkpoint=str(checkpoint), huggingface_config_path=str(config_dir), device=device
    )
    model.predict(texts[0])  # warm-up
    start = time.perf_counter()
    for text in texts:
        model.predict(text)
    return len(texts) / (time.perf_counter() - start)


def raw(
    checkpoint: Path, config_dir: Path, texts: list[str], args: argparse.Namespace, precision: str
) -> tuple[float, list[dict[str, float]]]:
    """(b) The worker's scorer, one call over all texts (batched, length-sorted), with the
    worker's torch set-up (threads that sleep soon when idle, CIVILITY_MODEL_THREAD_WAIT)."""
    from workers.scorers import load_scorer

    scorer = load_scorer(
        f"detoxify:{checkpoint}",
        "none",
        config_dir=config_dir,
        device=args.device,
        max_batch=args.batch,
        max_tokens=args.tokens,
        precision=precision,
    )
    scorer.score(texts[: args.batch])  # warm-up
    start = time.perf_counter()
    scores = scorer.score(texts)
    return len(texts) / (time.perf_counter() - start), scores


def in_own_process(part: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """Run one measurement in a fresh interpreter: torch reads its threading environment
    once, when it loads, and (a) must run as a plain integration would, (b) as the worker."""
    command = [sys.executable, __file__, "--part", part, "--count", str(args.count)]
    command += ["--batch", str(args.batch), "--tokens", str(args.tokens), "--device", args.device]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_part(part: str, args: argparse.Namespace, checkpoint: Path, config_dir: Path) -> None:
    """The child's side of in_own_process: measure and print the result as JSON."""
    texts = comment_texts(args.count)
    if part == "naive":
        result = {"per_s": naive(checkpoint, config_dir, texts, args.device)}
    else:
        precision = part.removeprefix("raw-")
        per_s, scores = raw(checkpoint, config_dir, texts, args, precision)
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
    checkpoint: Path, config_dir: Path, texts: list[str], args: argparse.Namespace, precision: str
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
        "CIVILITY_SCORE_BATCH_MAX": str(args.batch),
        "CIVILITY_MODEL_MAX_TOKENS": str(args.tokens),
        "CIVILITY_MODEL_DEVICE": args.device,
        "CIVILITY_MODEL_PRECISION": precision,
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
    parser.add_argument(
        "--precisions",
        help="CIVILITY_MODEL_PRECISION values to run (b) and (c) at; default fp32, int8, "
        "and bf16 where the CPU has native bf16 units",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (CIVILITY_MODEL_DEVICE)")
    parser.add_argument(
        "--skip-pipeline",
        action="store_true",
        help="measure (a) and (b) only, e.g. on a GPU host without Redis and the service",
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
    plain = {k: v for k, v in os.environ.items() if k not in OPERATORS_OWN}
    # The worker's default (CIVILITY_MODEL_THREAD_WAIT=brief), for (b) as for (c).
    as_worker = dict(plain)
    apply_thread_wait("brief", as_worker)
    from workers.precision import native_bf16, resolve_precision

    default_here = resolve_precision("auto", args.device)
    precisions = (args.precisions or "fp32,bf16,int8").split(",")
    if not args.precisions and not native_bf16(args.device):
        precisions.remove("bf16")  # emulated: slower than fp32, nobody would choose it
    if not args.precisions and args.device != "cpu":
        precisions.remove("int8")  # the CPU's alone
    # The host's speed drifts by a fifth from minute to minute (a shared VM), so every
    # method runs `repeat` times, interleaved, and the medians are compared.
    naive_runs: list[float] = []
    samples: dict[str, dict[str, list]] = {p: {"b": [], "c": []} for p in precisions}
    scores = {}
    for _ in range(args.repeat):
        naive_runs.append(in_own_process("naive", args, plain)["per_s"])
        for precision, sample in samples.items():
            b = in_own_process(f"raw-{precision}", args, as_worker)
            scores[precision] = b["scores"]
            sample["b"].append(b["per_s"])
            if not args.skip_pipeline:
                sample["c"].append(pipeline(checkpoint, config_dir, texts, args, precision))
    a = statistics.median(naive_runs)
    runs = {}
    for precision, sample in samples.items():
        runs[precision] = {"raw_per_s": statistics.median(sample["b"]), "raw_runs": sample["b"]}
        runs[precision]["b_over_a"] = runs[precision]["raw_per_s"] / a
        if sample["c"]:
            middle = sorted(sample["c"], key=lambda c: c["per_s"])[len(sample["c"]) // 2]
            runs[precision] |= {
                **middle,
                "pipeline_runs": [c["per_s"] for c in sample["c"]],
                "c_over_a": middle["per_s"] / a,
                "c_over_b": middle["per_s"] / runs[precision]["raw_per_s"],
            }
        if precision != "fp32" and "fp32" in scores:
            pairs = zip(scores["fp32"], scores[precision], strict=True)
            runs[precision]["max_score_diff_vs_fp32"] = max(
                abs(x[k] - y[k]) for x, y in pairs for k in x
            )
    result = {
        "command": "python bench/scoring.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "load_avg_1m": [load_before, os.getloadavg()[0]],
        "count": args.count,
        "batch": args.batch,
        "max_tokens": args.tokens,
        "repeat": args.repeat,
        "device": args.device,
        "auto_precision": default_here,
        "naive_per_s": a,
        "naive_runs": naive_runs,
    }
    if args.device != "cpu":
        import torch

        result["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
        print(f"\non {result['gpu']}")
    print(f"\n{'method':58} {'comments/s':>10} {'c/a':>6} {'c/b':>6} {'p50 s':>7} {'p99 s':>7}")
    print(f"{'(a) naive: Detoxify.predict per comment':58} {a:>10.1f}")
    for precision, run in runs.items():
        tag = f", {precision}" + (" (auto here)" if precision == default_here else "")
        result[precision] = run
        print(f"{'(b) raw: batched scorer call' + tag:58} {run['raw_per_s']:>10.1f}")
        if "per_s" not in run:
            continue
        print(
            f"{'(c) pipeline: HTTP → Redis → worker → DB' + tag:58} {run['per_s']:>10.1f} "
            f"{run['c_over_a']:>6.2f} {run['c_over_b']:>6.2f} "
            f"{run['latency_p50_s']:>7.2f} {run['latency_p99_s']:>7.2f}"
        )
    print(f"\nmedians of {args.repeat} interleaved runs each; every run, in comments/s:")
    print(f"  (a) {' '.join(f'{x:.1f}' for x in naive_runs)}")
    for precision, run in runs.items():
        print(f"  (b) {precision}: {' '.join(f'{x:.1f}' for x in run['raw_runs'])}")
        if "pipeline_runs" in run:
            print(f"  (c) {precision}: {' '.join(f'{x:.1f}' for x in run['pipeline_runs'])}")
    print(
        "(b)/(a), what the scorer alone gains: "
        + ", ".join(f"{p} {run['b_over_a']:.2f}" for p, run in runs.items())
    )
    for precision, run in runs.items():
        if "max_score_diff_vs_fp32" in run:
            print(
                f"{precision} vs fp32 scores on these random weights: max difference "
                f"{run['max_score_diff_vs_fp32']:.4f} (bench/precision.py measures a trained "
                "encoder's decisions)"
            )
    print(f"load average (1 min) before and after: {result['load_avg_1m']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "scoring.json" if args.device == "cpu" else f"scoring-{args.device}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

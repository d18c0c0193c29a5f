"""Does a site reach better thresholds from its own moderators' decisions, and how fast is it?

Learning curve: a fresh Civility (API under gunicorn, the real worker scoring with the
offline `profanity-check`) receives labelled comments from bench/data (the Jigsaw sample,
the Wikipedia identity set when CIVILITY_BENCH_DATA has it, Davidson tweets to fill) over
HTTP. While it learns, the site pre-moderates with no reject threshold, so every comment is
held and every decision is a label (a post-moderated site's moderators see only what the
policy holds: its labels lean to high scores). "Moderators" then decide 250, 500, … of them
by their human labels through the decision API; after each step the bench reads
GET /v1/site/calibration, PATCHes the suggested hold_at/reject_at, and measures precision,
recall and F1 of "not approved" (the policy, post-moderated, with the site's thresholds)
on a disjoint labelled set, against profanity-check's own defaults and the Detoxify-tuned
ones. alt-profanity-check was trained on the Davidson tweets and on Wikipedia data, so
every figure on them is optimistic; compare the rows with each other.

Timing: sites of 1,000 … 1,000,000 comments, each decided by a moderator, seeded straight
through SQL; GET /v1/site/calibration answered through the real routes (Flask's test
client, in this process) with its wall time and this process's peak memory
(bench/calibration_timing.py).

Prints tables, writes bench/results/calibration.json and docs/bench-calibration.png.

    .venv/bin/python bench/calibration.py [--quick] [--database sqlite|postgresql]
        [--timing-only] [--sizes 1000,10000] [--plot]
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibration_report import plot, table  # noqa: E402
from calibration_timing import timing  # noqa: E402
from common import (  # noqa: E402  (bench/, beside this script)
    Civility,
    clean,
    data_file,
    loadavg,
    run_record,
    wait_until,
    write_result,
)

# (source, file, text column, label column)
FILES = (
    ("wiki", "jigsaw_test_sample_cc0.csv", "comment_text", "toxic"),
    ("wiki", "wiki_toxicity_identity_test.csv", "text", "label"),
    ("tweets", "davidson_labeled.csv", "text", "label"),
)
MODEL = "profanity-check"
THREADS = 8


def labelled(count: int, seed: int = 16) -> list[dict[str, Any]]:
    """``count`` labelled comments: every Wikipedia-style one there is, tweets to fill."""
    found: dict[str, list[dict[str, Any]]] = {"wiki": [], "tweets": []}
    for source, name, text_column, label_column in FILES:
        path = data_file(name)
        if path is None:
            continue
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                text = clean(row[text_column]).strip()[:10000]
                if text:
                    found[source].append(
                        {"source": source, "text": text, "toxic": row[label_column] == "1"}
                    )
    rng = random.Random(seed)
    rng.shuffle(found["tweets"])
    rows = found["wiki"][:count] + found["tweets"][: max(0, count - len(found["wiki"]))]
    rng.shuffle(rows)
    return rows


class Client:
    """One keep-alive HTTP connection per thread to the API."""

    def __init__(self, url: str) -> None:
        self.netloc = urlsplit(url).netloc
        self.local = threading.local()

    def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.netloc, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        try:
            conn.request(
                method, path, body=None if body is None else json.dumps(body), headers=headers
            )
            response = conn.getresponse()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            self.local.conn = None
            raise
        return response.status, json.loads(payload) if payload else None


def submit_all(client: Client, key: str, rows: list[dict[str, Any]]) -> None:
    """POST every comment (each by its own reader, a few articles); keeps its id in the row."""

    def one(index: int) -> None:
        row = rows[index]
        body = {"body": row["text"], "author": {"id": f"reader-{index}", "name": "Reader"}}
        status, answer = client.call("POST", f"/v1/articles/story-{index % 50}/comments", key, body)
        if status != 202:
            raise RuntimeError(f"submit answered {status}: {answer}")
        row["id"] = answer["id"]

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(len(rows))))


def decide_all(client: Client, key: str, rows: list[dict[str, Any]]) -> None:
    """A moderator decides each comment by its human label."""

    def one(row: dict[str, Any]) -> None:
        decision = {"decision": "reject" if row["toxic"] else "approve"}
        status, answer = client.call("POST", f"/v1/comments/{row['id']}/decision", key, decision)
        if status != 200:
            raise RuntimeError(f"decision answered {status}: {answer}")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, rows))


def measure(rows: list[dict[str, Any]], hold_at: Any, reject_at: Any) -> dict[str, Any]:
    """Precision, recall and F1 of "not approved" by the post-moderated policy on ``rows``."""
    from service.moderation.policy import PolicySettings, decide
    from service.moderation.states import AuthorStatus

    settings = PolicySettings.from_mapping({"hold_at": hold_at, "reject_at": reject_at}, MODEL)
    out: dict[str, Any] = {}
    for subset in ("all", "wiki", "tweets"):
        chosen = [r for r in rows if subset == "all" or r["source"] == subset]
        tp = fp = fn = rejected = rejected_ok = 0
        for r in chosen:
            status = decide(r["scores"], r["text"], AuthorStatus.ACTIVE, 10, settings).status
            flagged = status != "approved"
            tp += flagged and r["toxic"]
            fp += flagged and not r["toxic"]
            fn += (not flagged) and r["toxic"]
            rejected += status == "rejected"
            rejected_ok += status == "rejected" and r["toxic"]
        if not chosen:
            continue
        out[subset] = {
            "comments": len(chosen),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "f1": round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0,
            "rejected": rejected,
            "reject_precision": round(rejected_ok / rejected, 4) if rejected else None,
        }
    return out


def learning_curve(steps: list[int], test_size: int, database: str) -> dict[str, Any]:
    """Submit, score, decide step by step, calibrate, apply, measure on the held-out set."""
    import sqlalchemy as sa

    from service.moderation.policy import DEFAULT_HOLD_AT, DEFAULT_REJECT_AT, default_thresholds

    rows = labelled(max(steps) + test_size)
    test, train = rows[:test_size], rows[test_size:]
    civility = Civility(database, SCORER=MODEL, SCORER_FALLBACK="none", RATELIMIT_ENABLED="false")
    try:
        civility.serve(workers=2)
        civility.start("worker", "worker")
        moderator = civility.cli(
            "keys",
            "create",
            "--site",
            str(civility.site_id),
            "--role",
            "moderator",
            "--name",
            "mod",
        )["key"]
        client = Client(civility.url)
        admin = civility.admin_key
        status, answer = client.call(
            "PATCH", "/v1/site", admin, {"mode": "pre", "reject_at": {"toxicity": None}}
        )
        assert status == 200, answer
        started = time.monotonic()
        submit_all(client, civility.site_key, rows)
        engine = civility.engine()

        def pending() -> int:
            with engine.connect() as conn:
                return conn.execute(
                    sa.text("SELECT count(*) FROM comment WHERE status = 'pending'")
                ).scalar()

        wait_until(lambda: pending() == 0, 600, "every comment scored")
        ingest_s = time.monotonic() - started
        with engine.connect() as conn:
            scores = dict(conn.execute(sa.text("SELECT id, scores FROM comment")).all())
        for row in rows:
            value = scores[row["id"]]
            row["scores"] = json.loads(value) if isinstance(value, str) else value
        engine.dispose()
        own_hold, own_reject = default_thresholds(MODEL)
        baselines = {
            "profanity-check defaults": measure(test, dict(own_hold), dict(own_reject)),
            "Detoxify-tuned defaults": measure(
                test, dict(DEFAULT_HOLD_AT), dict(DEFAULT_REJECT_AT)
            ),
        }
        curve = []
        done = 0
        for step in steps:
            decide_all(client, moderator, train[done:step])
            done = step
            t0 = time.monotonic()
            status, report = client.call("GET", "/v1/site/calibration", moderator)
            calibration_ms = (time.monotonic() - t0) * 1000
            assert status == 200, report
            label = next(entry for entry in report["labels"] if entry["label"] == "toxicity")
            suggested = label["suggested"] or {}
            change = {
                name: {"toxicity": suggested[name]}
                for name in ("hold_at", "reject_at")
                if suggested.get(name) is not None
            }
            if "reject_at" not in change:  # no threshold reached the target: never reject by score
                change["reject_at"] = {"toxicity": None}
            status, site = client.call("PATCH", "/v1/site", admin, change)
            assert status == 200, site
            curve.append(
                {
                    "decisions": report["decisions"],
                    "rejected": report["rejected"],
                    "hold_at": site["hold_at"]["toxicity"],
                    "reject_at": site["reject_at"]["toxicity"],
                    "calibration_ms": round(calibration_ms, 1),
                    "test": measure(test, site["hold_at"], site["reject_at"]),
                }
            )
            last = curve[-1]
            print(
                f"  {step} decisions: hold_at {last['hold_at']}, reject_at {last['reject_at']}, "
                f"F1 {last['test']['all']['f1']}",
                flush=True,
            )
        composition = {s: sum(1 for r in rows if r["source"] == s) for s in ("wiki", "tweets")}
        return {
            "comments": len(rows),
            "test_comments": len(test),
            "composition": composition,
            "toxic_share": round(sum(r["toxic"] for r in rows) / len(rows), 4),
            "ingest_s": round(ingest_s, 1),
            "baselines": baselines,
            "curve": curve,
        }
    finally:
        civility.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small steps and sizes")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--plot", action="store_true", help="redraw the plot from the JSON")
    parser.add_argument("--timing-only", action="store_true", help="skip the learning curve")
    parser.add_argument("--sizes", help="comma-separated decision counts to time")
    args = parser.parse_args()
    if args.plot:
        from common import RESULTS

        plot(json.loads((RESULTS / "calibration.json").read_text()))
        return
    steps = [250, 500] if args.quick else [250, 500, 1000, 2000, 4000]
    test_size = 500 if args.quick else 2000
    sizes = [1000, 10_000] if args.quick else [1000, 10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    started, load_start = time.time(), loadavg()
    learning = None
    if not args.timing_only:
        print(f"Learning curve ({args.database}): steps {steps}, held-out {test_size}", flush=True)
        learning = learning_curve(steps, test_size, args.database)
    print(f"Timing ({args.database}): sizes {sizes}", flush=True)
    with tempfile.TemporaryDirectory() as instance:
        if args.database == "sqlite":
            from tests.conftest import migrate

            url = f"sqlite:///{Path(instance) / 'timing.sqlite3'}"
            migrate(url, Path(instance))
            times = timing(sizes, url, instance, MODEL)
        else:
            from common import postgres_database

            from tests.conftest import migrate

            name = f"civility_calibration_{int(started)}"
            url = postgres_database(name)
            try:
                migrate(url, Path(instance))
                times = timing(sizes, url, instance, MODEL)
            finally:
                postgres_database(name, drop=True)
    result = {
        **run_record("calibration.py", started, load_start),
        "database": args.database,
        "quick": args.quick,
        "note": "alt-profanity-check was trained on the Davidson tweets and on Wikipedia data: "
        "figures on them are optimistic; compare rows within this run.",
        "learning": learning,
        "timing": times,
    }
    print()
    if learning is None:
        print("\n".join(table(result, MODEL).splitlines()[-len(times) - 2 :]))
        write_result(f"calibration-timing-{args.database}", result)
        return
    print(table(result, MODEL))
    write_result("calibration-quick" if args.quick else "calibration", result)
    if not args.quick:
        plot(result)


if __name__ == "__main__":
    main()

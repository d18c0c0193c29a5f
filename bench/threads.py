"""How torch's idle threads should wait: CIVILITY_MODEL_THREAD_WAIT's policies measured.

Each policy (and torch's own default, no variable set) runs in a fresh interpreter, with
the worker's scorer (the BERT-base-shaped checkpoint, the worker's precision), and times
passes of 1 and of 8 comments with 20 ms idle between them, as a worker between
requests: once with the machine to itself and once while another process holds a core
(a busy loop: the API or a neighbour on a shared machine). It also reads the CPU time
the process spends idle for half a second after a pass: threads that spin on take a core
from everything else. Policies run interleaved, ``--repeat`` times, and medians are
reported (the host's speed drifts from minute to minute). Prints a table, writes
bench/results/threads.json, draws docs/bench-threads.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCS, ROOT, comment_texts, loadavg, pyplot, run_record, write_result

sys.path.insert(0, str(ROOT))
from workers.threads import OPERATORS_OWN, THREAD_WAITS, apply_thread_wait

CACHE = Path(os.environ.get("CIVILITY_BENCH_CACHE", Path(tempfile.gettempdir()) / "civility-bench"))
POLICIES = [*THREAD_WAITS, "torch default"]
SIZES = (1, 8)
CONDITIONS = ("free", "held")  # the cores to itself; one held by a busy loop
PASSES = {1: 30, 8: 10}  # passes timed per size and condition
IDLE_BETWEEN_S = 0.02


def measure(policy: str) -> dict:
    """The child's side: load the scorer as the worker does, time its passes."""
    from tests.checkpoints import build_bert_base_checkpoint
    from workers.scorers import load_scorer

    checkpoint, config_dir = build_bert_base_checkpoint(CACHE)
    scorer = load_scorer(
        f"detoxify:{checkpoint}", "none", config_dir=str(config_dir), precision="auto"
    )
    # Comments of one window (under 600 characters), so a pass's size is its texts.
    texts = [t for t in comment_texts(400, seed=3) if len(t) < 600][:300]
    scorer.score(texts[:8])  # warm up

    def median_ms(size: int) -> float:
        times = []
        for n in range(PASSES[size]):
            batch = texts[(n * size) % 280 :][:size]
            began = time.perf_counter()
            scorer.score(batch)
            times.append((time.perf_counter() - began) * 1000)
            time.sleep(IDLE_BETWEEN_S)
        return statistics.median(times)

    result: dict = {"policy": policy}
    for condition in CONDITIONS:
        hog = None
        if condition == "held":
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.3)
        try:
            for size in SIZES:
                result[f"{condition}_{size}_ms"] = median_ms(size)
        finally:
            if hog:
                hog.kill()
                hog.wait()
    scorer.score(texts[:8])
    before = time.process_time()
    time.sleep(0.5)
    result["idle_cpu_share"] = (time.process_time() - before) / 0.5
    return result


def in_own_process(policy: str) -> dict:
    """One policy in a fresh interpreter: OpenMP reads its variables once, when torch loads."""
    env = {k: v for k, v in os.environ.items() if k not in OPERATORS_OWN}
    if policy in THREAD_WAITS:
        apply_thread_wait(policy, env)
    command = [sys.executable, __file__, "--child", policy]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def plot(medians: dict[str, dict], name: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.2
    for ax, size in zip(axes, SIZES, strict=True):
        for n, policy in enumerate(POLICIES):
            values = [medians[policy][f"{c}_{size}_ms"] for c in CONDITIONS]
            ax.bar([x + n * width for x in (0, 1)], values, width, label=policy)
        ax.set_xticks([x + 1.5 * width for x in (0, 1)], ["cores free", "a core held"])
        ax.set_ylabel("median pass ms")
        ax.set_title(f"passes of {size} comment{'s' if size > 1 else ''}")
    axes[0].legend()
    fig.suptitle("BERT-base passes by how torch's idle threads wait")
    fig.tight_layout()
    fig.savefig(DOCS / name, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per policy")
    parser.add_argument("--quick", action="store_true", help="one run per policy")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one policy, in a child
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    repeat = 1 if args.quick else args.repeat
    started, load_start = time.time(), loadavg()
    runs: dict[str, list[dict]] = {p: [] for p in POLICIES}
    for _ in range(repeat):
        for policy in POLICIES:
            runs[policy].append(in_own_process(policy))
            print(f"  {json.dumps(runs[policy][-1])}", flush=True)
    keys = [f"{c}_{s}_ms" for c in CONDITIONS for s in SIZES] + ["idle_cpu_share"]
    medians = {p: {k: statistics.median(r[k] for r in runs[p]) for k in keys} for p in POLICIES}
    lines = [
        "| policy | 1 text, cores free | 8 texts, cores free | 1 text, a core held "
        "| 8 texts, a core held | CPU while idle |",
        "|---|---|---|---|---|---|",
    ]
    for policy in POLICIES:
        m = medians[policy]
        lines.append(
            f"| {policy} | {m['free_1_ms']:.0f} ms | {m['free_8_ms']:.0f} ms | "
            f"{m['held_1_ms']:.0f} ms | {m['held_8_ms']:.0f} ms | {m['idle_cpu_share']:.0%} |"
        )
    print("\n" + "\n".join(lines))
    result = {
        **run_record("threads.py", started, load_start),
        "repeat": repeat,
        "runs": runs,
        "medians": medians,
        "table": lines,
    }
    print(f"\nload average: start {load_start}, end {result['loadavg_end']}")
    name = "threads-quick" if args.quick else "threads"
    plot(medians, f"bench-{name}.png")
    write_result(name, result)


if __name__ == "__main__":
    main()

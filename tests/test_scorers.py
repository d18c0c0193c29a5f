"""Scorers: the real Detoxify class on a tiny checkpoint, profanity-check, chunk plans and
precisions (loading and fallback: test_scorer_loading.py)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import torch

from workers import precision as precision_module
from workers.detoxify import DetoxifyScorer, plan_chunks
from workers.scorers import (
    ProfanityCheckScorer,
    Scored,
    ScoringError,
    load_scorer,
)

ORIGINAL_LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
TEXTS = [
    "you are an idiot",
    "thanks for the great article",
    "I hate this and I hate you",
    "nice",
    "the river near the mountain school was cold in the morning",
    "stupid",
    "please read the comment again before you answer",
]


@pytest.fixture(scope="module")
def scorer(tiny_checkpoint: tuple[Path, Path]) -> DetoxifyScorer:
    """The tiny checkpoint loaded through load_scorer and the real Detoxify class."""
    checkpoint, config_dir = tiny_checkpoint
    loaded = load_scorer(
        f"detoxify:{checkpoint}",
        "none",
        config_dir=config_dir,
        max_batch=3,
        max_tokens=16,
        precision="fp32",
    )
    assert isinstance(loaded, DetoxifyScorer)
    return loaded


class FailsOnWordScorer(DetoxifyScorer):
    """A forward pass that fails for any batch holding one word, as an OOM or kernel error would."""

    failing_word = "kill"

    def _forward(self, features: list[dict[str, list[int]]]) -> list[list[float]]:
        failing_id = self._tokenizer.convert_tokens_to_ids(self.failing_word)
        if any(failing_id in feature["input_ids"] for feature in features):
            raise RuntimeError(f"forward pass failed on {self.failing_word!r}")
        return super()._forward(features)


def test_checkpoint_loads_with_detoxify_labels_and_file_version(scorer: DetoxifyScorer) -> None:
    assert scorer.labels == ORIGINAL_LABELS
    assert scorer.name == "detoxify-tiny"
    assert len(scorer.version) == 12
    int(scorer.version, 16)
    assert scorer.model == f"detoxify-tiny@{scorer.version}"


def test_scores_equal_detoxify_predict(
    scorer: DetoxifyScorer, tiny_checkpoint: tuple[Path, Path]
) -> None:
    from detoxify import Detoxify

    checkpoint, config_dir = tiny_checkpoint
    predicted = Detoxify(checkpoint=str(checkpoint), huggingface_config_path=str(config_dir))
    expected = predicted.predict(TEXTS)

    scored = scorer.score(TEXTS)

    assert set(expected) == set(ORIGINAL_LABELS)
    for index, scores in enumerate(scored):
        for label, value in scores.items():
            assert type(value) is float
            assert value == pytest.approx(expected[label][index], abs=1e-5)


def test_batch_scores_map_back_to_their_texts(scorer: DetoxifyScorer) -> None:
    texts = TEXTS[:]
    random.Random(1).shuffle(texts)

    batch = scorer.score(texts)  # 7 texts, max_batch 3, sorted by length inside

    singles = [scorer.score([text])[0] for text in texts]
    assert len({round(scores["toxicity"], 4) for scores in batch}) == len(texts)
    for got, alone in zip(batch, singles, strict=True):
        assert got == pytest.approx(alone, abs=1e-5)


def test_long_text_is_read_whole_so_a_toxic_tail_counts(scorer: DetoxifyScorer) -> None:
    head = "please read " * 40  # 80 tokens: windows of 16 overlapping by 7; it scores low
    head_only = scorer.score([head])[0]["toxicity"]
    # The tiny model's weights are random: take the tail that scores highest after the head.
    # Cut at max_tokens, every one of these would score exactly as the head alone.
    whole = {tail: scorer.score_detailed([head + tail])[0] for tail in TEXTS}
    tail = max(whole, key=lambda t: whole[t].scores["toxicity"])

    assert whole[tail].truncated is False
    assert whole[tail].scores["toxicity"] > head_only + 0.3


def test_text_longer_than_max_windows_is_flagged_truncated(scorer: DetoxifyScorer) -> None:
    results = scorer.score_detailed(["nice", "the river near the mountain " * 60])

    assert [result.truncated for result in results] == [False, True]
    assert results[1].scores is not None


def test_time_budget_splits_passes_once_the_speed_is_measured(
    tiny_checkpoint: tuple[Path, Path],
) -> None:
    checkpoint, config_dir = tiny_checkpoint
    budgeted = load_scorer(
        f"detoxify:{checkpoint}",
        "none",
        config_dir=config_dir,
        max_batch=32,
        max_tokens=16,
        precision="fp32",
        pass_budget_s=1e-9,  # smaller than any pass: one text per pass
    )
    texts = ["you are an idiot", "nice", "thanks for the great article"]
    assert len(budgeted.plan(texts)) == 1  # nothing measured yet: by max_batch alone

    budgeted.score(texts)

    assert budgeted.seconds_per_token and len(budgeted.plan(texts)) == 3


class CountingPasses(DetoxifyScorer):
    """The real scorer, counting its forward passes and the windows of each."""

    passes: list[int] = []

    def _forward(self, features: list[dict[str, list[int]]]) -> list[list[float]]:
        self.passes = [*self.passes, len(features)]
        return super()._forward(features)


def test_a_long_text_over_the_budget_is_read_in_passes_with_the_caller_let_in_between(
    tiny_checkpoint: tuple[Path, Path],
) -> None:
    checkpoint, config_dir = tiny_checkpoint
    options = {"config_dir": config_dir, "max_tokens": 16, "precision": "fp32"}
    whole = load_scorer(f"detoxify:{checkpoint}", "none", max_batch=32, **options)
    budgeted = CountingPasses(str(checkpoint), max_batch=32, pass_budget_s=1e-9, **options)
    budgeted.score(["nice"])  # measures its speed: from now on one window a pass
    texts = ["please read " * 40 + "you are an idiot", "nice"]
    windows = len(budgeted._tokenize(texts[:1])[0][0])
    budgeted.passes, between = [], []

    scored = budgeted.score_detailed(texts, between=lambda: between.append(len(budgeted.passes)))

    assert windows > 4
    assert budgeted.passes == [1] * (windows + 1)  # "nice", then the long text's windows
    assert between == list(range(1, windows + 1))  # after every pass but the last
    for got, expected in zip(scored, whole.score_detailed(texts), strict=True):
        assert got.scores == pytest.approx(expected.scores, abs=1e-5)
    assert whole.score_detailed(texts, between=lambda: between.append(-1))
    assert -1 not in between  # one pass for all: nothing to let in


def test_text_the_tokenizer_rejects_fails_alone(scorer: DetoxifyScorer) -> None:
    results = scorer.score_detailed(["you are an idiot", None, "nice"])  # type: ignore[list-item]

    assert results[1].scores is None
    assert results[1].error
    assert results[0].scores == pytest.approx(scorer.score(["you are an idiot"])[0], abs=1e-5)
    assert results[2].scores == pytest.approx(scorer.score(["nice"])[0], abs=1e-5)
    with pytest.raises(ScoringError, match="text 1"):
        scorer.score(["nice", None])  # type: ignore[list-item]


def test_failed_forward_pass_retries_its_texts_one_by_one(
    tiny_checkpoint: tuple[Path, Path], scorer: DetoxifyScorer, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint, config_dir = tiny_checkpoint
    failing = FailsOnWordScorer(
        str(checkpoint), config_dir=config_dir, max_batch=8, precision="fp32"
    )
    texts = ["nice", "I will kill it", "thanks for the great article", "stupid"]

    with caplog.at_level(logging.WARNING, logger="workers.detoxify"):
        results = failing.score_detailed(texts)

    assert results[1] == Scored(None, False, "RuntimeError: forward pass failed on 'kill'")
    for index in (0, 2, 3):
        assert results[index].error is None
        assert results[index].scores == pytest.approx(scorer.score([texts[index]])[0], abs=1e-5)
    assert "scoring one by one" in caplog.text


def test_empty_batch_scores_nothing(scorer: DetoxifyScorer) -> None:
    assert scorer.score([]) == []


def test_profanity_check_scores_profane_text_higher() -> None:
    scorer = load_scorer("profanity-check", "none")

    profane, clean = scorer.score(["you are a fucking idiot, shit", "have a lovely day"])

    assert isinstance(scorer, ProfanityCheckScorer)
    assert scorer.labels == ("toxicity",)
    assert scorer.model.startswith("profanity-check@")
    assert profane["toxicity"] > 0.9 > 0.2 > clean["toxicity"]


@pytest.mark.parametrize(
    "lengths",
    [[], [5], [10] * 70, [3, 4, 5, 60, 61, 62, 250, 256], list(range(1, 200, 3))],
)
def test_chunk_plan_covers_every_text_once_within_max_batch(lengths):
    chunks = plan_chunks(lengths, 32)
    covered = [i for start, end in chunks for i in range(start, end)]
    assert covered == list(range(len(lengths)))
    assert all(0 < end - start <= 32 for start, end in chunks)


def test_chunk_plan_splits_where_lengths_jump_rather_than_padding():
    # 30 short texts and 2 long ones: padding the short ones to 256 costs far more
    # than a second forward pass.
    chunks = plan_chunks([12] * 30 + [256, 256], 32)
    assert chunks == [(0, 30), (30, 32)]
    # Equal lengths stay in as few passes as max_batch allows.
    assert len(plan_chunks([40] * 64, 32)) == 2
    # Where a pass costs more (fp32 on a CPU), cutting pays only for bigger jumps.
    assert plan_chunks([12] * 4 + [40] * 4, 8, pass_overhead_tokens=8) == [(0, 4), (4, 8)]
    assert plan_chunks([12] * 4 + [40] * 4, 8, pass_overhead_tokens=200) == [(0, 8)]


def test_plan_sorts_texts_into_passes_shortest_first_and_covers_each_once(
    scorer: DetoxifyScorer,
) -> None:
    texts = ["word " * 12, "hi", "word " * 11, "ok", "word " * 13, "yes", None]
    passes = scorer.plan(texts)  # type: ignore[arg-type]

    assert sorted(i for group in passes for i in group) == list(range(len(texts)))
    assert passes[0] == [6]  # the tokenizer rejects None: alone, first, no forward pass
    assert all(0 < len(group) <= scorer.max_batch for group in passes[1:])
    assert [set(group) for group in passes[1:]] == [{1, 3, 5}, {0, 2, 4}]
    # Scoring a planned pass makes exactly that one forward pass.
    assert [sorted(g) for g in scorer.plan([texts[i] for i in passes[2]])] == [[0, 1, 2]]
    assert scorer.plan([]) == []


def test_profanity_check_plans_one_pass_for_everything() -> None:
    assert ProfanityCheckScorer().plan(TEXTS) == [list(range(len(TEXTS)))]


@pytest.mark.parametrize(
    ("precision", "mean_below", "max_below"),
    [
        # The tiny model's deliberately wide weights amplify rounding. What bf16 and int8
        # do to a trained encoder's decisions is measured by bench/precision.py.
        ("bf16", 0.02, 0.1),
        ("int8", 0.05, 0.3),
    ],
)
def test_reduced_precision_keeps_labels_and_scores_close_and_names_itself(
    tiny_checkpoint: tuple[Path, Path],
    scorer: DetoxifyScorer,
    precision: str,
    mean_below: float,
    max_below: float,
) -> None:
    checkpoint, config_dir = tiny_checkpoint
    reduced = load_scorer(
        f"detoxify:{checkpoint}",
        "none",
        config_dir=config_dir,
        max_batch=3,
        max_tokens=16,
        precision=precision,
    )
    assert reduced.model == f"{scorer.model}+{precision}"
    exact, approximate = scorer.score(TEXTS), reduced.score(TEXTS)
    assert [set(s) for s in approximate] == [set(ORIGINAL_LABELS)] * len(TEXTS)
    pairs = zip(exact, approximate, strict=True)
    diffs = [abs(one[k] - other[k]) for one, other in pairs for k in one]
    assert 0 < max(diffs) < max_below
    assert sum(diffs) / len(diffs) < mean_below


def test_bf16_logits_are_not_rounded_to_bf16(tiny_checkpoint: tuple[Path, Path]) -> None:
    checkpoint, config_dir = tiny_checkpoint
    reduced = load_scorer(f"detoxify:{checkpoint}", "none", config_dir=config_dir, precision="bf16")
    probabilities = [value for scores in reduced.score(TEXTS) for value in scores.values()]
    # A sigmoid of bf16 logits has at most 8 significant bits; the output layer runs in fp32.
    assert any(float(torch.tensor(p).to(torch.bfloat16)) != p for p in probabilities)


@pytest.mark.parametrize(
    ("requested", "native", "expected"),
    [
        ("auto", True, "bf16"),
        ("auto", False, "fp32"),
        ("fp32", True, "fp32"),
        ("bf16", False, "bf16"),
        ("int8", True, "int8"),
    ],
)
def test_auto_precision_is_bf16_only_on_a_cpu_with_bf16_units(
    monkeypatch: pytest.MonkeyPatch, requested: str, native: bool, expected: str
) -> None:
    # The hardware is the one thing a test cannot change; everything else is real.
    monkeypatch.setattr(precision_module, "native_bf16", lambda device_type: native)
    assert precision_module.resolve_precision(requested, "cpu") == expected
    # On a GPU fp32 measured faster for these batch shapes: auto keeps it.
    gpu_expected = "fp32" if requested == "auto" else expected
    if requested != "int8":
        assert precision_module.resolve_precision(requested, "cuda") == gpu_expected


def test_auto_precision_matches_this_machine(tiny_checkpoint: tuple[Path, Path]) -> None:
    checkpoint, config_dir = tiny_checkpoint
    loaded = load_scorer(f"detoxify:{checkpoint}", "none", config_dir=config_dir)
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert loaded.precision == ("bf16" if native else "fp32")
    assert loaded.model.endswith("+bf16") == native


@pytest.mark.parametrize("precision", ["int4", "none"])
def test_unknown_precision_is_refused_before_loading(tmp_path: Path, precision: str) -> None:
    # The checkpoint does not exist: a ValueError, not ScorerUnavailable, shows that the
    # precision was refused before anything was read.
    with pytest.raises(ValueError, match="precision must be one of"):
        load_scorer(f"detoxify:{tmp_path / 'missing.ckpt'}", precision=precision)


def test_int8_on_a_gpu_is_refused() -> None:
    with pytest.raises(ValueError, match="int8 precision runs on the CPU only"):
        precision_module.resolve_precision("int8", "cuda")


def test_a_backlog_pass_lets_requests_in_between_its_layers_and_scores_the_same(
    tiny_checkpoint: tuple[Path, Path],
) -> None:
    # A pass over a full window takes 150-250 ms on a slow CPU: a request arriving as it
    # starts waited all of it. Between the encoder's layers it waits for one layer.
    import workers.detoxify

    checkpoint, config_dir = tiny_checkpoint
    options = {"config_dir": config_dir, "max_tokens": 16, "precision": "fp32"}
    # The tiny model's layers take microseconds: let requests in at every one.
    scorer = CountingPasses(str(checkpoint), max_batch=32, yield_every_s=1e-9, **options)
    texts = ["you are an idiot", "nice", "thanks for the great article"]
    expected = scorer.score_detailed(texts)
    request = "a request answered in the middle of the pass"
    answered: list[Scored] = []
    scorer.passes = []

    def between() -> None:
        answered.extend(scorer.score_detailed([request]))  # the same model, inside a pass

    scored = scorer.score_detailed(texts, between=between)

    assert len(workers.detoxify.encoder_layers(scorer._model)) == 2
    assert len(answered) == 1  # once: after the first layer, and not within its own pass
    assert scorer.passes == [3, 1]  # the request's pass ran inside the backlog's
    assert answered[0].scores == pytest.approx(scorer.score([request])[0], abs=1e-5)
    for got, want in zip(scored, expected, strict=True):
        assert got.scores == pytest.approx(want.scores, abs=1e-5)
    # The hooks are gone once the call returns: a pass without a caller is not cut.
    scorer.score_detailed(texts, between=None)
    assert len(answered) == 1
    # And with SCORE_YIELD_MS=0 requests come in between passes only.
    between_passes = CountingPasses(str(checkpoint), max_batch=32, **options)
    between_passes.score_detailed(texts, between=between)
    assert len(answered) == 1


def test_a_failing_call_between_layers_does_not_fail_the_pass(
    tiny_checkpoint: tuple[Path, Path],
) -> None:
    checkpoint, config_dir = tiny_checkpoint
    scorer = CountingPasses(
        str(checkpoint), max_batch=32, yield_every_s=1e-9, config_dir=config_dir, max_tokens=16
    )
    scorer.passes = []

    def between() -> None:
        raise RuntimeError("the stream went away")

    (scored,) = scorer.score_detailed(["you are an idiot"], between=between)

    assert scored.error is None and scored.scores
    assert scorer.passes == [1]  # not failed, so not scored again one by one

"""Toxicity scorers: one interface over Detoxify and alt-profanity-check."""

from __future__ import annotations

import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from workers.weights import (
    OFFLINE_FIX,
    ScorerUnavailable,
    check_checkpoint,
    require_named_model_reachable,
    sha256_of,
)

logger = logging.getLogger(__name__)

# One tokenized text: its model inputs and whether it was cut at max_tokens.
Encoded = tuple[dict[str, list[int]], bool]

DETOXIFY_MODELS = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class ScoringError(Exception):
    """A text could not be scored (`score` raises it; `score_detailed` reports it per text)."""


@dataclass(frozen=True)
class Scored:
    """The outcome for one text: scores per label, or the error that prevented them."""

    scores: dict[str, float] | None
    truncated: bool = False
    error: str | None = None


class Scorer(ABC):
    """A loaded model that scores texts on `labels`, each score in [0, 1]."""

    name: str
    version: str
    labels: tuple[str, ...]

    @property
    def model(self) -> str:
        """The identifier stored with every score, e.g. `detoxify-original@0.5.4`."""
        return f"{self.name}@{self.version}"

    @abstractmethod
    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        """Score texts in input order; a text that fails gets `error` and no scores."""

    def plan(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of ``texts`` grouped into the passes that score them best, in the order
        to score them; every index appears once. Here: one pass for all."""
        return [list(range(len(texts)))] if texts else []

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Score texts in input order; raise ScoringError if any text could not be scored."""
        results = self.score_detailed(texts)
        for index, scored in enumerate(results):
            if scored.scores is None:
                raise ScoringError(f"text {index}: {scored.error}")
        return [scored.scores for scored in results if scored.scores is not None]


class ProfanityCheckScorer(Scorer):
    """alt-profanity-check's linear model, shipped inside its package: works offline."""

    name = "profanity-check"
    labels = ("toxicity",)

    def __init__(self) -> None:
        try:
            from profanity_check import predict_prob
        except ImportError as exc:
            raise ScorerUnavailable(
                f"profanity-check: cannot import profanity_check ({exc}); "
                "install alt-profanity-check."
            ) from exc
        self._predict_prob = predict_prob
        self.version = package_version("alt-profanity-check")

    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        """Score all texts in one call; on failure, one by one so a bad text fails alone."""
        texts = _text_list(texts)
        if not texts:
            return []
        try:
            return [self._scored(p) for p in self._predict_prob(texts)]
        except Exception:
            pass
        results = []
        for text in texts:
            try:
                results.append(self._scored(self._predict_prob([text])[0]))
            except Exception as exc:
                results.append(Scored(None, error=f"{type(exc).__name__}: {exc}"))
        return results

    def _scored(self, probability: Any) -> Scored:
        return Scored({"toxicity": float(probability)})


class DetoxifyScorer(Scorer):
    """A Detoxify model, named (`original`, …) or a local checkpoint with its HF config dir."""

    def __init__(
        self,
        source: str,
        *,
        config_dir: str | Path | None = None,
        device: str = "cpu",
        threads: int = 0,
        max_batch: int = 32,
        max_tokens: int = 256,
        precision: str = "auto",
    ) -> None:
        if max_batch < 1 or max_tokens < 4:
            raise ValueError(
                f"detoxify: need max_batch >= 1 and max_tokens >= 4, not {max_batch}, {max_tokens}"
            )
        try:
            import torch
            from detoxify import Detoxify

            from workers import precision as precisions
        except ImportError as exc:
            raise ScorerUnavailable(
                f"detoxify: cannot import ({exc}); install detoxify and torch."
            ) from exc

        try:
            device_type = torch.device(device).type
        except RuntimeError as exc:
            raise ValueError(f"detoxify: invalid device {device!r}: {exc}") from exc
        if device_type == "cuda" and not torch.cuda.is_available():
            raise ScorerUnavailable(
                f"detoxify: device {device!r} requested but torch sees no CUDA device."
            )
        self.precision = precisions.resolve_precision(precision, device_type)
        if threads > 0:
            torch.set_num_threads(threads)

        if source in DETOXIFY_MODELS:
            require_named_model_reachable(source)
            self.name = f"detoxify-{source}"
            self.version = package_version("detoxify")
            load = {"model_type": source}
        else:
            path = Path(source)
            check_checkpoint(path, config_dir)
            self.name = f"detoxify-{path.stem}"
            self.version = sha256_of(path)[:12]
            load = {"checkpoint": str(path), "huggingface_config_path": _str_or_none(config_dir)}
        try:
            detoxify = Detoxify(device=device, **load)
        except Exception as exc:
            raise ScorerUnavailable(
                f"detoxify: cannot load {source!r}: {type(exc).__name__}: {exc}. "
                + OFFLINE_FIX.format(model=source if source in DETOXIFY_MODELS else "original")
            ) from exc

        self.labels = tuple(detoxify.class_names)
        self.device = device
        self.max_batch = max_batch
        self.pass_overhead_tokens = PASS_OVERHEAD_TOKENS[
            "cuda" if device_type == "cuda" else f"cpu-{self.precision}"
        ]
        self._model = detoxify.model.eval()
        self._tokenizer = detoxify.tokenizer
        limit = min(self._tokenizer.model_max_length, self._model.config.max_position_embeddings)
        if max_tokens > limit:
            logger.warning(
                "scorer %s: max_tokens %d exceeds the model's %d; using %d",
                self.name,
                max_tokens,
                limit,
                limit,
            )
        self.max_tokens = min(max_tokens, limit)
        self._model = precisions.reduce_precision(self._model, self.precision)
        self._device_type = device_type
        if self.precision != "fp32":
            # Such scores differ slightly: comments must say which model scored them.
            self.version += f"+{self.precision}"

    def plan(self, texts: Sequence[str]) -> list[list[int]]:
        """The forward passes ``score_detailed`` would make for ``texts``, shortest first;
        texts the tokenizer rejects come first, in a group of their own (no pass)."""
        encoded = self._encode(_text_list(texts))
        rejected = [index for index, item in enumerate(encoded) if not isinstance(item, tuple)]
        return ([rejected] if rejected else []) + self._passes(encoded)

    def _passes(self, encoded: Sequence[Encoded | str]) -> list[list[int]]:
        """Tokenized texts in length order, cut into chunks of at most max_batch."""
        ready = [index for index, item in enumerate(encoded) if isinstance(item, tuple)]
        # Sorting by token count keeps the padding in each chunk small.
        ready.sort(key=lambda index: len(encoded[index][0]["input_ids"]))
        lengths = [len(encoded[index][0]["input_ids"]) for index in ready]
        chunks = plan_chunks(lengths, self.max_batch, self.pass_overhead_tokens)
        return [ready[start:end] for start, end in chunks]

    def score_detailed(self, texts: Sequence[str]) -> list[Scored]:
        """Score in length-sorted chunks of max_batch, one forward pass each, in input order."""
        encoded = self._encode(_text_list(texts))
        results: list[Scored | None] = [
            None if isinstance(item, tuple) else Scored(None, error=item) for item in encoded
        ]
        for chunk in self._passes(encoded):
            outcomes = self._score_chunk([encoded[i][0] for i in chunk])
            for index, outcome in zip(chunk, outcomes, strict=True):
                truncated = encoded[index][1]
                if isinstance(outcome, str):
                    results[index] = Scored(None, truncated, outcome)
                else:
                    results[index] = Scored(dict(zip(self.labels, outcome, strict=True)), truncated)
        return [scored for scored in results if scored is not None]

    def _encode(self, texts: list[str]) -> Sequence[Encoded | str]:
        """Tokenize, cut at max_tokens; a text the tokenizer rejects gets its error instead."""
        try:
            return self._tokenize(texts)
        except Exception:
            pass
        encoded: list[Encoded | str] = []
        for text in texts:
            try:
                encoded.extend(self._tokenize([text]))
            except Exception as exc:
                encoded.append(f"{type(exc).__name__}: {exc}")
        return encoded

    def _tokenize(self, texts: list[str]) -> list[Encoded]:
        if not texts:
            return []
        batch = self._tokenizer(texts, truncation=True, max_length=self.max_tokens)
        rows: list[Encoded] = []
        for index in range(len(texts)):
            features = {key: batch[key][index] for key in batch}
            if batch.encodings:
                truncated = bool(batch.encodings[index].overflowing)
            else:  # a non-`tokenizers` backend does not report overflow
                truncated = len(self._tokenizer(texts[index])["input_ids"]) > self.max_tokens
            rows.append((features, truncated))
        return rows

    def _score_chunk(self, features: list[dict[str, list[int]]]) -> list[list[float] | str]:
        """Probabilities per text; if the chunk fails, retry its texts one by one."""
        try:
            return list(self._forward(features))
        except Exception as exc:
            if len(features) == 1:
                return [f"{type(exc).__name__}: {exc}"]
            logger.warning(
                "scorer %s: batch of %d failed (%s); scoring one by one",
                self.name,
                len(features),
                exc,
            )
        return [self._score_chunk([one])[0] for one in features]

    def _forward(self, features: list[dict[str, list[int]]]) -> list[list[float]]:
        """One padded forward pass; sigmoid over logits as `Detoxify.predict` does."""
        import torch

        from workers.precision import forward_context

        inputs = self._tokenizer.pad(features, return_tensors="pt").to(self._model.device)
        with torch.inference_mode(), forward_context(self.precision, self._device_type):
            logits = self._model(**inputs)[0]
        return torch.sigmoid(logits.float()).cpu().tolist()


# A forward pass costs about as much as this many extra tokens, whatever its size.
# BERT-base on a 2-core CPU: fp32 ~0.85 ms a token plus ~55 ms a pass, int8 ~0.4 ms a
# token plus ~16 ms a pass (an AVX-512 VNNI Xeon), bf16 ~0.37 ms a token plus ~32 ms a
# pass (an AMX Xeon). On a GPU a pass's launch cost dominates and padding is nearly
# free, so chunks simply fill up to max_batch.
PASS_OVERHEAD_TOKENS = {"cpu-fp32": 64, "cpu-int8": 40, "cpu-bf16": 80, "cuda": 4096}


def plan_chunks(
    lengths: Sequence[int],
    max_batch: int,
    pass_overhead_tokens: int = PASS_OVERHEAD_TOKENS["cpu-fp32"],
) -> list[tuple[int, int]]:
    """Split ascending token counts into chunks (start, end) of at most ``max_batch``,
    minimising padded tokens plus a fixed cost per forward pass.

    Padding every text to the longest of a random batch can cost more than scoring
    one by one; cutting the sorted run where lengths jump avoids that. Dynamic
    programming over contiguous chunks: O(len(lengths) * max_batch).
    """
    count = len(lengths)
    best = [0.0] + [math.inf] * count
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        for start in range(max(0, end - max_batch), end):
            cost = best[start] + (end - start) * lengths[end - 1] + pass_overhead_tokens
            if cost < best[end]:
                best[end], cut[end] = cost, start
    chunks = []
    end = count
    while end > 0:
        chunks.append((cut[end], end))
        end = cut[end]
    return chunks[::-1]


def load_scorer(
    spec: str,
    fallback: str = "profanity-check",
    *,
    config_dir: str | Path | None = None,
    device: str = "cpu",
    threads: int = 0,
    max_batch: int = 32,
    max_tokens: int = 256,
    precision: str = "auto",
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> Scorer:
    """Build the scorer for `spec`; if it cannot load, log why and use `fallback` (none: raise)."""
    log = log or logger
    _parse(spec)
    if fallback != "none":
        _parse(fallback)
    options = {
        "config_dir": config_dir,
        "device": device,
        "threads": threads,
        "max_batch": max_batch,
        "max_tokens": max_tokens,
        "precision": precision,
    }
    try:
        return _build(spec, **options)
    except ScorerUnavailable as exc:
        if fallback in ("none", spec):
            raise
        log.error("scorer %s unavailable, falling back to %s: %s", spec, fallback, exc)
        return _build(fallback, **options)


def _parse(spec: str) -> tuple[str, str | None]:
    """Split a spec into backend and argument; ValueError if it names nothing we know."""
    if spec == "profanity-check":
        return "profanity-check", None
    backend, _, source = spec.partition(":")
    if backend == "detoxify" and (
        source in DETOXIFY_MODELS
        or "/" in source
        or os.sep in source
        or source.endswith(CHECKPOINT_SUFFIXES)
    ):
        return "detoxify", source
    names = "|".join(DETOXIFY_MODELS)
    raise ValueError(
        f"unknown scorer {spec!r}: use 'profanity-check', 'detoxify:<{names}>' or "
        "'detoxify:/path/to/checkpoint.ckpt' (a fallback may also be 'none')"
    )


def _build(spec: str, **options: Any) -> Scorer:
    backend, source = _parse(spec)
    if backend == "profanity-check":
        return ProfanityCheckScorer()
    assert source is not None
    return DetoxifyScorer(source, **options)


def _text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):  # a lone string would be scored character by character
        raise TypeError("score a list of texts, not a str")
    return list(texts)


def _str_or_none(value: str | Path | None) -> str | None:
    return None if value is None else str(value)

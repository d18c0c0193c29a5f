"""Toxicity scorers: one interface over Detoxify and alt-profanity-check.

The interface, the profanity-check scorer and ``load_scorer`` (specs, fallback) live here;
the Detoxify scorer and its window and chunk planning in ``workers/detoxify.py``.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from workers.weights import (
    ScorerUnavailable,
)

logger = logging.getLogger(__name__)


DETOXIFY_MODELS = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


@dataclass(frozen=True)
class ModelOptions:
    """How a Detoxify model is loaded and read (the CIVILITY_MODEL_* settings): one set that
    ``load_scorer`` passes through to ``DetoxifyScorer``; profanity-check ignores it."""

    config_dir: str | Path | None = None
    device: str = "cpu"
    threads: int = 0
    max_batch: int = 32
    max_tokens: int = 256
    precision: str = "auto"
    window_overlap: int = 32
    max_windows: int = 16
    pass_budget_s: float = 0.0
    # How often a backlog pass lets waiting requests in between its layers (0: never).
    yield_every_s: float = 0.0


# Called between two forward passes of one scoring call (None: nothing to do there).
Between = Callable[[], object] | None


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
    def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
        """Score texts in input order; a text that fails gets `error` and no scores.
        ``between`` is called between forward passes, never before the first: the worker
        answers synchronous requests there while it scores its backlog."""

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

    def score_detailed(self, texts: Sequence[str], *, between: Between = None) -> list[Scored]:
        """Score all texts in one call (a linear model: no passes to come between); on
        failure, one by one so a bad text fails alone."""
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


def load_scorer(
    spec: str,
    fallback: str = "profanity-check",
    options: ModelOptions | None = None,
    *,
    log: logging.Logger | logging.LoggerAdapter | None = None,
    **fields: Any,
) -> Scorer:
    """Build the scorer for `spec`; if it cannot load, log why and use `fallback` (none: raise).

    ``fields`` change single ModelOptions fields of ``options`` (the defaults when None).
    """
    log = log or logger
    _parse(spec)
    if fallback != "none":
        _parse(fallback)
    options = replace(options or ModelOptions(), **fields)
    try:
        return _build(spec, options)
    except ScorerUnavailable as exc:
        if fallback in ("none", spec):
            raise
        log.error("scorer %s unavailable, falling back to %s: %s", spec, fallback, exc)
        return _build(fallback, options)


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


def _build(spec: str, options: ModelOptions) -> Scorer:
    backend, source = _parse(spec)
    if backend == "profanity-check":
        return ProfanityCheckScorer()
    assert source is not None
    from workers.detoxify import DetoxifyScorer  # built on this module's interface

    return DetoxifyScorer(source, options)


def _text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):  # a lone string would be scored character by character
        raise TypeError("score a list of texts, not a str")
    return list(texts)

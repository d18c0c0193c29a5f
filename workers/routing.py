"""Routing by language: each comment goes to a loaded scorer that reads its language.

``CIVILITY_SCORERS`` lists the scorers a worker loads, each with the languages it
reads (``detoxify:original=en;detoxify:multilingual=fr,es,it,pt,tr,ru``); earlier
entries win a language two entries read. A site may name the scorer for a language
(its ``language_scorers``). A comment in a language no loaded scorer reads is not
scored at all when the site's ``unsupported_language`` is ``hold``: the policy holds
it (``unsupported_language``). With ``score`` the scorer of the fallback language reads
it and the policy records that it did.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.languages import Detection, detector
from workers.scorers import (
    DETOXIFY_MODELS,
    Between,
    ModelOptions,
    Scored,
    Scorer,
    ScorerUnavailable,
    _parse,
    load_scorer,
)

log = logging.getLogger(__name__)

ANY = "*"
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
# The languages each named model was trained on (Detoxify's README; alt-profanity-check:
# English tweets and Wikipedia comments).
MODEL_LANGUAGES: Mapping[str, tuple[str, ...]] = {
    "profanity-check": ("en",),
    "detoxify:original": ("en",),
    "detoxify:unbiased": ("en",),
    "detoxify:original-small": ("en",),
    "detoxify:unbiased-small": ("en",),
    "detoxify:multilingual": ("en", "fr", "es", "it", "pt", "tr", "ru"),
}
# Detoxify's training configs name their data set: the multilingual one read these.
MULTILINGUAL_DATASETS = ("JigsawDataMultilingual",)
DETECTED_MAX = 4096  # detections remembered between planning a window and scoring it


@dataclass(frozen=True)
class RouteSpec:
    """One entry of CIVILITY_SCORERS: a scorer spec and the languages it reads (None: any)."""

    spec: str
    languages: frozenset[str] | None


@dataclass(frozen=True)
class Route:
    """A loaded scorer and the languages it reads (None: any)."""

    spec: str
    scorer: Scorer
    languages: frozenset[str] | None

    def reads(self, language: str) -> bool:
        return self.languages is None or language in self.languages


@dataclass(frozen=True)
class SiteLanguages:
    """A site's language settings: its scorer per language, and what to do with the rest."""

    scorers: Mapping[str, str] = field(default_factory=dict)
    unsupported: str = "hold"


@dataclass(frozen=True)
class Routed(Scored):
    """Scores with the language they were read as, the model that read them (None: no
    model did) and notes for the comment's reasons."""

    language: str | None = None
    confidence: float | None = None
    model: str | None = None
    supported: bool = True
    notes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Assignment:
    language: str
    confidence: float
    route: int | None  # index into Router.routes; None: no scorer reads it
    supported: bool
    notes: tuple[dict[str, Any], ...]


def parse_routes(value: str, setting: str = "CIVILITY_SCORERS") -> list[RouteSpec]:
    """``spec=lang,lang;spec=*;spec`` as RouteSpecs; ValueError naming ``setting`` otherwise.

    A spec without ``=`` reads its model's languages (MODEL_LANGUAGES; a Detoxify
    checkpoint: those of the data set it was trained on).
    """
    routes: list[RouteSpec] = []
    for number, entry in enumerate((e.strip() for e in value.split(";")), start=1):
        if not entry:
            continue
        spec, has_languages, listed = (part.strip() for part in entry.rpartition("="))
        if not has_languages:
            spec, listed = listed, ""
        where = f"{setting}: entry {number} ({entry!r})"
        try:
            _parse(spec)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if any(route.spec == spec for route in routes):
            raise ValueError(f"{where}: {spec!r} is listed twice")
        if not has_languages:
            routes.append(RouteSpec(spec, default_languages(spec)))
            continue
        codes = [code.strip().lower() for code in listed.split(",") if code.strip()]
        if codes == [ANY]:
            routes.append(RouteSpec(spec, None))
            continue
        wrong = [code for code in codes if not LANGUAGE.match(code)]
        if wrong or not codes:
            raise ValueError(
                f"{where}: expected language codes (ISO 639-1 such as en,fr, or *) after '=', "
                f"not {', '.join(map(repr, wrong)) or 'nothing'}"
            )
        routes.append(RouteSpec(spec, frozenset(codes)))
    if not routes:
        raise ValueError(f"{setting}: lists no scorer")
    return routes


def default_languages(spec: str) -> frozenset[str]:
    """The languages a spec's model was trained on; a checkpoint's from its training config."""
    if spec in MODEL_LANGUAGES:
        return frozenset(MODEL_LANGUAGES[spec])
    backend, source = _parse(spec)
    if backend == "detoxify" and source not in DETOXIFY_MODELS and Path(source).is_file():
        try:
            import torch

            config = torch.load(source, map_location="cpu", weights_only=False, mmap=True)
            if config["config"]["dataset"]["type"] in MULTILINGUAL_DATASETS:
                return frozenset(MODEL_LANGUAGES["detoxify:multilingual"])
        except Exception:  # unreadable here: loading it reports why
            log.debug("scorer %s: training data set unknown", spec, exc_info=True)
    return frozenset({"en"})  # Detoxify's other checkpoints are English


class Router(Scorer):
    """Several scorers behind the Scorer interface: texts go to the one reading their language."""

    name = "router"

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        fallback_language: str = "en",
        min_confidence: float = 0.6,
    ) -> None:
        if not routes:
            raise ValueError("a router needs at least one scorer")
        self.routes = list(routes)
        self.fallback_language = fallback_language
        self.min_confidence = min_confidence
        self.labels = tuple(dict.fromkeys(label for r in self.routes for label in r.scorer.labels))
        self.version = "+".join(route.scorer.version for route in self.routes)
        self._detected: dict[str, Detection] = {}

    @property
    def model(self) -> str:
        return ",".join(route.scorer.model for route in self.routes)

    def detect(self, texts: Sequence[str]) -> list[Detection]:
        """Detections of ``texts``, remembered for the batch being planned."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._detected]
        if len(self._detected) + len(missing) > DETECTED_MAX:  # callers that never plan
            self._detected = {}
        if missing:
            # The detector loads on first use (under a second): in a worker, its warm-up
            # pass (workers/analyze.py), before it announces itself or reads a comment.
            self._detected.update(zip(missing, detector().detect(missing), strict=True))
        return [self._detected[text] for text in texts]

    def reads(self, language: str) -> bool:
        """Whether a loaded scorer reads ``language`` (for callers that name it)."""
        return any(route.reads(language) for route in self.routes)

    def assign(
        self,
        texts: Sequence[str],
        sites: Sequence[SiteLanguages | None] | None = None,
        languages: Sequence[str | None] | None = None,
    ) -> list[Assignment]:
        """The language and route of each text; a language given for a text (a caller that
        knows it, such as a Perspective request's ``languages``) replaces detection."""
        sites = sites or [None] * len(texts)
        given = languages or [None] * len(texts)
        detected = self.detect([t for t, g in zip(texts, given, strict=True) if g is None])
        found = iter(detected)
        return [
            self._assign(
                Detection(language, 1.0) if language else next(found), site or SiteLanguages()
            )
            for language, site in zip(given, sites, strict=True)
        ]

    def _assign(self, found: Detection, site: SiteLanguages) -> Assignment:
        notes: list[dict[str, Any]] = []
        language, confidence = found.language, found.confidence
        # Unsure between languages: any scorer reading all of them will do.
        wanted = [language] if language else []
        if language is None or confidence < self.min_confidence:
            likely = [code for code, p in found.candidates if p >= self.min_confidence / 4]
            wanted = list(dict.fromkeys([*likely[:2], self.fallback_language]))
            notes.append(
                {
                    "code": "language_uncertain",
                    "detected": language,
                    "confidence": round(confidence, 4),
                    "language": self.fallback_language,
                }
            )
            language = self.fallback_language
        chosen = site.scorers.get(language)
        if chosen is not None:
            for index, route in enumerate(self.routes):
                if route.spec == chosen:
                    return Assignment(language, confidence, index, True, tuple(notes))
            notes.append(
                {"code": "language_scorer_missing", "language": language, "scorer": chosen}
            )
        for candidates in (wanted, [language]):
            for index, route in enumerate(self.routes):
                if all(route.reads(code) for code in candidates):
                    return Assignment(language, confidence, index, True, tuple(notes))
        if site.unsupported == "score":
            for index, route in enumerate(self.routes):
                if route.reads(self.fallback_language):
                    return Assignment(language, confidence, index, False, tuple(notes))
            return Assignment(language, confidence, 0, False, tuple(notes))
        return Assignment(language, confidence, None, False, tuple(notes))

    def plan(
        self, texts: Sequence[str], sites: Sequence[SiteLanguages | None] | None = None
    ) -> list[list[int]]:
        """Texts no scorer reads in one group (no pass), then each scorer's part in its passes."""
        self._detected = {}
        assigned = self.assign(texts, sites)
        unread = [index for index, item in enumerate(assigned) if item.route is None]
        groups = [unread] if unread else []
        for number, route in enumerate(self.routes):
            part = [index for index, item in enumerate(assigned) if item.route == number]
            if part:
                passes = route.scorer.plan([texts[index] for index in part])
                groups += [[part[i] for i in group] for group in passes]
        return groups

    def score_detailed(
        self,
        texts: Sequence[str],
        sites: Sequence[SiteLanguages | None] | None = None,
        languages: Sequence[str | None] | None = None,
        *,
        between: Between = None,
    ) -> list[Scored]:
        """Score each text with its language's scorer, one call per scorer, in input order;
        ``between`` runs between forward passes, within a scorer's call and between two."""
        if isinstance(texts, str):
            raise TypeError("score a list of texts, not a str")
        assigned = self.assign(texts, sites, languages)
        results: list[Scored | None] = [None] * len(texts)
        called = False
        for number, route in [(None, None), *enumerate(self.routes)]:
            part = [index for index, item in enumerate(assigned) if item.route == number]
            if not part:
                continue
            if route is None:
                scored: list[Scored] = [Scored({}) for _ in part]
            else:
                if called and between is not None:
                    between()
                called = True
                try:
                    scored = route.scorer.score_detailed(
                        [texts[index] for index in part], between=between
                    )
                    if len(scored) != len(part):
                        raise RuntimeError(f"{len(scored)} results for {len(part)} texts")
                except Exception as exc:  # this scorer's part fails; the others are kept
                    log.error("scorer %s: failed", route.scorer.model, exc_info=True)
                    scored = [Scored(None, error=f"{type(exc).__name__}: {exc}") for _ in part]
            for index, result in zip(part, scored, strict=True):
                item = assigned[index]
                results[index] = Routed(
                    result.scores,
                    result.truncated,
                    result.error,
                    language=item.language,
                    confidence=round(item.confidence, 4),
                    model=None if route is None else route.scorer.model,
                    supported=item.supported,
                    notes=item.notes,
                )
        return [result for result in results if result is not None]


def load_router(config: Mapping[str, Any], log: Any = log) -> tuple[Router, bool]:
    """The scorers CIVILITY_SCORERS lists (or SCORER alone) behind a Router; the flag says a
    fallback took over. A scorer that cannot load is replaced by SCORER_FALLBACK (which
    reads its own languages); ScorerUnavailable when that is ``none`` or cannot load."""
    specs = parse_routes(config["SCORERS"]) if config["SCORERS"].strip() else None
    if specs is None:
        specs = parse_routes(config["SCORER"], "CIVILITY_SCORER")
    fallback = config["SCORER_FALLBACK"]
    if fallback != "none":
        _parse(fallback)
    options = ModelOptions(
        config_dir=config["MODEL_CONFIG_DIR"],
        device=config["MODEL_DEVICE"],
        threads=config["MODEL_THREADS"],
        max_batch=config["SCORE_BATCH_MAX"],
        max_tokens=config["MODEL_MAX_TOKENS"],
        precision=config["MODEL_PRECISION"],
        window_overlap=config["MODEL_WINDOW_OVERLAP"],
        max_windows=config["MODEL_MAX_WINDOWS"],
        pass_budget_s=config["SCORE_PASS_BUDGET_MS"] / 1000,
        yield_every_s=config["SCORE_YIELD_MS"] / 1000,
    )
    routes: list[Route] = []
    fallback_active = False
    for entry in specs:
        spec, languages = entry.spec, entry.languages
        try:
            scorer = load_scorer(spec, "none", options, log=log)
        except ScorerUnavailable as exc:
            if fallback in ("none", spec):
                raise
            log.error("scorer %s: unavailable, falling back to %s: %s", spec, fallback, exc)
            fallback_active = True
            if any(route.spec == fallback for route in routes):
                continue
            spec, languages = fallback, default_languages(fallback)
            scorer = load_scorer(fallback, "none", options, log=log)
        routes.append(Route(spec, scorer, languages))
    fallback_language = config["LANGUAGE_FALLBACK"]
    if not LANGUAGE.match(fallback_language):
        raise ValueError(
            f"CIVILITY_LANGUAGE_FALLBACK: expected a language code such as en, "
            f"not {fallback_language!r}"
        )
    min_confidence = config["LANGUAGE_MIN_CONFIDENCE"]
    if not 0 <= min_confidence <= 1:
        raise ValueError(
            f"CIVILITY_LANGUAGE_MIN_CONFIDENCE: expected 0 to 1, not {min_confidence!r}"
        )
    for route in routes:
        log.info(
            "scorer %s: reads %s",
            route.scorer.model,
            "any language" if route.languages is None else ",".join(sorted(route.languages)),
        )
    router = Router(routes, fallback_language=fallback_language, min_confidence=min_confidence)
    return router, fallback_active

"""What the drop-in faces (Perspective, OpenAI, Coral) share: how their attribute and
category names map onto the model's labels, the site's thresholds, and sentence spans."""

from __future__ import annotations

import re
from collections.abc import Mapping

from service.models import Site
from service.moderation.policy import PolicySettings

# Perspective attribute -> Detoxify label. PROFANITY is what Detoxify calls obscene.
PERSPECTIVE_ATTRIBUTES: Mapping[str, str] = {
    "TOXICITY": "toxicity",
    "SEVERE_TOXICITY": "severe_toxicity",
    "IDENTITY_ATTACK": "identity_attack",
    "INSULT": "insult",
    "PROFANITY": "obscene",
    "THREAT": "threat",
    "SEXUALLY_EXPLICIT": "sexual_explicit",
}

# OpenAI category -> (the labels it is read from, their maximum; "all" takes the minimum,
# i.e. every label must fire). Categories without labels the model lacks score 0.
OPENAI_CATEGORIES: Mapping[str, tuple[tuple[str, ...], str]] = {
    "harassment": (("insult", "toxicity"), "any"),
    "harassment/threatening": (("threat",), "any"),
    "hate": (("identity_attack",), "any"),
    "hate/threatening": (("identity_attack", "threat"), "all"),
    "illicit": ((), "any"),
    "illicit/violent": ((), "any"),
    "self-harm": ((), "any"),
    "self-harm/instructions": ((), "any"),
    "self-harm/intent": ((), "any"),
    "sexual": (("sexual_explicit",), "any"),
    "sexual/minors": ((), "any"),
    "violence": (("threat",), "any"),
    "violence/graphic": ((), "any"),
}

# The languages each model family was trained on (Detoxify's model cards); others are
# scored anyway, as English.
MULTILINGUAL = ("en", "fr", "es", "it", "pt", "tr", "ru")

SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n+")


def model_languages(model: str) -> tuple[str, ...]:
    """The languages the model named ``name@version`` was trained on."""
    return MULTILINGUAL if "multilingual" in model else ("en",)


def languages_read(requested: list[str], model: str) -> list[str]:
    """The requested languages the model knows; when it knows none, the one it read the text
    as (its first). Never an error: Coral sends its tenant's locale and fails open."""
    known = model_languages(model)
    found = [lang for lang in requested if lang.split("-")[0].lower() in known]
    return found or [known[0]]


def site_policy(site: Site, model: str | None = None) -> PolicySettings:
    """The site's compiled moderation settings, as the worker's policy reads them, over the
    default thresholds of ``model`` (the scorer that read the text)."""
    return PolicySettings.from_site(site, model)


def flagged_labels(scores: Mapping[str, float], policy: PolicySettings) -> set[str]:
    """Labels whose score reaches the site's hold or reject threshold."""
    over = set()
    for thresholds in (policy.hold_at, policy.reject_at):
        over |= {label for label, at in thresholds.items() if scores.get(label, 0.0) >= at}
    return over


def category_score(scores: Mapping[str, float], category: str) -> float:
    """One OpenAI category's score from the model's labels (0 where it has none of them)."""
    labels, combine = OPENAI_CATEGORIES[category]
    values = [scores[label] for label in labels if label in scores]
    if not values or (combine == "all" and len(values) < len(labels)):
        return 0.0
    return float(min(values) if combine == "all" else max(values))


def category_flagged(scores: Mapping[str, float], category: str, over: set[str]) -> bool:
    """Whether the labels behind a category crossed the site's thresholds."""
    labels, combine = OPENAI_CATEGORIES[category]
    if not labels:
        return False
    hits = [label in over for label in labels if label in scores]
    if not hits or (combine == "all" and len(hits) < len(labels)):
        return False
    return all(hits) if combine == "all" else any(hits)


def sentence_spans(text: str, most: int) -> list[tuple[int, int]]:
    """(begin, end) character offsets of the text's sentences, surrounding space left out.

    A text of more than ``most`` sentences is read as ``most`` runs of neighbouring
    sentences, as even as the sentences allow, so a long text cannot turn one request
    into thousands of texts to score. Together the spans still cover every sentence.
    """
    sentences, most = _sentences(text), max(most, 1)
    if len(sentences) <= most:
        return sentences
    runs = []
    for run in range(most):
        first, last = len(sentences) * run // most, len(sentences) * (run + 1) // most - 1
        runs.append((sentences[first][0], sentences[last][1]))
    return runs


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for begin, end in spans:
        piece = text[begin:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if piece.strip():
            trimmed.append((begin + lead, end - trail))
    return trimmed

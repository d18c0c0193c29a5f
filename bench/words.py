"""Benchmark word list compile and scan times with 10,000 entries; writes bench/results/words.json.

Run from the repository root: ``.venv/bin/python -m bench.words`` (or ``python bench/words.py``).
"""

from __future__ import annotations

import json
import platform
import random
import string
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.moderation.policy import PolicySettings, decide
from service.moderation.states import AuthorStatus
from service.moderation.words import WordList

RESULTS = Path(__file__).resolve().parent / "results" / "words.json"
WORDS = 10_000
TEXT_CHARS = 10_000


def random_word(rng: random.Random) -> str:
    """A lowercase ASCII word of 4 to 10 letters."""
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10)))


def best_ms(statement, number: int) -> float:
    """Best of five runs, in milliseconds per call."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1000


def main() -> None:
    """Time compile, scan and decide, print a table and write the JSON results."""
    rng = random.Random(42)
    entries = [random_word(rng) for _ in range(WORDS * 9 // 10)]
    entries += [f"{random_word(rng)} {random_word(rng)}" for _ in range(WORDS // 10)]
    words = WordList.compile(entries)
    ascii_text = " ".join(random_word(rng) for _ in range(TEXT_CHARS // 5))[:TEXT_CHARS]
    accented_text = ascii_text.replace("e", "é").replace("a", "à")
    settings = PolicySettings(banned_words=words, suspect_words=words, hold_links=True)
    scores = {"toxicity": 0.3, "insult": 0.2, "threat": 0.01}
    comment = ascii_text[:600]

    rows = {
        f"compile {WORDS:,} entries": best_ms(lambda: WordList.compile(entries), 3),
        f"scan {TEXT_CHARS:,} chars, ASCII": best_ms(lambda: words.find(ascii_text), 20),
        f"scan {TEXT_CHARS:,} chars, accented": best_ms(lambda: words.find(accented_text), 20),
        "decide, 600-char comment, both lists": best_ms(
            lambda: decide(scores, comment, AuthorStatus.ACTIVE, 5, settings), 200
        ),
    }
    width = max(map(len, rows))
    print(f"{'case':<{width}}  {'ms':>9}")
    for case, ms in rows.items():
        print(f"{case:<{width}}  {ms:>9.3f}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "entries": len(words),
                "text_chars": len(ascii_text),
                "ms": {case: round(ms, 4) for case, ms in rows.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

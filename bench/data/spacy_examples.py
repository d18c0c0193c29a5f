"""Rebuild spacy_examples.csv from a spaCy wheel: `python bench/data/spacy_examples.py WHEEL`.

spaCy ships example sentences per language (``spacy/lang/<code>/examples.py``,
MIT licence); this reads them from the wheel without installing or importing it.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# `xx` is spaCy's multi-language bucket: its sentences have no one language.
SKIP = {"xx"}


def sentences(wheel: Path) -> list[tuple[str, str]]:
    """(language, sentence) pairs, in the wheel's order."""
    rows = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            found = re.fullmatch(r"spacy/lang/([a-z]+)/examples\.py", name)
            if not found or found.group(1) in SKIP:
                continue
            tree = ast.parse(archive.read(name).decode("utf-8"))
            for node in tree.body:
                if (
                    isinstance(node, ast.Assign)
                    and getattr(node.targets[0], "id", "") == "sentences"
                ):
                    rows += [(found.group(1), s.strip()) for s in ast.literal_eval(node.value)]
    return rows


if __name__ == "__main__":
    rows = sentences(Path(sys.argv[1]))
    with (HERE / "spacy_examples.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["language", "text"])
        writer.writerows(rows)
    print(f"{len(rows)} sentences in {len({lang for lang, _ in rows})} languages")

"""The repository carries its own design and stands alone: nothing refers outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A file of the project pointing at the design notes or data of the team's workspace.
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared\b|/work/shared\b")


def tracked() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_no_file_refers_to_anything_outside_the_repository():
    offenders = []
    for path in tracked():
        if path.suffix in {".png", ".ckpt", ".gz", ".ftz"} or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [
            f"{path.relative_to(ROOT)}:{n}"
            for n, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line) and path.name != "test_repository.py"
        ]
    assert offenders == []


def test_the_architecture_document_names_modules_that_exist():
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:service|workers|tests|bench|scripts)/[\w/.-]+)`", text))
    named |= {f"service/{name}" for name in re.findall(r"`((?:moderation|api)/\w+\.py)`", text)}
    assert named, "the architecture document names no module"
    missing = sorted(name for name in named if not (ROOT / name.rstrip("/")).exists())
    assert missing == []

"""The README's "Embed it" token examples as printed: Python (PyJWT) and Node (jsonwebtoken)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser_helpers import in_ci
from tests.embed_helpers import SECRET, embed_post, stored

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "tests" / "js"


def readme_block(language: str) -> str:
    """The one ``language`` code block of the README's "Embed it" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Embed it\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, f"expected one {language} block in 'Embed it', found {len(blocks)}"
    return blocks[0]


def test_python_example_makes_a_token_the_api_accepts(client, sso_site):
    namespace = {"EMBED_SECRET": SECRET, "user_id": "user-42", "user_name": "Ada Reader"}
    exec(readme_block("python"), namespace)
    answer = embed_post(client, sso_site.id, token=namespace["token"])
    assert answer.status_code == 202, answer.get_json()
    assert stored(answer.get_json()["id"]).author.ref == "user-42"


def node_or_skip() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (JS / "node_modules" / "jsonwebtoken").is_dir():
        problem = "jsonwebtoken is not installed (npm ci --prefix tests/js)"
    if problem is None:
        return node
    if in_ci():
        pytest.fail(f"the README's Node example cannot run in CI: {problem}")
    pytest.skip(f"the README's Node example skipped: {problem}")
    raise AssertionError("unreachable")


def test_node_example_makes_a_token_the_api_accepts(client, sso_site, tmp_path):
    node = node_or_skip()
    example = tmp_path / "example.js"
    example.write_text(readme_block("js"))
    made = subprocess.run(
        [node, str(JS / "token-example.js"), str(example)],
        env={**os.environ, "EMBED_SECRET": SECRET, "USER_ID": "user-7", "USER_NAME": "Bo Node"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    answer = embed_post(client, sso_site.id, token=made.stdout.strip())
    assert answer.status_code == 202, answer.get_json()
    author = stored(answer.get_json()["id"]).author
    assert (author.ref, author.name) == ("user-7", "Bo Node")


def test_readme_says_what_the_widget_weighs():
    from service.embed_script import script

    readme = (ROOT / "README.md").read_text()
    size, gzipped = re.search(r"(\d+) KB, ([\d.]+) KB gzipped", readme).groups()
    current = script()
    assert int(size) == round(len(current.body) / 1000)
    assert float(gzipped) == round(current.gzip_bytes / 1000, 1)

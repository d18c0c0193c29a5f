"""``civility demo``: a demo site, keys, the seed article and comments written for the demo."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from service import embed_tokens
from service.auth import Role, authenticate_token, create_key
from service.extensions import db
from service.models import Site

SITE_NAME = "Civility demo"
ARTICLE_REF = "putin-xi-call-2024-02-08"
# Registered by title and date only: the article's text is not ours to copy.
ARTICLE = {
    "title": "Putin and Xi Reject U.S. Interference, Pledge Close Coordination in Phone Call",
    "published_at": "2024-02-08T19:24:07+00:00",
    "comments_open": True,
}
# The seed article's byline, as it was published (the demo shows it above the widget).
BYLINE = "By Staff Reporter"
SUSPECT_WORDS = ["idiot", "morons", "propaganda", "shill"]
# Written for this demo: some civil, some not, so every policy outcome shows up.
# Each reader is (name, body) and signs as ``reader-<name>``; a reply names its parent's index.
COMMENTS: list[tuple[str, str]] = [
    (
        "Ana",
        "The readout stresses a 'multipolar' order again. I would like to know which "
        "concrete coordination steps were agreed, beyond the statements.",
    ),
    (
        "Tom",
        "Does anyone have the Chinese side's readout of the call? Comparing the two "
        "usually shows which points each side wanted to stress.",
    ),
    (
        "Lee",
        "This piece relies on a single Kremlin briefing. A report on a call between two "
        "governments deserves a second source.",
    ),
    (
        "Max",
        "Anyone who believes a word of this is a complete idiot. Shut up and go back to "
        "your propaganda channel, morons.",
    ),
    ("Kat", "What a load of fucking bullshit, this stupid reporter can't write."),
    (
        "Sam",
        "Great analysis! Earn $500 a day from home, visit www.quick-cash-now.example for details.",
    ),
    (
        "Jo",
        "Typical Kremlin propaganda dressed up as diplomacy. Anyone repeating these "
        "talking points here is a paid shill.",
    ),
    (
        "Rob",
        "The energy deals are the real story. There is a good breakdown at "
        "https://energy-monitor.example/russia-china-2024 that this article skips.",
    ),
    (
        "Dan",
        "What a stupid article. Whoever wrote this is clueless and should stop "
        "embarrassing themselves.",
    ),
    (
        "Eve",
        "Both governments say what suits them. The question is which claims the "
        "paper checks before printing them.",
    ),
    ("Ana", "Replying to myself: the Kremlin page has the full transcript of the briefing."),
]
# Index in COMMENTS of a reply -> index of the comment it answers.
REPLIES = {10: 0}


def _instance_file(name: str) -> Path:
    return Path(current_app.instance_path) / name


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only: it holds keys."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _write_env(base_url: str, site_id: int, keys: dict[str, str]) -> Path:
    """The shell variables the README's examples use, for ``source instance/demo.env``."""
    values = {
        "API": base_url,
        "SITE_ID": str(site_id),
        "SITE_KEY": keys["site"],
        "MOD_KEY": keys["moderator"],
        "ADMIN_KEY": keys["admin"],
    }
    lines = [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    path = _instance_file("demo.env")
    _write_private(
        path,
        "# The demo's API, site and keys (civility demo wrote this).\n" + "\n".join(lines) + "\n",
    )
    return path


def _demo_site(base_url: str) -> Site:
    site = db.session.scalar(sa.select(Site).where(Site.name == SITE_NAME))
    if site is None:
        # Suspect words and links hold a few comments, so the dashboard has work to show.
        site = Site(
            name=SITE_NAME,
            public_reads=True,
            origins=["http://127.0.0.1:8000", "http://localhost:8000"],
            suspect_words=SUSPECT_WORDS,
            hold_links=True,
        )
        db.session.add(site)
        db.session.flush()
    # The demo page (/demo/) signs its reader in: the widget writes as them (sso).
    origin = urlsplit(base_url)._replace(path="", query="", fragment="").geturl()
    if origin not in site.origins:
        site.origins = [*site.origins, origin]
    if not site.embed_secret:
        embed_tokens.rotate_secret(site, 0)
    site.browser_submissions = "sso"
    return site


def _demo_keys(site: Site) -> dict[str, str]:
    """Reuse the keys saved by an earlier run when they still work; else make new ones."""
    path = _instance_file("demo-keys.json")
    saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    keys = {}
    for role in Role:
        key = saved.get(role.label)
        api_key = authenticate_token(key) if key else None
        if api_key is None or api_key.site_id != site.id or api_key.role != role.label:
            key = create_key(site, role, f"demo-{role.label}")
        keys[role.label] = key
    db.session.commit()
    _write_private(path, json.dumps(keys))
    return keys


def run_demo(base_url: str) -> dict[str, Any]:
    """Create (idempotently) everything the demo needs, through the public API."""
    site = _demo_site(base_url)
    keys = _demo_keys(site)
    client = current_app.test_client()
    auth = {"Authorization": f"Bearer {keys['site']}"}
    answer = client.put(f"/v1/articles/{ARTICLE_REF}", json=ARTICLE, headers=auth)
    if answer.status_code != 200:
        raise RuntimeError(f"demo article: {answer.status_code} {answer.get_json()}")
    ids: list[int] = []
    for n, (name, body) in enumerate(COMMENTS):
        payload: dict[str, Any] = {
            "author": {"id": f"reader-{name.lower()}", "name": name},
            "body": body,
        }
        if n in REPLIES:
            payload["parent_id"] = ids[REPLIES[n]]
        answer = client.post(
            f"/v1/articles/{ARTICLE_REF}/comments",
            json=payload,
            headers={**auth, "Idempotency-Key": f"demo-comment-{n}"},
        )
        if answer.status_code != 202:
            raise RuntimeError(f"demo comment {n}: {answer.status_code} {answer.get_json()}")
        ids.append(answer.get_json()["id"])
    return {
        "site_id": site.id,
        "keys": keys,
        "article": ARTICLE_REF,
        "comment_ids": ids,
        "dashboard": f"{base_url}/dashboard",
        "demo_page": f"{base_url}/demo/",
        "env_file": str(_write_env(base_url, site.id, keys)),
        "curl": curl_lines(base_url, site.id, keys, ids[0]),
    }


def curl_lines(base_url: str, site_id: int, keys: dict[str, str], comment_id: int) -> list[str]:
    """Three commands a newcomer can paste: submit, read approved comments, read one status."""
    body = json.dumps(
        {
            "body": "Thanks for the summary, I had missed this call.",
            "author": {"id": "reader-you", "name": "You"},
        }
    )
    comments = f"{base_url}/v1/articles/{ARTICLE_REF}/comments"
    return [
        f"curl -s -X POST {comments} -H {shlex.quote('Authorization: Bearer ' + keys['site'])}"
        f" -H 'Content-Type: application/json' -d {shlex.quote(body)}",
        f"curl -s {shlex.quote(comments + f'?site={site_id}')}",
        f"curl -s {base_url}/v1/comments/{comment_id}"
        f" -H {shlex.quote('Authorization: Bearer ' + keys['moderator'])}",
    ]

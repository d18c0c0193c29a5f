"""Browser tests' plumbing: a live server in a thread, Debian's Chromium, queued comments, and
the embed's host page and readers (one browser context each)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, Response
from werkzeug.serving import make_server

from service.extensions import db
from service.models import Article, Author, Comment, Report, utcnow
from service.moderation.states import CommentStatus
from tests.review_helpers import make_comments, policy_decides

# Chromium's own background traffic is refused on closed networks: switch it off.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def chromium_or_skip() -> str:
    """Debian's Chromium; a skip saying why when it (or Playwright) is missing, a failure in CI."""
    path = os.environ.get("CIVILITY_TEST_CHROMIUM") or shutil.which("chromium")
    problem = None
    if not path or not os.access(path, os.X_OK):
        problem = "Chromium is not installed (Debian: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem is None:
        return path
    if in_ci():
        pytest.fail(f"browser tests cannot run in CI: {problem}")
    pytest.skip(f"browser tests skipped: {problem}")
    raise AssertionError("unreachable")


class LiveServer:
    """The test app served over real HTTP on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def release() -> None:
    """End the test thread's transaction: on SQLite it holds the write lock the server needs."""
    db.session.rollback()


def held_comment(
    site_id: int,
    body: str,
    *,
    article: str = "budget-vote",
    author: str = "reader-1",
    scores: dict[str, float] | None = None,
    reasons: list[dict[str, Any]] | None = None,
    status: CommentStatus | str = CommentStatus.HELD,
) -> int:
    """One comment decided by the policy as the worker would (default: held for toxicity)."""
    [comment_id] = make_comments(site_id, article=article, author=author, body=body)
    policy_decides(
        [comment_id],
        status,
        scores=scores or {"toxicity": 0.72, "insult": 0.41},
        reasons=reasons
        if reasons is not None
        else [{"code": "toxicity", "label": "toxicity", "score": 0.72, "threshold": 0.6}],
    )
    release()
    return comment_id


def name_things(
    site_id: int, articles: dict[str, tuple[str, str]], authors: dict[str, str]
) -> None:
    """Give articles a title and url, and authors a display name."""
    for article in db.session.scalars(db.select(Article).where(Article.site_id == site_id)):
        if article.ref in articles:
            article.title, article.url = articles[article.ref]
    for author in db.session.scalars(db.select(Author).where(Author.site_id == site_id)):
        author.name = authors.get(author.ref, author.name)
    db.session.commit()


def add_history(site_id: int, author: str, approved: int, rejected: int) -> None:
    """Past decisions on an author, as the counters the cards show."""
    row = db.session.scalar(
        db.select(Author).where(Author.site_id == site_id, Author.ref == author)
    )
    row.approved_count, row.rejected_count = approved, rejected
    db.session.commit()


def report(comment_id: int, reason: str, reporter: str, note: str, minutes_ago: int) -> None:
    """An open reader report on a comment, made some minutes ago."""
    comment = db.session.get(Comment, comment_id)
    db.session.add(
        Report(
            site_id=comment.site_id,
            comment_id=comment.id,
            reason=reason,
            reporter_ref=reporter,
            note=note,
            created_at=utcnow() - timedelta(minutes=minutes_ago),
        )
    )
    db.session.commit()


def set_model(site_id: int, model: str) -> None:
    """Name the scorer the site's comments were scored with."""
    db.session.execute(
        sa.update(Comment)
        .where(Comment.site_id == site_id, Comment.scores.is_not(None))
        .values(model=model)
    )
    db.session.commit()


AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 A and AA, and axe's best practices (one h1, distinct landmark names, heading order).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
# Rules axe marks experimental (in no tag above) that the dashboard is held to as well:
# a control's accessible name contains its visible text (WCAG 2.5.3, label in name).
AXE_EXPERIMENTAL = ["label-content-name-mismatch"]


def axe_or_skip() -> str:
    """axe-core's source, installed from npm by scripts/setup test; skip (fail in CI) without."""
    if AXE.exists():
        return AXE.read_text()
    problem = "axe-core is not installed (npm ci --prefix tests/js)"
    if in_ci():
        pytest.fail(f"accessibility tests cannot run in CI: {problem}")
    pytest.skip(f"accessibility tests skipped: {problem}")
    raise AssertionError("unreachable")


def axe_violations(page: Any, include: str | None = None) -> list[str]:
    """axe-core's violations on the page (or inside ``include``), one line each.

    Injected through the DevTools protocol, so the page's own CSP does not stop it.
    """
    page.evaluate(axe_or_skip())
    result = page.evaluate(
        """([include, tags, extra]) => axe.run(include ? {include: [include]} : document,
            {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
             rules: Object.fromEntries(extra.map((id) => [id, {enabled: true}]))})""",
        [include, AXE_TAGS, AXE_EXPERIMENTAL],
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in result["violations"]
    ]


POLL_MS = 300


class HostPage:
    """The embedding site: another origin on this machine, serving the article page it is given."""

    def __init__(self) -> None:
        self.html = b""
        app = Flask("news-example")
        app.add_url_rule("/<path:path>", "page", lambda path: Response(self.html, 200))
        self.server = LiveServer(app)
        self.url = self.server.url


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


class Reader:
    """One reader's browser (its own localStorage) on the site's article page."""

    def __init__(self, browser, live, host, width: int = 1024) -> None:
        self.host = host
        self.context = browser.new_context(viewport={"width": width, "height": 800})
        self.context.set_default_timeout(6000)
        self.page = self.context.new_page()
        self.live = live
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("dialog", lambda dialog: self.problems.append(f"dialog: {dialog.message}"))
        self.page.on(
            "console",
            lambda message: message.type == "error" and self.problems.append(message.text),
        )
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def open(self, site_id: int, article: str = "budget-vote", **attributes: str) -> None:
        """Load the article page: the site's own HTML with the snippet, as a site pastes it."""
        attrs = {
            "data-civility-site": str(site_id),
            "data-civility-article": article,
            "data-civility-poll-ms": str(POLL_MS),
            **attributes,
        }
        html = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Budget vote</title></head><body><main><h1>Budget vote</h1>"
            "<p>The council voted on the budget.</p><h2>Comments</h2>"
            f"<div {' '.join(f'{k}={json.dumps(v)}' for k, v in attrs.items())}></div>"
            f"</main><script src='{self.live.url}/embed.js' async></script></body></html>"
        )
        self.host.html = html.encode()
        release()
        self.page.goto(f"{self.host.url}/budget-vote")
        try:
            self.ready()
        except Exception:
            raise AssertionError(f"{self.problems}\n{self.page.content()}") from None

    def ready(self) -> None:
        self.page.wait_for_selector(".civility-thread[aria-busy=false]", state="attached")

    def comment(self, comment_id: int):
        return self.page.locator(f'.civility-comment[data-id="{comment_id}"]')

    def post(self, text: str, name: str | None = None) -> None:
        """Leave a comment and wait until it shows, awaiting moderation, in this browser."""
        mine = self.page.locator(".civility-own-pending")
        before = mine.count()
        self.page.get_by_label("Leave a comment", exact=True).fill(text)
        if name is not None:
            self.page.get_by_label("Your name").fill(name)
        self.page.get_by_role("button", name="Post comment").click()
        expect(mine).to_have_count(before + 1)

    def close(self) -> None:
        self.context.close()
        assert not self.problems
        foreign = [
            url for url in self.requests if not url.startswith((self.host.url, self.live.url))
        ]
        assert not foreign, f"requests to third parties: {foreign}"


def approved(site_id: int, body: str, author: str = "reader-1", parent: int | None = None) -> int:
    [comment_id] = make_comments(site_id, article="budget-vote", author=author, body=body)
    if parent is not None:
        db.session.get(Comment, comment_id).parent_id = parent
        db.session.commit()
    policy_decides([comment_id], CommentStatus.APPROVED)
    release()
    return comment_id


def reader_artifact(name: str):
    from pathlib import Path

    out = Path(__file__).resolve().parents[1] / "test-artifacts"
    out.mkdir(exist_ok=True)
    return out / name

"""The comment widget in real headless Chromium, on a page of another origin (SQLite only)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Author, Comment, Report, Site
from service.moderation.states import CommentStatus
from tests.browser_helpers import (
    LiveServer,
    approved,
    expect,
    reader_artifact,
    release,
)
from tests.embed_helpers import reader_token
from tests.review_helpers import make_comments, policy_decides, set_created
from tests.worker_helpers import WORKER_SETTINGS, WorkerProcess, decided, wait_for
from tests.worker_helpers import comments as worker_comments

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def embed_origin(host):
    """The embedding page is the live host page, not a paper origin."""
    return host.url


def decide(client, site, comment_id: int, decision: str) -> None:
    answer = client.post(
        f"/v1/comments/{comment_id}/decision",
        json={"decision": decision},
        headers=site.auth("moderator"),
    )
    release()
    assert answer.status_code == 200, answer.get_json()


def newest_id() -> int:
    try:
        return db.session.scalar(sa.select(sa.func.max(Comment.id)))
    finally:
        release()


def test_reader_reads_a_threaded_thread_of_approved_comments_only(readers, sso_site):
    first = approved(sso_site.id, "The vote was closer than expected.", author="ana")
    reply = approved(sso_site.id, "It was. Two abstentions.", author="tom", parent=first)
    second = approved(sso_site.id, "See https://council.example/minutes for the record.")
    [held] = make_comments(sso_site.id, article="budget-vote", body="You are all idiots")
    policy_decides([held], CommentStatus.HELD)
    reader = readers()
    reader.open(sso_site.id)
    page = reader.page
    expect(page.locator(".civility-count")).to_have_text("3 comments")
    expect(reader.comment(held)).to_have_count(0)
    expect(
        reader.comment(first).locator(".civility-replies").locator(".civility-comment")
    ).to_have_attribute("data-id", str(reply))
    link = reader.comment(second).get_by_role("link")
    expect(link).to_have_attribute("href", "https://council.example/minutes")
    expect(link).to_have_attribute("rel", "nofollow ugc noopener")
    expect(reader.comment(first).locator("time").first).to_have_text("now")
    expect(page.get_by_text("Sign in on this site to leave a comment.")).to_be_visible()
    expect(reader.comment(first).get_by_role("button", name="Reply to ana")).to_be_hidden()


def test_load_more_pages_by_cursor_and_newest_first_reorders(readers, sso_site):
    from datetime import timedelta

    from service.models import utcnow

    ids = [approved(sso_site.id, f"Comment number {n}", author=f"r{n}") for n in range(5)]
    for n, comment_id in enumerate(ids):
        set_created(comment_id, utcnow() - timedelta(hours=5 - n))
    reader = readers()
    reader.open(sso_site.id, **{"data-civility-page-size": "2"})
    page = reader.page
    items = page.locator(".civility-thread > .civility-comment")
    expect(items).to_have_count(2)
    expect(reader.comment(ids[0]).locator("time")).to_have_text("5 hours ago")
    page.get_by_role("button", name="Load more comments").click()
    expect(items).to_have_count(4)
    page.get_by_role("button", name="Load more comments").click()
    expect(items).to_have_count(5)
    expect(page.get_by_role("button", name="Load more comments")).to_be_hidden()
    page.get_by_label("Sort").select_option("newest")
    expect(items.first).to_have_attribute("data-id", str(ids[-1]))


def test_signed_in_reader_sees_own_comment_pending_then_published_then_replies(
    readers, sso_site, client
):
    reader = readers()
    reader.open(sso_site.id, **{"data-civility-token": reader_token(name="Ada Reader")})
    page = reader.page
    reader.post("I was at the meeting: the vote was at 9 pm.")
    mine = page.locator(".civility-own-pending")
    expect(mine).to_contain_text("Awaiting moderation")
    expect(page.locator(".civility [role=status]")).to_have_text(
        "Your comment is awaiting moderation."
    )
    comment_id = newest_id()
    expect(reader.comment(comment_id)).to_contain_text("Ada Reader")
    decide(client, sso_site, comment_id, "approve")
    expect(reader.comment(comment_id).locator(".civility-badge")).to_have_count(0)
    expect(page.locator(".civility [role=status]")).to_have_text("Your comment was published.")
    expect(page.locator(".civility-count")).to_have_text("1 comment")

    reader.comment(comment_id).get_by_role("button", name="Reply to Ada Reader").click()
    page.get_by_label("Your reply").fill("Correction: 9.30 pm.")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Post reply").click()
    replies = reader.comment(comment_id).locator(".civility-replies .civility-comment")
    expect(replies).to_have_count(1)
    expect(replies).to_contain_text("Awaiting moderation")
    reply_id = newest_id()
    assert db.session.get(Comment, reply_id).parent_id == comment_id
    release()

    # Reloaded: still pending in the author's own browser (its reader token), then rejected.
    page.reload()
    reader.ready()
    expect(reader.comment(reply_id)).to_contain_text("Awaiting moderation")
    decide(client, sso_site, reply_id, "reject")
    expect(reader.comment(reply_id)).to_contain_text("This comment was not published.")
    expect(page.locator(".civility [role=status]")).to_have_text("Your comment was not published.")


def test_held_comment_never_appears_to_other_readers(readers, sso_site, client):
    author = readers()
    author.open(sso_site.id, **{"data-civility-token": reader_token()})
    author.post("The mayor is a liar and everyone knows it.")
    comment_id = newest_id()
    decide(client, sso_site, comment_id, "hold")
    other = readers()
    other.open(sso_site.id, **{"data-civility-token": reader_token(sub="user-9", name="Bo")})
    expect(other.comment(comment_id)).to_have_count(0)
    expect(other.page.locator(".civility-count")).to_have_text("0 comments")
    author.page.reload()
    author.ready()
    expect(author.comment(comment_id)).to_contain_text("Awaiting moderation")


def test_reader_reports_a_comment_with_a_reason(readers, sso_site):
    comment_id = approved(sso_site.id, "Buy cheap watches at watches.example", author="spammer")
    reader = readers()
    reader.open(sso_site.id, **{"data-civility-token": reader_token()})
    page = reader.page
    report = reader.comment(comment_id).get_by_role("button", name="Report comment by spammer")
    report.click()
    form = page.get_by_role("form", name="Report comment by spammer")
    expect(form.get_by_role("radio")).to_have_count(4)
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    expect(report).to_be_focused()
    report.press("Enter")
    form.get_by_label("Spam or advertising").check()
    form.get_by_label("Anything to add? (optional)").fill("Advert")
    form.get_by_role("button", name="Send report").click()
    expect(
        reader.comment(comment_id).get_by_role("button", name="Report comment by spammer")
    ).to_have_text("Reported")
    expect(page.locator(".civility [role=status]")).to_contain_text("your report was sent")
    [row] = db.session.scalars(sa.select(Report)).all()
    assert (row.comment_id, row.reason, row.reporter_ref, row.note) == (
        comment_id,
        "spam",
        "user-42",
        "Advert",
    )
    release()


def test_anonymous_reader_comments_with_a_name(readers, make_site, host):
    site = make_site(
        "Open Forum", origins=[host.url], public_reads=True, browser_submissions="anonymous"
    )
    reader = readers()
    reader.open(site.id)
    page = reader.page
    page.get_by_label("Leave a comment", exact=True).fill("First!")
    page.get_by_role("button", name="Post comment").click()
    expect(page.get_by_role("alert")).to_have_text("Give a name to show.")
    expect(page.get_by_label("Your name")).to_be_focused()
    reader.post("Glad the library stays open.", name="Kim")
    expect(page.locator(".civility-own-pending")).to_contain_text("Kim")
    comment_id = newest_id()
    author = db.session.get(Comment, comment_id).author
    assert author.name == "Kim" and author.ref.startswith("anon:")
    release()
    # The name is remembered for the next comment, in this browser.
    page.reload()
    reader.ready()
    expect(page.get_by_label("Your name")).to_have_value("Kim")


def test_real_worker_publishes_a_civil_comment_and_holds_a_suspect_one(
    readers, sso_site, config, tmp_path
):
    site = db.session.get(Site, sso_site.id)
    site.suspect_words = ["parking"]
    db.session.commit()
    release()
    keys = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "INSTANCE_PATH", "SECRET_KEY")
    settings = {**WORKER_SETTINGS, **{key: config[key] for key in keys}}
    worker = WorkerProcess([], settings, tmp_path / "worker.log")
    try:
        author = readers()
        author.open(sso_site.id, **{"data-civility-token": reader_token()})
        author.post("Thank you for covering the council so closely.")
        civil = newest_id()
        author.post("What about the parking plans?")
        suspect = newest_id()
        # The worker's start (its scorer loading) takes seconds on a busy machine.
        wait_for(lambda: decided([civil, suspect]), "scoring", worker, timeout=90)
        expect(author.page.locator(".civility [role=status]")).to_have_text(
            "Your comment was published."
        )
        expect(author.comment(civil).locator(".civility-badge")).to_have_count(0)
        expect(author.comment(suspect)).to_contain_text("Awaiting moderation")
        rows = worker_comments([civil, suspect])
        assert (rows[civil].status, rows[suspect].status) == ("approved", "held")
        other = readers()
        other.open(sso_site.id)
        expect(other.comment(civil)).to_have_count(1)
        expect(other.comment(suspect)).to_have_count(0)
    finally:
        worker.stop()
    names = db.session.scalars(sa.select(Author.name)).all()
    assert names == ["Ada Reader"]
    release()


@pytest.fixture
def demo_app(config):
    """The app as scripts/run serves it: the demo page on."""
    from service import create_app

    config["DEMO_PAGE"] = True
    app = create_app(config)
    with app.app_context():
        yield app
        db.session.remove()
        from tests.conftest import clear_tables

        clear_tables()
        db.engine.dispose()
    app.extensions["civility.redis"].close()


def test_demo_article_signs_its_reader_in_and_shows_the_thread(browser, demo_app, tmp_path):
    from datetime import timedelta

    from service import demo
    from service.models import utcnow

    with LiveServer(demo_app) as server:
        made = demo.run_demo(server.url)
        release()
        assert made["demo_page"] == f"{server.url}/demo/"
        # As the worker leaves the demo's civil comments (and Ana's reply): published.
        ids = made["comment_ids"]
        civil = [ids[0], ids[1], ids[2], ids[9], ids[10]]
        policy_decides(civil, CommentStatus.APPROVED)
        for n, comment_id in enumerate(civil):
            set_created(comment_id, utcnow() - timedelta(minutes=50 - 9 * n))
        release()
        context = browser.new_context(viewport={"width": 900, "height": 1100})
        context.set_default_timeout(6000)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{server.url}/demo/")
        expect(page.get_by_role("heading", level=1)).to_have_text(demo.ARTICLE["title"])
        expect(page.locator(".byline")).to_have_text(demo.BYLINE)
        expect(page.locator("time").first).to_have_text("8 February 2024")
        expect(page.get_by_role("heading", name="Comments")).to_be_visible()
        expect(page.locator(".civility-count")).to_have_text("5 comments")
        replies = page.locator(f'.civility-comment[data-id="{ids[0]}"] .civility-replies > li')
        expect(replies).to_have_attribute("data-id", str(ids[10]))
        page.get_by_label("Leave a comment", exact=True).fill("Which coordination steps, then?")
        page.get_by_role("button", name="Post comment").click()
        expect(page.locator(".civility-own-pending")).to_contain_text("Demo reader")
        author = db.session.scalar(sa.select(Author).where(Author.ref == "demo-reader"))
        assert author.name == "Demo reader"
        release()
        page.wait_for_timeout(300)
        artifact = reader_artifact("embed.png")
        page.screenshot(path=str(artifact), full_page=True)
        import os
        import shutil
        from pathlib import Path

        docs = Path(__file__).resolve().parents[1] / "docs" / "embed.png"
        if os.environ.get("UPDATE_SCREENSHOT") == "1" or not docs.exists():
            shutil.copyfile(artifact, docs)
        context.close()
    assert not problems

"""The dashboard in real headless Chromium against a live server (SQLite only, to stay fast)."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from service.extensions import db
from service.models import Site, utcnow
from tests.browser_helpers import (
    add_history,
    held_comment,
    name_things,
    release,
    report,
    set_model,
)
from tests.review_helpers import (
    make_comments,
    moderator_moves,
    policy_decides,
    set_created,
    statuses,
)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def page(browser, live):
    """A fresh browser context; fails the test on any script error or CSP violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live.url)
    context.set_default_timeout(6000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")  # the 4xx we provoke
            and problems.append(f"console: {message.text}")
        ),
    )
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    yield page
    context.close()
    assert not problems


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def fill_key(page, key: str) -> None:
    release()
    page.goto("/dashboard")
    page.wait_for_selector("#sign-in button:enabled")
    page.fill("#key", key)


def sign_in(page, key: str, path: str = "/dashboard") -> None:
    fill_key(page, key)
    page.press("#key", "Enter")
    page.wait_for_selector("#queue-list[aria-busy=false]")
    if path != "/dashboard":
        page.goto(path)
        page.wait_for_selector("#queue-list[aria-busy=false]")


def card(page, comment_id: int):
    return page.locator(f'article.card[data-id="{comment_id}"]')


def test_moderator_works_held_comments_by_keyboard(page, site, client):
    comment_id = held_comment(site.id, "You clearly did not read the article, genius.")
    spam_id = held_comment(site.id, "Cheap watches at watches.example", author="reader-2")
    sign_in(page, site.moderator)
    expect(card(page, comment_id)).to_have_attribute("aria-current", "true")
    expect(page.locator('[data-tab="held"] .count')).to_have_text("2")
    page.keyboard.press("a")
    expect(card(page, comment_id)).to_have_count(0)
    expect(page.locator("#toasts")).to_contain_text(f"#{comment_id} approved")
    expect(card(page, spam_id)).to_have_attribute("aria-current", "true")
    page.keyboard.press("r")
    page.keyboard.press("3")  # the third reason: spam
    expect(card(page, spam_id)).to_have_count(0)
    expect(page.locator('[data-tab="held"] .count')).to_have_text("0")
    public = client.get("/v1/articles/budget-vote/comments", headers=site.auth()).get_json()
    status = client.get(f"/v1/comments/{comment_id}", headers=site.auth()).get_json()["status"]
    trail = client.get(f"/v1/comments/{spam_id}/history", headers=site.auth("moderator"))
    release()
    assert [c["id"] for c in public["items"]] == [comment_id]
    assert status == "approved"
    last = trail.get_json()["items"][-1]
    assert (last["to_status"], last["reason_code"]) == ("rejected", "spam")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "civility_session"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"


def test_bulk_reject_by_filter_shows_the_dry_run_count_and_undo_restores(page, site, client):
    spam = [
        held_comment(site.id, f"Cheap watches, offer {n}", author=f"spammer-{n}") for n in range(4)
    ]
    other = held_comment(site.id, "Off topic, but harmless.", article="school-board")
    sign_in(page, site.moderator)
    expect(page.locator("article.card")).to_have_count(5)
    page.fill("#f-article", "budget-vote")
    expect(page.locator("article.card")).to_have_count(4)
    page.click("#select-all-matching")
    page.click('[data-bulk="reject"]')
    page.click('button.reason[data-code="spam"]')
    dry = client.post(
        "/v1/decisions/bulk",
        json={
            "filter": {"status": "held", "article": "budget-vote"},
            "decision": "reject",
            "dry_run": True,
        },
        headers=site.auth("moderator"),
    ).get_json()
    release()
    assert (dry["matched"], dry["changed"]) == (4, 4)
    confirm = page.locator("dialog[open]")
    expect(confirm.locator("h2")).to_have_text(f"Reject {dry['changed']} comments?")
    expect(confirm).to_contain_text(
        f"{dry['matched']} comments match this filter; {dry['changed']} will be rejected."
    )
    page.keyboard.press("Enter")
    expect(page.locator("#toasts")).to_contain_text("4 comments rejected.")
    expect(page.locator("article.card")).to_have_count(0)
    assert statuses([*spam, other]) == {**dict.fromkeys(spam, "rejected"), other: "held"}
    release()
    page.keyboard.press("u")
    expect(page.locator("#toasts")).to_contain_text("4 restored")
    expect(page.locator("article.card")).to_have_count(4)
    assert statuses(spam) == dict.fromkeys(spam, "held")
    release()


HOSTILE = (
    "<script>window.__pwned = 'script'</script>"
    "<img src=x onerror=\"window.__pwned = 'img'\"> & <b>not bold</b>"
)


def test_hostile_comment_is_shown_as_text_and_runs_nothing(page, site):
    comment_id = held_comment(site.id, HOSTILE, author="reader-x")
    name_things(
        site.id,
        {"budget-vote": ("<img src=y onerror=alert(1)>Budget", "javascript:alert(2)")},
        {"reader-x": "<svg onload=alert(3)>"},
    )
    release()
    sign_in(page, site.moderator)
    body = card(page, comment_id).locator(".comment-body")
    expect(body).to_have_text(HOSTILE)
    assert body.locator("*").count() == 0
    assert card(page, comment_id).locator(".author-name").inner_text() == "<svg onload=alert(3)>"
    assert card(page, comment_id).locator(".article a").count() == 0  # javascript: is no link
    assert page.locator("img, svg, b, script:not([src]):not([type])").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None


def test_site_key_is_refused(page, site):
    fill_key(page, site.site)
    with page.expect_response("**/dashboard/sign-in") as answer:
        page.press("#key", "Enter")
    assert answer.value.status == 403
    expect(page.locator("#sign-in-error")).to_have_text(
        "Site keys cannot sign in: use a moderator or admin key."
    )
    assert "civility_session" not in {c["name"] for c in page.context.cookies()}
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()


def test_post_without_the_csrf_token_is_refused(page, site):
    comment_id = held_comment(site.id, "A comment to decide.")
    sign_in(page, site.moderator)
    result = page.evaluate(
        """async (id) => {
            const config = document.getElementById("civility-config").textContent;
            const token = JSON.parse(config).csrf_token;
            const post = (headers) => fetch(`/v1/comments/${id}/decision`, {
                method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json", ...headers},
                body: JSON.stringify({decision: "reject"}),
            }).then((r) => r.status);
            const without = await post({});
            const forged = await post({"X-CSRF-Token": "forged"});
            const signOut = (await fetch("/dashboard/sign-out", {method: "POST"})).status;
            return {without, forged, signOut, withToken: await post({"X-CSRF-Token": token})};
        }""",
        comment_id,
    )
    assert result == {"without": 403, "forged": 403, "signOut": 403, "withToken": 200}


def test_conflict_with_another_moderator_is_shown(page, site, client):
    comment_id = held_comment(site.id, "Two moderators look at this one.")
    sign_in(page, site.moderator, "/dashboard?poll=60000")
    expect(card(page, comment_id)).to_be_visible()
    answer = client.post(
        f"/v1/comments/{comment_id}/decision",
        json={"decision": "reject", "reason_code": "abusive"},
        headers=site.auth("admin"),
    )
    release()
    assert answer.status_code == 200
    page.keyboard.press("a")
    notice = card(page, comment_id).locator(".notice.conflict")
    expect(notice).to_contain_text(f"#{comment_id} is rejected now")
    expect(page.locator("#alerts")).to_contain_text("another moderator acted first")
    assert statuses([comment_id]) == {comment_id: "rejected"}
    release()


def test_queue_updates_itself_and_keeps_the_moderators_place(page, site, client):
    first = held_comment(site.id, "First in the queue.")
    second = held_comment(site.id, "Second in the queue.")
    sign_in(page, site.moderator, "/dashboard?poll=1000")
    expect(page.locator("article.card")).to_have_count(2)
    page.keyboard.press("j")
    page.keyboard.press("x")
    arrived = held_comment(site.id, "Arrives while the moderator works.")
    expect(card(page, arrived)).to_be_visible()
    answer = client.post(
        f"/v1/comments/{first}/decision", json={"decision": "approve"}, headers=site.auth("admin")
    )
    release()
    assert answer.status_code == 200
    expect(card(page, first)).to_have_count(0)
    expect(card(page, second)).to_have_attribute("aria-current", "true")
    expect(card(page, second).locator("input[type=checkbox]")).to_be_checked()
    expect(page.locator('[data-tab="held"] .count')).to_have_text("2")


ARTICLE = "putin-xi-call-2024-02-08"
LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
DEMO_HELD = [
    {
        "author": "reader-jo",
        "body": "Typical Kremlin propaganda dressed up as diplomacy. Anyone repeating these "
        "talking points here is a paid shill.",
        "scores": (0.48, 0.01, 0.02, 0.004, 0.36, 0.05),
        "reasons": [
            {"code": "suspect_word", "word": "propaganda"},
            {"code": "suspect_word", "word": "shill"},
        ],
        "minutes_ago": 42,
    },
    {
        "author": "reader-dan",
        "body": "What a stupid article. Whoever wrote this is clueless and should stop "
        "embarrassing themselves.",
        "scores": (0.91, 0.03, 0.09, 0.005, 0.78, 0.01),
        "reasons": [
            {"code": "toxicity", "label": "toxicity", "score": 0.91, "threshold": 0.6},
            {"code": "insult", "label": "insult", "score": 0.78, "threshold": 0.6},
        ],
        "minutes_ago": 17,
    },
    {
        "author": "reader-sam",
        "body": "Great analysis! Earn $500 a day from home, visit www.quick-cash-now.example "
        "for details.",
        "scores": (0.02, 0.0, 0.004, 0.0, 0.01, 0.002),
        "reasons": [{"code": "link"}],
        "minutes_ago": 6,
    },
]


def _demo_queue(site_id: int) -> None:
    """The demo's held comments as a Detoxify worker leaves them, with a report and history."""
    ids = []
    for comment in DEMO_HELD:
        comment_id = held_comment(
            site_id,
            comment["body"],
            article=ARTICLE,
            author=comment["author"],
            scores=dict(zip(LABELS, comment["scores"], strict=True)),
            reasons=comment["reasons"],
        )
        set_created(comment_id, utcnow() - timedelta(minutes=comment["minutes_ago"]))
        ids.append(comment_id)
    report(ids[1], "abusive", "reader-4417", "Personal attack on the reporter.", minutes_ago=9)
    set_model(site_id, "detoxify-original@0.5.4")
    make_comments(site_id, article=ARTICLE, author="reader-eve", body="Pending for the scorer.")
    title = "Putin and Xi Reject U.S. Interference, Pledge Close Coordination in Phone Call"
    name_things(
        site_id,
        {ARTICLE: (title, "https://news.example/world/2024/02/08/putin-xi-call")},
        {"reader-jo": "Jo", "reader-dan": "Dan", "reader-sam": "Sam", "reader-eve": "Eve"},
    )
    add_history(site_id, "reader-dan", 4, 2)
    add_history(site_id, "reader-jo", 11, 0)
    release()


def test_queue_screenshot(page, make_site):
    site = make_site("Civility demo")
    _demo_queue(site.id)
    page.set_viewport_size({"width": 1280, "height": 860})
    sign_in(page, site.moderator)
    expect(page.locator("article.card")).to_have_count(3)
    expect(page.locator('[data-tab="pending"] .count')).to_have_text("1")
    page.wait_for_timeout(300)
    artifact = ROOT / "test-artifacts" / "dashboard.png"
    artifact.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(artifact), full_page=True)
    docs = ROOT / "docs" / "dashboard.png"
    if os.environ.get("UPDATE_SCREENSHOT") == "1" or not docs.exists():
        docs.parent.mkdir(exist_ok=True)
        shutil.copyfile(artifact, docs)


# Settings → Calibration (service/static/dashboard/calibration.js) ----------------------

# The hand-computed fixture of tests/test_calibration.py: (toxicity, moderator rejects?).
CALIBRATION_TEN = [(0.9, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.5, 0), (0.4, 1), (0.3, 0), (0.2, 0)]
CALIBRATION_TEN += [(0.1, 0), (0.05, 0)]


def decided_comments(site_id: int) -> list[int]:
    row = db.session.get(Site, site_id)
    row.hold_at, row.reject_at = {"toxicity": 0.5}, {"toxicity": 0.9}
    db.session.commit()
    ids = make_comments(site_id, len(CALIBRATION_TEN))
    for comment_id, (score, rejected) in zip(ids, CALIBRATION_TEN, strict=True):
        policy_decides([comment_id], "held", scores={"toxicity": score})
        moderator_moves([comment_id], "rejected" if rejected else "approved")
    return ids


def open_settings(page, key: str) -> None:
    sign_in(page, key)
    page.click("a[data-view=settings]")
    page.wait_for_selector("#hold-toxicity")


def test_admin_sees_suggestions_previews_them_and_saves(page, app, site, client):
    app.config["CALIBRATION_MIN_DECISIONS"] = 5
    ids = decided_comments(site.id)
    open_settings(page, site.admin)
    panel = page.get_by_role("region", name="Calibration")
    row = panel.get_by_role("row", name="toxicity")
    expect(row).to_contain_text("0.50 / 0.90")  # now
    expect(row).to_contain_text("0.40 / 0.80")  # suggested
    expect(row).to_contain_text("0.80 (")  # suggested F1 with its interval
    page.get_by_role("button", name="Use the suggested toxicity thresholds").click()
    expect(page.locator("#hold-toxicity")).to_have_value("0.4")
    expect(page.locator("#reject-toxicity")).to_have_value("0.8")
    summary = page.locator("#simulation .simulation-summary")
    expect(summary).to_contain_text(
        "held 1 more comment (1 of which moderators rejected, 0 approved); "
        "rejected 1 more comment (1 of which moderators rejected, 0 approved)"
    )
    expect(page.locator("#simulation .moves")).to_contain_text(
        f"approved → held: 1 (for example #{ids[5]})"
    )
    release()
    unsaved = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert unsaved["hold_at"]["toxicity"] == 0.5  # previewing saved nothing
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#toasts")).to_contain_text("Settings saved")
    expect(page.locator("#simulation")).to_contain_text("No unsaved change to preview.")
    release()
    saved = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert (saved["hold_at"]["toxicity"], saved["reject_at"]["toxicity"]) == (0.4, 0.8)


def test_an_invalid_edit_is_named_in_the_preview(page, app, site):
    app.config["CALIBRATION_MIN_DECISIONS"] = 5
    decided_comments(site.id)
    open_settings(page, site.admin)
    page.fill("#hold-toxicity", "0.95")  # above reject_at 0.9
    page.get_by_role("button", name="Preview this edit").click()
    expect(page.locator("#simulation .form-error")).to_contain_text("hold_at")

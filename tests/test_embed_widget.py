"""The widget's fit, safety and accessibility in real headless Chromium: a 320-pixel
screen, hostile text shown as text and run never, axe-core (SQLite only)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import Article, Comment
from tests.browser_helpers import (
    approved,
    axe_violations,
    expect,
    reader_artifact,
)
from tests.embed_helpers import reader_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def embed_origin(host):
    """The embedding page is the live host page, not a paper origin."""
    return host.url


def test_widget_fits_a_320_pixel_screen(readers, sso_site):
    parent = approved(sso_site.id, "A" * 30 + " https://example.org/" + "x" * 120, author="ana")
    child = approved(sso_site.id, "Reply", author="tom", parent=parent)
    approved(sso_site.id, "Reply to reply", author="lee", parent=child)
    reader = readers(width=320)
    reader.open(sso_site.id, **{"data-civility-token": reader_token()})
    page = reader.page
    expect(page.locator(".civility-comment")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    controls = page.locator(".civility textarea, .civility button:visible, .civility select")
    assert controls.count() >= 5
    for n in range(controls.count()):
        box = controls.nth(n).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, (n, box)
    reader.page.screenshot(path=str(reader_artifact("embed-320.png")))


XSS_BODY = (
    '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> javascript:alert(1)'
)


XSS_NAME = '<svg onload="window.__xss=3">'


def test_hostile_body_name_and_title_are_shown_as_text_and_run_nothing(readers, sso_site, client):
    comment_id = approved(sso_site.id, XSS_BODY)
    author = db.session.get(Comment, comment_id).author
    author.name = XSS_NAME
    article = db.session.scalar(sa.select(Article).where(Article.ref == "budget-vote"))
    article.title = "</title><script>window.__xss=4</script>"
    db.session.commit()
    reader = readers()
    reader.open(
        sso_site.id,
        **{"data-civility-token": reader_token(name='"><img src=x onerror=window.__xss=5>')},
    )
    page = reader.page
    entry = reader.comment(comment_id)
    expect(entry.locator(".civility-body")).to_have_text(XSS_BODY)
    expect(entry.locator(".civility-author")).to_have_text(XSS_NAME)
    expect(entry.locator("img, script, svg")).to_have_count(0)
    expect(entry.get_by_role("link")).to_have_count(0)
    reader.post(XSS_BODY)
    expect(page.locator(".civility-own-pending .civility-body")).to_have_text(XSS_BODY)
    assert page.evaluate("window.__xss") is None
    region = page.get_by_role("region", name="Comments on </title><script>")
    expect(region).to_have_count(1)
    assert page.locator(".civility img, .civility script, .civility svg").count() == 0


def test_widget_passes_axe_core(readers, sso_site):
    parent = approved(sso_site.id, "A calm first comment.", author="ana")
    approved(sso_site.id, "A calm reply.", author="tom", parent=parent)
    reader = readers()
    reader.open(sso_site.id, **{"data-civility-token": reader_token()})
    page = reader.page
    assert axe_violations(page, ".civility") == []
    reader.comment(parent).get_by_role("button", name="Report comment by ana").click()
    reader.comment(parent).get_by_role("button", name="Reply to ana").click()
    reader.post("Pending in my browser.")
    expect(page.locator(".civility-own-pending")).to_have_count(1)
    assert axe_violations(page, ".civility") == []
    page.emulate_media(color_scheme="dark")
    assert axe_violations(page, ".civility") == []

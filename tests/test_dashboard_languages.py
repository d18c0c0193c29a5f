"""The dashboard shows each comment's language, held unscored or not, and filters by it
(headless Chromium against a live server, SQLite only)."""

from __future__ import annotations

import pytest

from service.extensions import db
from service.models import Comment
from tests.browser_helpers import held_comment, release
from tests.test_dashboard_browser import card, expect, page, sign_in  # noqa: F401 (fixture)

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def read_as(comment_id: int, language: str, confidence: float, *, unscored: bool = False) -> None:
    """Record the language the worker read a comment as (and, unscored, that no model did)."""
    comment = db.session.get(Comment, comment_id)
    comment.language, comment.language_confidence = language, confidence
    if unscored:
        comment.scores, comment.model, comment.scored_at = None, None, None
    db.session.commit()
    release()


def test_moderator_sees_the_language_of_every_card_and_filters_by_it(page, site):  # noqa: F811
    german = held_comment(
        site.id,
        "Vielen Dank für den Artikel, aber der Autor versteht nichts.",
        reasons=[{"code": "unsupported_language", "language": "de"}],
    )
    mixed = held_comment(
        site.id,
        "I agree with you. Я согласен, idiot.",
        author="reader-2",
        reasons=[
            {"code": "toxicity", "label": "toxicity", "score": 0.72, "threshold": 0.6},
            {"code": "language_uncertain", "detected": "ru", "confidence": 0.53, "language": "en"},
        ],
    )
    read_as(german, "de", 0.97, unscored=True)
    read_as(mixed, "en", 0.53)

    sign_in(page, site.moderator)

    # Held unscored because no model reads German: the card says so, and in which language.
    expect(card(page, german).locator(".scores.empty")).to_have_text("No scores.")
    expect(card(page, german).locator(".reasons")).to_contain_text("no model reads de")
    expect(card(page, german).locator("button.language")).to_have_text("de")
    expect(card(page, german).locator("button.language")).to_have_attribute(
        "title", "Read as de (detector 97% sure): only this language"
    )
    expect(card(page, mixed).locator(".reasons")).to_contain_text(
        "language unsure (ru 53%), read as en"
    )
    # The card's language filters the queue; the filter box shows it and takes a typed one.
    card(page, german).locator("button.language").click()
    expect(card(page, mixed)).to_have_count(0)
    expect(card(page, german)).to_have_count(1)
    expect(page.locator("#f-language")).to_have_value("de")
    assert "language=de" in page.url
    page.fill("#f-language", "EN")
    expect(card(page, german)).to_have_count(0)
    expect(card(page, mixed)).to_have_count(1)
    page.select_option("#f-reason", "unsupported_language")
    expect(page.locator("#queue-list")).to_contain_text("Nothing matches these filters.")

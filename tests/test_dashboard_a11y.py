"""The dashboard measured with axe-core in Chromium (WCAG 2.2 A/AA and best practices)."""

from __future__ import annotations

import pytest

from tests.browser_helpers import axe_violations, held_comment, report
from tests.test_dashboard_browser import card, expect, fill_key, page, sign_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
__all__ = ["page"]  # a fixture


def no_violations(page, where: str) -> None:
    found = axe_violations(page)
    assert not found, f"{where}:\n" + "\n".join(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_sign_in_queue_dialogs_and_settings_pass_axe(page, site, scheme):
    page.emulate_media(color_scheme=scheme)
    first = held_comment(site.id, "You clearly did not read the article, genius.")
    held_comment(site.id, "Cheap watches at watches.example", author="reader-2")
    report(first, "abusive", "reader-9", "Name-calling.", minutes_ago=3)
    fill_key(page, site.admin)
    no_violations(page, "sign-in page")
    page.press("#key", "Enter")
    page.wait_for_selector("#queue-list[aria-busy=false]")
    expect(card(page, first)).to_have_attribute("aria-current", "true")
    no_violations(page, "queue")
    dialogs = {
        "reject reasons": "r",
        "history": "i",
        "author": "o",
        "shortcuts": "?",
    }
    for name, key in dialogs.items():
        card(page, first).focus()
        page.keyboard.press(key)
        expect(page.locator("dialog[open]")).to_have_count(1)
        no_violations(page, f"{name} dialog")
        page.keyboard.press("Escape")
        expect(page.locator("dialog[open]")).to_have_count(0)
    page.click("#select-all-matching")
    page.click('[data-bulk="approve"]')
    expect(page.locator("dialog[open]")).to_have_count(1)
    no_violations(page, "bulk confirmation dialog")
    page.keyboard.press("Escape")
    page.goto("/dashboard#settings")
    page.wait_for_selector("form.settings-form")
    no_violations(page, "settings")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_settings_endpoint_dialogs_and_list_pass_axe(app, page, site, scheme):
    """Settings with an endpoint: the one-time secret dialog, the list, the delete prompt."""
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True  # the receiver below is on loopback
    page.emulate_media(color_scheme=scheme)
    sign_in(page, site.admin)
    page.goto("/dashboard#settings")
    page.wait_for_selector("form.new-endpoint")
    page.fill("#wh-url", "http://127.0.0.1:9/hooks/civility")
    page.click("form.new-endpoint button[type=submit]")
    expect(page.locator("dialog[open] input.secret")).to_have_count(1)
    no_violations(page, "endpoint secret dialog")
    page.locator("dialog[open]").get_by_role("button", name="Done").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    delete = page.get_by_role("button", name="Delete", exact=True)
    expect(delete).to_have_count(1)
    no_violations(page, "settings with an endpoint")
    delete.click()
    expect(page.locator("dialog[open]")).to_have_count(1)
    no_violations(page, "delete endpoint dialog")
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS ``rgb(…)`` colours."""

    def luminance(color: str) -> float:
        channels = [int(float(v)) / 255 for v in color[color.index("(") + 1 : -1].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_ring_has_3_to_1_contrast_and_the_history_list_shows_it(page, site, scheme):
    page.emulate_media(color_scheme=scheme)
    first = held_comment(site.id, "A comment with a history.")
    sign_in(page, site.moderator)
    card(page, first).focus()
    ring = page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return [s.outlineStyle, s.outlineColor, parseFloat(s.outlineWidth)]; }"""
    )
    page_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert ring[0] == "solid" and ring[2] >= 2
    assert contrast(ring[1], page_bg) >= 3
    page.keyboard.press("i")
    events = page.locator("dialog[open] .events")
    # Opened by keyboard, the dialog puts focus on the event list: its ring must show.
    expect(events).to_be_focused()
    assert events.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    dialog_bg = page.evaluate("getComputedStyle(document.querySelector('dialog')).backgroundColor")
    color = events.evaluate("e => getComputedStyle(e).outlineColor")
    assert contrast(color, dialog_bg) >= 3


def test_single_key_shortcuts_can_be_limited_to_cards_or_turned_off(page, site):
    first = held_comment(site.id, "First held comment.")
    sign_in(page, site.moderator)
    page.keyboard.press("?")
    page.get_by_label("Off").check()
    page.keyboard.press("Escape")
    page.locator("#select-page").focus()
    card(page, first).focus()
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    expect(card(page, first)).to_have_count(1)  # off: "a" approves nothing
    page.locator("#help-button").click()
    page.get_by_label("Only while a comment has focus").check()
    page.keyboard.press("Escape")
    page.locator("#help-button").focus()
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    expect(card(page, first)).to_have_count(1)  # focus on a top-bar button: ignored
    card(page, first).focus()
    page.keyboard.press("a")
    expect(card(page, first)).to_have_count(0)
    page.reload()
    page.wait_for_selector("#queue-list[aria-busy=false]")
    page.locator("#help-button").click()  # remembered in this browser
    expect(page.get_by_label("Only while a comment has focus")).to_be_checked()


def test_cards_are_named_by_author_and_opening_and_focus_survives_bulk_and_undo(page, site):
    first = held_comment(site.id, "The council's budget is late again this year.", author="ana")
    held_comment(site.id, "Second comment", author="bo")
    sign_in(page, site.moderator)
    expect(
        page.get_by_role("article", name=f"Comment #{first} by ana: The council's budget")
    ).to_have_count(1)
    page.click("#select-all-matching")
    page.click('[data-bulk="approve"]')
    expect(page.locator("dialog[open]")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#toasts")).to_contain_text("2 comments approved.")
    expect(page.locator("#queue-list")).to_be_focused()
    page.keyboard.press("u")
    expect(page.locator("#toasts")).to_contain_text("2 restored")
    expect(page.locator("article.card")).to_have_count(2)
    assert page.evaluate("document.activeElement !== document.body")
    focused = page.evaluate("document.activeElement.closest('#queue-list') !== null")
    assert focused


def test_phone_layout_hides_the_idle_bulk_bar_and_signs_scrolling_tabs(page, site):
    page.set_viewport_size({"width": 375, "height": 740})
    first = held_comment(site.id, "A held comment on a phone.")
    sign_in(page, site.moderator)
    bulkbar = page.locator(".bulkbar")
    expect(bulkbar).to_be_hidden()
    card(page, first).get_by_label(f"Select comment {first}").check()
    expect(bulkbar).to_be_visible()
    tabs = page.locator(".tabs")
    assert tabs.evaluate("t => t.scrollWidth > t.clientWidth")
    assert tabs.evaluate("t => getComputedStyle(t).maskImage") != "none"
    tabs.evaluate("t => { t.scrollLeft = t.scrollWidth; t.dispatchEvent(new Event('scroll')); }")
    expect(tabs).to_have_class("tabs scrolled-end")
    padding = page.evaluate(
        "parseFloat(getComputedStyle(document.documentElement).scrollPaddingTop)"
    )
    topbar = page.locator(".topbar").bounding_box()["height"]
    assert padding >= topbar
    # Room under the last card's buttons for the toasts; the toast box lets clicks through.
    main_pad = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('main')).paddingBottom)"
    )
    assert main_pad >= 100
    assert (
        page.evaluate("getComputedStyle(document.getElementById('toasts')).pointerEvents") == "none"
    )


def test_sticky_bars_are_covered_by_scroll_padding_on_desktop(page, site):
    held_comment(site.id, "Something to show.")
    sign_in(page, site.moderator)
    padding = page.evaluate(
        "parseFloat(getComputedStyle(document.documentElement).scrollPaddingTop)"
    )
    topbar = page.locator(".topbar").bounding_box()["height"]
    bulkbar = page.locator(".bulkbar").bounding_box()["height"]
    assert padding >= topbar + bulkbar

"""Settings → Calibration in real headless Chromium: suggestions, and an edit previewed unsaved."""

from __future__ import annotations

from typing import Any

import pytest

from service.extensions import db
from service.models import Site
from tests.browser_helpers import release
from tests.review_helpers import make_comments, moderator_moves, policy_decides
from tests.test_dashboard_browser import browser, expect, live, page, sign_in  # noqa: F401

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# The hand-computed fixture of tests/test_calibration.py: (toxicity, moderator rejects?).
TEN = [(0.9, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.5, 0), (0.4, 1), (0.3, 0), (0.2, 0)]
TEN += [(0.1, 0), (0.05, 0)]


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "CALIBRATION_MIN_DECISIONS": 5}


def decided_comments(site_id: int) -> list[int]:
    row = db.session.get(Site, site_id)
    row.hold_at, row.reject_at = {"toxicity": 0.5}, {"toxicity": 0.9}
    db.session.commit()
    ids = make_comments(site_id, len(TEN))
    for comment_id, (score, rejected) in zip(ids, TEN, strict=True):
        policy_decides([comment_id], "held", scores={"toxicity": score})
        moderator_moves([comment_id], "rejected" if rejected else "approved")
    return ids


def open_settings(page, key: str) -> None:  # noqa: F811
    sign_in(page, key)
    page.click("a[data-view=settings]")
    page.wait_for_selector("#hold-toxicity")


def test_admin_sees_suggestions_previews_them_and_saves(
    page,  # noqa: F811
    site,
    client,
):
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


def test_an_invalid_edit_is_named_in_the_preview(page, site):  # noqa: F811
    decided_comments(site.id)
    open_settings(page, site.admin)
    page.fill("#hold-toxicity", "0.95")  # above reject_at 0.9
    page.get_by_role("button", name="Preview this edit").click()
    expect(page.locator("#simulation .form-error")).to_contain_text("hold_at")

"""Each scorer's own default thresholds, applied by the real worker; a site's own still win."""

from __future__ import annotations

from service.extensions import db
from service.models import Site
from service.moderation.policy import DEFAULT_HOLD_AT, PROFANITY_CHECK_HOLD_AT
from tests.worker_helpers import comments, submit_ids

# profanity-check scores this about 0.49: above its own hold_at (0.37), below Detoxify's (0.6).
MILD = "This is nonsense"


def test_worker_holds_by_profanity_checks_defaults_unless_the_site_sets_its_own(
    submit,
    make_site,
    start_worker,
):
    assert PROFANITY_CHECK_HOLD_AT < 0.49 < DEFAULT_HOLD_AT["toxicity"]
    tuned = make_site("Tuned Times")
    db.session.get(Site, tuned.id).hold_at = {"toxicity": 0.5}
    db.session.commit()
    (default_site,) = submit_ids(submit, MILD)
    answer = submit(body=MILD, as_site=tuned)
    assert answer.status_code == 202
    own = answer.get_json()["id"]

    worker = start_worker("--burst")

    assert worker.wait(timeout=120) == 0, worker.log()
    rows = comments([default_site, own])
    assert 0.37 <= rows[default_site].scores["toxicity"] < 0.5
    assert rows[default_site].status == "held"
    assert rows[default_site].reasons[0]["threshold"] == PROFANITY_CHECK_HOLD_AT
    assert rows[own].status == "approved"

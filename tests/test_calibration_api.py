"""GET /v1/site/calibration and POST /v1/site/simulate on real databases, decisions via the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import (
    Comment,
    ModerationEvent,
    Site,
    SiteEvent,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from service.moderation.policy import (
    DEFAULT_HOLD_AT,
    PROFANITY_CHECK_HOLD_AT,
    PROFANITY_CHECK_REJECT_AT,
)
from tests.review_helpers import MODEL, make_comments, policy_decides

# The hand-computed fixture of tests/test_calibration.py: (toxicity, moderator rejects?).
TEN = [(0.9, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.5, 0), (0.4, 1), (0.3, 0), (0.2, 0)]
TEN += [(0.1, 0), (0.05, 0)]
SITE_THRESHOLDS = {"hold_at": {"toxicity": 0.5}, "reject_at": {"toxicity": 0.9}}


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "CALIBRATION_MIN_DECISIONS": 5}


def decide(client, site, comment_id: int, decision: str):
    answer = client.post(
        f"/v1/comments/{comment_id}/decision",
        json={"decision": decision},
        headers=site.auth("moderator"),
    )
    assert answer.status_code == 200, answer.get_json()
    return answer


def scored(site_id: int, pairs, *, model: str = MODEL, author: str = "reader-1") -> list[int]:
    """One held comment per (toxicity, _) pair, scored by ``model``."""
    ids = make_comments(site_id, len(pairs), author=author)
    for comment_id, (score, _) in zip(ids, pairs, strict=True):
        policy_decides([comment_id], "held", scores={"toxicity": score})
    if model != MODEL:
        db.session.execute(sa.update(Comment).where(Comment.id.in_(ids)).values(model=model))
        db.session.execute(
            sa.update(ModerationEvent)
            .where(ModerationEvent.comment_id.in_(ids))
            .values(model=model)
        )
        db.session.commit()
    return ids


def moderated(client, site, pairs, **kwargs: Any) -> list[int]:
    """Scored comments that a moderator then decided by their label, through the API."""
    ids = scored(site.id, pairs, **kwargs)
    for comment_id, (_, rejected) in zip(ids, pairs, strict=True):
        decide(client, site, comment_id, "reject" if rejected else "approve")
    return ids


def set_thresholds(site, **fields: Any) -> None:
    row = db.session.get(Site, site.id)
    for name, value in fields.items():
        setattr(row, name, value)
    db.session.commit()


def calibration(client, site, role: str = "moderator", **query: Any):
    return client.get("/v1/site/calibration", query_string=query, headers=site.auth(role))


def toxicity(body: dict[str, Any]) -> dict[str, Any]:
    return next(entry for entry in body["labels"] if entry["label"] == "toxicity")


def test_calibration_answers_the_hand_computed_figures(client, site):
    set_thresholds(site, **SITE_THRESHOLDS)
    moderated(client, site, TEN)
    answer = calibration(client, site)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["model"], body["decisions"], body["rejected"]) == (MODEL, 10, 4)
    assert body["sources"] == {"moderator": 10}
    label = toxicity(body)
    assert label["enough"] is True
    hold = label["current"]["hold"]
    assert (label["current"]["hold_at"], label["current"]["reject_at"]) == (0.5, 0.9)
    assert (hold["precision"]["value"], hold["recall"]["value"], hold["f1"]["value"]) == (
        0.6,
        0.75,
        0.6667,
    )
    assert hold["precision"]["low"] < 0.6 < hold["precision"]["high"]
    assert (hold["flagged"], hold["upheld"], hold["overturned"], hold["missed"]) == (5, 3, 2, 1)
    suggested = label["suggested"]
    assert (suggested["hold_at"], suggested["reject_at"]) == (0.4, 0.8)
    assert suggested["hold"]["f1"]["value"] == 0.8
    assert suggested["reject"]["overturned"] == 0


def test_newest_decision_wins_and_a_moderator_hold_is_no_label(client, site):
    ids = moderated(client, site, TEN)
    decide(client, site, ids[2], "reject")  # approved first, now rejected: counts as rejected
    decide(client, site, ids[0], "hold")  # rejected, then held: no verdict now
    body = calibration(client, site).get_json()
    assert (body["decisions"], body["rejected"]) == (9, 4)


def test_it_reads_the_newest_decisions_up_to_the_limit_each_by_its_newest_verdict(
    app, client, site
):
    app.config["CALIBRATION_MAX_DECISIONS"] = 4
    ids = moderated(client, site, TEN)  # ids[6:] are the four newest decisions
    body = calibration(client, site).get_json()
    assert (body["decisions"], body["rejected"]) == (4, 0)
    decide(client, site, ids[6], "reject")  # approved, now rejected: still one of the newest
    decide(client, site, ids[0], "approve")  # rejected long ago, now approved: the newest
    body = calibration(client, site).get_json()
    # The four newest events: ids[0] approved, ids[6] rejected, ids[9], ids[8] approved.
    assert (body["decisions"], body["rejected"]) == (4, 1)


def test_only_the_current_models_scores_and_this_sites_decisions_count(client, site, other_site):
    moderated(client, site, TEN[:6], model="detoxify-original@0.5.4")
    moderated(client, site, TEN)  # newest: the site's model now
    moderated(client, other_site, TEN)
    body = calibration(client, site).get_json()
    assert (body["model"], body["decisions"]) == (MODEL, 10)
    older = calibration(client, site, model="detoxify-original@0.5.4").get_json()
    assert (older["model"], older["decisions"], older["rejected"]) == (
        "detoxify-original@0.5.4",
        6,
        4,
    )


def test_decisions_outside_the_window_do_not_count(client, site):
    ids = moderated(client, site, TEN)
    old = utcnow() - timedelta(days=100)
    db.session.execute(
        sa.update(ModerationEvent)
        .where(ModerationEvent.comment_id.in_(ids[:4]), ModerationEvent.actor != "policy")
        .values(created_at=old)
    )
    db.session.commit()
    assert calibration(client, site).get_json()["decisions"] == 6  # default: the last 90 days
    since = (old - timedelta(days=1)).isoformat()
    assert calibration(client, site, since=since).get_json()["decisions"] == 10
    until = (old + timedelta(days=1)).isoformat()
    assert calibration(client, site, since=since, until=until).get_json()["decisions"] == 4


def test_below_the_minimum_it_says_not_enough_decisions(client, site):
    moderated(client, site, TEN[:4])
    label = toxicity(calibration(client, site).get_json())
    assert label["enough"] is False
    assert label["suggested"] is None and label["current"]["hold"] is None
    assert label["message"] == "Not enough decisions: 4 of the 5 needed."


def test_a_site_without_scored_comments_answers_empty(client, site):
    body = calibration(client, site).get_json()
    assert (body["model"], body["decisions"], body["labels"]) == (None, 0, [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, "since"),
        ({"since": "yesterday"}, "since"),
        # At the calendar's edge: converting to UTC overflowed into a 500.
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),
        ({"limit": "5"}, "limit"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_calibration_queries_are_422_naming_the_field(client, site, query, field):
    answer = calibration(client, site, **query)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["errors"]["query"]


@pytest.mark.parametrize(("role", "status"), [("site", 403), ("moderator", 200), ("admin", 200)])
def test_calibration_is_for_moderators_and_admins(client, site, role, status):
    assert calibration(client, site, role).status_code == status


def test_calibration_needs_a_key(client):
    assert client.get("/v1/site/calibration").status_code == 401


# Simulation --------------------------------------------------------------------------------


def simulate(client, site, role: str = "admin", **body: Any):
    return client.post("/v1/site/simulate", json=body, headers=site.auth(role))


def snapshot(site_id: int) -> dict[str, Any]:
    """What a simulation must not change: every row count, every comment, the settings."""
    db.session.expire_all()
    counts = {
        model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Comment, ModerationEvent, SiteEvent, WebhookDelivery)
    }
    comments = db.session.execute(
        sa.select(Comment.id, Comment.status, Comment.reasons, Comment.decided_at).order_by(
            Comment.id
        )
    ).all()
    site = db.session.get(Site, site_id)
    settings = (site.hold_at, site.reject_at, site.mode, site.updated_at)
    db.session.rollback()
    return {"counts": counts, "comments": comments, "settings": settings}


def test_simulation_answers_the_moves_and_changes_nothing(client, site):
    set_thresholds(site, **SITE_THRESHOLDS)
    db.session.add(
        WebhookEndpoint(site_id=site.id, url="https://hooks.example/x", secret="whsec_eA==")
    )
    db.session.commit()
    ids = moderated(client, site, TEN)
    before = snapshot(site.id)
    answer = simulate(client, site, hold_at={"toxicity": 0.4}, reject_at={"toxicity": 0.7})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert snapshot(site.id) == before
    assert (body["model"], body["replayed"]) == (MODEL, 10)
    # Now: 0.9 rejects; 0.8-0.5 hold; the rest approve. Proposed: 0.8 and 0.7 reject, 0.4 holds.
    assert body["matrix"]["held"] == {"approved": 0, "held": 2, "rejected": 2}
    assert body["matrix"]["approved"] == {"approved": 4, "held": 1, "rejected": 0}
    assert body["matrix"]["rejected"]["rejected"] == 1
    moves = {(m["from"], m["to"]): m for m in body["moves"]}
    assert set(moves) == {("held", "rejected"), ("approved", "held")}
    assert moves["held", "rejected"]["count"] == 2
    assert sorted(moves["held", "rejected"]["sample_ids"]) == [ids[1], ids[2]]
    assert (
        moves["held", "rejected"]["moderator_rejected"],
        moves["held", "rejected"]["moderator_approved"],
    ) == (1, 1)
    assert moves["approved", "held"] == {
        "from": "approved",
        "to": "held",
        "count": 1,
        "moderator_rejected": 1,
        "moderator_approved": 0,
        "sample_ids": [ids[5]],
    }
    current, proposed = body["agreement"]["current"], body["agreement"]["proposed"]
    assert (current["precision"]["value"], current["recall"]["value"]) == (0.6, 0.75)
    assert (proposed["precision"]["value"], proposed["recall"]["value"]) == (0.6667, 1.0)


def test_simulating_the_settings_unchanged_moves_nothing(client, site):
    set_thresholds(site, **SITE_THRESHOLDS, suspect_words=["thoughtful"])
    moderated(client, site, TEN)
    body = simulate(client, site, mode="post").get_json()
    assert body["moves"] == []
    assert body["replayed"] == 10


def test_simulation_replays_words_mode_and_links_too(client, site):
    set_thresholds(site, **SITE_THRESHOLDS)
    moderated(client, site, TEN)
    body = simulate(client, site, mode="pre").get_json()
    assert {(m["from"], m["to"]): m["count"] for m in body["moves"]} == {("approved", "held"): 5}
    body = simulate(client, site, banned_words=["comment"]).get_json()
    moves = {(m["from"], m["to"]): m["count"] for m in body["moves"]}
    assert moves == {("approved", "rejected"): 5, ("held", "rejected"): 4}


def test_simulation_limit_takes_the_newest_comments(client, site):
    ids = moderated(client, site, TEN)
    body = simulate(client, site, limit=3, mode="pre").get_json()
    assert (body["replayed"], body["limit"]) == (3, 3)
    moved = {i for m in body["moves"] for i in m["sample_ids"]}
    assert moved <= set(ids[-3:])


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, ("since",)),
        ({"until": "0001-01-01T00:00:00+14:00"}, ("until",)),
        ({"hold_at": {"toxicity": 1.5}}, ("hold_at", "toxicity")),
        ({"reject_at": {"toxicity": -0.1}}, ("reject_at", "toxicity")),
        ({"hold_at": {"toxcity": 0.5}}, ("hold_at", "toxcity")),
        ({"hold_at": {"toxicity": 0.99}}, ("hold_at", "toxicity")),  # above reject_at 0.9
        ({"mode": "never"}, ("mode",)),
        ({"limit": 0}, ("limit",)),
        ({"limit": 100001}, ("limit",)),
        ({"name": "Renamed"}, ("name",)),
        ({"banned_words": "not a list"}, ("banned_words",)),
    ],
)
def test_bad_simulations_are_422_naming_the_field(client, site, fields, path):
    set_thresholds(site, **SITE_THRESHOLDS)
    answer = simulate(client, site, **fields)
    assert answer.status_code == 422, answer.get_json()
    node = answer.get_json()["errors"]["json"]
    for part in path:
        assert part in node, node
        node = node[part]


@pytest.mark.parametrize(("role", "status"), [("site", 403), ("moderator", 403), ("admin", 200)])
def test_simulation_is_for_admins(client, site, role, status):
    assert simulate(client, site, role, mode="pre").status_code == status


# Per-model defaults ------------------------------------------------------------------------


def test_a_profanity_check_site_gets_that_scorers_defaults_and_its_overrides_win(client, site):
    scored(site.id, [(0.5, 0)], model="profanity-check@1.9.1")
    body = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert body["scorer"] == "profanity-check@1.9.1"
    assert body["hold_at"]["toxicity"] == PROFANITY_CHECK_HOLD_AT
    assert body["reject_at"]["toxicity"] == PROFANITY_CHECK_REJECT_AT
    assert body["hold_at"]["insult"] == DEFAULT_HOLD_AT["insult"]
    answer = client.patch(
        "/v1/site", json={"hold_at": {"toxicity": 0.5}}, headers=site.auth("admin")
    )
    assert answer.get_json()["hold_at"]["toxicity"] == 0.5
    # Detoxify's reject_at (0.95) would allow hold_at 0.96; this scorer's 0.97 does too, 0.98 not.
    answer = client.patch(
        "/v1/site", json={"hold_at": {"toxicity": 0.98}}, headers=site.auth("admin")
    )
    assert answer.status_code == 422
    assert "toxicity" in answer.get_json()["errors"]["json"]["hold_at"]


def test_a_site_without_comments_takes_the_configured_scorers_defaults(app, client, site):
    app.config["SCORER"] = "profanity-check"
    body = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert body["scorer"] == "profanity-check"
    assert body["hold_at"]["toxicity"] == PROFANITY_CHECK_HOLD_AT

"""GET/PATCH /v1/site: the policy settings, validated and audited."""

from __future__ import annotations

import pytest

from service.extensions import db
from service.models import Site
from service.moderation.policy import (
    DEFAULT_HOLD_AT,
    DEFAULT_REJECT_AT,
    PolicySettings,
    SettingsError,
    shown,
    thresholds,
)
from service.moderation.states import Mode


def patch(client, site, **fields):
    return client.patch("/v1/site", json=fields, headers=site.auth("admin"))


def test_get_shows_defaults_for_thresholds_not_set(client, site):
    body = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert body["hold_at"] == dict(DEFAULT_HOLD_AT)
    assert body["reject_at"] == dict(DEFAULT_REJECT_AT)
    assert body["mode"] == "post"
    assert body["id"] == site.id


def test_patch_changes_only_what_is_given_and_merges_thresholds(client, site):
    answer = patch(
        client,
        site,
        mode="pre",
        hold_at={"toxicity": 0.5},
        banned_words=["spamword", " Spamword ", "kill yourself"],
    )
    assert answer.status_code == 200, answer.get_json()
    answer = patch(client, site, hold_at={"threat": None})
    body = answer.get_json()
    assert body["mode"] == "pre"
    assert body["hold_at"]["toxicity"] == 0.5
    assert body["hold_at"]["threat"] is None  # turned off
    assert body["hold_at"]["insult"] == DEFAULT_HOLD_AT["insult"]
    assert body["banned_words"] == ["spamword", "Spamword", "kill yourself"]


def test_every_change_is_audited_with_old_and_new_values(client, site):
    patch(client, site, hold_links=True)
    patch(client, site, hold_links=True)  # no change, no event
    patch(client, site, new_author_premod=2)
    events = client.get("/v1/site/events", headers=site.auth("admin")).get_json()["items"]
    assert [e["changes"] for e in events] == [
        {"new_author_premod": [0, 2]},
        {"hold_links": [False, True]},
    ]
    assert events[0]["actor"] == "Example News-admin"


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"mode": "never"}, ("mode",)),
        ({"hold_at": {"toxicity": 1.5}}, ("hold_at", "toxicity")),
        ({"hold_at": {"toxicity": -0.1}}, ("hold_at", "toxicity")),
        ({"reject_at": {"toxcity": 0.9}}, ("reject_at", "toxcity")),
        ({"hold_at": {"toxicity": 0.99}}, ("hold_at", "toxicity")),  # above reject_at 0.95
        ({"reject_at": {"threat": 0.1}}, ("hold_at", "threat")),  # below hold_at 0.3
        ({"banned_words": ["x" * 101]}, ("banned_words",)),
        ({"banned_words": "not a list"}, ("banned_words",)),
        ({"suspect_words": ["bad\x00word"]}, ("suspect_words",)),
        ({"new_author_premod": -1}, ("new_author_premod",)),
        ({"requeue_reports": 1001}, ("requeue_reports",)),
        ({"origins": ["https://news.example/path"]}, ("origins",)),
        ({"origins": ["javascript:alert(1)"]}, ("origins",)),
        ({"hold_links": "sometimes"}, ("hold_links",)),
        ({"id": 5}, ("id",)),
    ],
)
def test_bad_settings_are_422_naming_the_field_and_change_nothing(client, site, fields, path):
    before = client.get("/v1/site", headers=site.auth("admin")).get_json()
    answer = patch(client, site, **fields)
    assert answer.status_code == 422, answer.get_json()
    node = answer.get_json()["errors"]["json"]
    for part in path:
        assert part in node, node
        node = node[part]
    after = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert after == before


def test_word_lists_are_bounded_by_the_setting(config, client, site):
    limit = 10_000
    answer = patch(client, site, banned_words=[f"w{n}" for n in range(limit + 1)])
    assert answer.status_code == 422
    assert "banned_words" in answer.get_json()["errors"]["json"]
    ok = patch(client, site, banned_words=[f"w{n}" for n in range(limit)])
    assert ok.status_code == 200
    assert len(db.session.get(Site, site.id).banned_words) == limit


def test_stored_settings_build_through_from_site_and_only_a_patch_checks_the_order(client, site):
    row = db.session.get(Site, site.id)
    row.hold_at, row.mode = {"toxicity": 0.99, "insult": None}, "pre"
    db.session.commit()
    # The worker reads what is stored even when a scorer's defaults put hold above reject.
    settings = PolicySettings.from_site(row)
    assert (settings.mode, settings.hold_at["toxicity"]) == (Mode.PRE, 0.99)
    assert "insult" not in settings.hold_at  # null turns a label off for the policy...
    assert shown(thresholds(row.hold_at, row.reject_at)[0])["insult"] is None  # ...and shows
    with pytest.raises(SettingsError) as refused:
        PolicySettings.from_site(row, ordered=True)
    assert (refused.value.field, refused.value.errors) == (
        "hold_at",
        {"toxicity": ["Above reject_at."]},
    )
    body = client.get("/v1/site", headers=site.auth("admin")).get_json()
    assert (body["hold_at"]["toxicity"], body["hold_at"]["insult"]) == (0.99, None)

"""Policy settings: defaults per scorer, parsing a site's mapping (overrides, nulls, every
field), refusing invalid settings, and never aliasing the input."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.moderation.policy import (
    DEFAULT_HOLD_AT,
    DEFAULT_REJECT_AT,
    LABELS,
    PolicySettings,
)
from service.moderation.states import Mode
from service.moderation.words import WordList


def test_default_thresholds_cover_every_label_and_hold_before_reject() -> None:
    assert tuple(DEFAULT_HOLD_AT) == LABELS == tuple(DEFAULT_REJECT_AT)
    for name in LABELS:
        assert 0 < DEFAULT_HOLD_AT[name] <= DEFAULT_REJECT_AT[name] <= 1, name


def test_from_empty_mapping_or_none_values_gives_the_defaults() -> None:
    settings = PolicySettings.from_mapping({})
    assert settings.mode is Mode.POST
    assert settings.hold_at == DEFAULT_HOLD_AT
    assert settings.reject_at == DEFAULT_REJECT_AT
    assert settings.banned_words == settings.suspect_words == WordList()
    assert (settings.hold_links, settings.new_author_premod, settings.requeue_reports) == (
        False,
        0,
        3,
    )
    nones = dict.fromkeys(field.name for field in dataclasses.fields(PolicySettings))
    assert PolicySettings.from_mapping(nones) == settings == PolicySettings()


def test_from_mapping_threshold_overrides_only_that_label_and_none_turns_it_off() -> None:
    settings = PolicySettings.from_mapping(
        {"hold_at": {"insult": 0.4}, "reject_at": {"obscene": None}}
    )
    assert settings.hold_at == {**DEFAULT_HOLD_AT, "insult": 0.4}
    assert list(settings.hold_at) == list(LABELS)
    assert settings.reject_at == {k: v for k, v in DEFAULT_REJECT_AT.items() if k != "obscene"}


def test_from_mapping_parses_every_field() -> None:
    settings = PolicySettings.from_mapping(
        {
            "mode": "pre",
            "banned_words": ["Slur"],
            "suspect_words": ["idiot", "kill you"],
            "hold_links": True,
            "new_author_premod": 2,
            "requeue_reports": 5,
            "unrelated_site_key": "ignored",
        }
    )
    assert settings == PolicySettings(
        mode=Mode.PRE,
        banned_words=WordList.compile(["Slur"]),
        suspect_words=WordList.compile(["idiot", "kill you"]),
        hold_links=True,
        new_author_premod=2,
        requeue_reports=5,
    )
    assert settings.mode is Mode.PRE


@pytest.mark.parametrize(
    "site",
    [
        pytest.param({"hold_at": {"toxcity": 0.5}}, id="unknown_label"),
        pytest.param({"reject_at": {"toxicity": 1.5}}, id="threshold_above_one"),
        pytest.param({"hold_at": {"toxicity": -0.1}}, id="threshold_below_zero"),
        pytest.param({"mode": "sometimes"}, id="unknown_mode"),
        pytest.param({"unsupported_language": "ignore"}, id="unknown_unsupported_language"),
    ],
)
def test_from_mapping_rejects_invalid_settings(site: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PolicySettings.from_mapping(site)


def test_settings_do_not_alias_or_expose_the_input() -> None:
    hold_at = {"toxicity": 0.4}
    settings = PolicySettings.from_mapping({"hold_at": hold_at})
    hold_at["toxicity"] = 0.9
    assert settings.hold_at["toxicity"] == 0.4
    with pytest.raises(TypeError):
        settings.hold_at["toxicity"] = 0.1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.mode = Mode.PRE  # type: ignore[misc]


def test_each_scorer_has_its_own_defaults_and_a_sites_thresholds_still_win() -> None:
    from service.moderation.policy import SCORER_DEFAULTS, default_thresholds

    profanity = PolicySettings.from_mapping({}, "profanity-check@1.9.1")
    assert profanity.hold_at == default_thresholds("profanity-check")[0]
    assert profanity.hold_at["toxicity"] != DEFAULT_HOLD_AT["toxicity"]
    assert profanity.reject_at["toxicity"] != DEFAULT_REJECT_AT["toxicity"]
    for model in (None, "detoxify-original@0.5.4", "detoxify-model@abc+bf16"):
        settings = PolicySettings.from_mapping({}, model)
        assert (settings.hold_at, settings.reject_at) == (DEFAULT_HOLD_AT, DEFAULT_REJECT_AT)
    own = PolicySettings.from_mapping({"hold_at": {"toxicity": 0.5}}, "profanity-check@1.9.1")
    assert own.hold_at["toxicity"] == 0.5
    for hold_at, reject_at in SCORER_DEFAULTS.values():
        assert tuple(hold_at) == LABELS == tuple(reject_at)
        assert all(0 < hold_at[name] <= reject_at[name] <= 1 for name in LABELS)

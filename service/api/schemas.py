"""Schemas more than one blueprint reads: a site's moderation settings and their checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import current_app

from service.api.common import CleanString
from service.errors import abort
from service.moderation.policy import LABELS, PolicySettings, SettingsError
from service.moderation.states import Mode

THRESHOLD_HELP = (
    "Label → probability in [0, 1] at which the policy {verb}; null turns the "
    "label off. PATCH changes only the labels given."
)


def _threshold_map(verb: str) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(LABELS)),
        values=ma.fields.Float(
            allow_none=True, allow_nan=False, validate=ma.validate.Range(min=0, max=1)
        ),
        metadata={"description": THRESHOLD_HELP.format(verb=verb)},
    )


class WordList(ma.fields.List):
    """A bounded list of words or phrases (CIVILITY_SITE_WORDS_MAX)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CleanString(validate=ma.validate.Length(min=1, max=100)), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        words = super()._deserialize(value, attr, data, **kwargs)
        limit = current_app.config["SITE_WORDS_MAX"]
        if len(words) > limit:
            raise ma.ValidationError(f"At most {limit} entries; this has {len(words)}.")
        return list(dict.fromkeys(w.strip() for w in words if w.strip()))


class ModerationSettings(ma.Schema):
    """The settings the policy reads (PATCH /v1/site and POST /v1/site/simulate)."""

    mode = ma.fields.String(
        validate=ma.validate.OneOf([m.value for m in Mode]),
        metadata={
            "description": "`post`: publish unless a rule holds or rejects; `pre`: hold "
            "everything the policy would approve."
        },
    )
    hold_at = _threshold_map("holds a comment for review")
    reject_at = _threshold_map("rejects a comment")
    banned_words = WordList(metadata={"description": "Words/phrases that reject a comment."})
    suspect_words = WordList(metadata={"description": "Words/phrases that hold a comment."})
    hold_links = ma.fields.Boolean(metadata={"description": "Hold comments containing links."})
    new_author_premod = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=1000),
        metadata={
            "description": "Hold an author's comments until this many were approved (0 = off)."
        },
    )
    requeue_reports = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=1000),
        metadata={
            "description": "Open reports that send an approved comment back to held (0 = never)."
        },
    )


def settings_or_422(values: Mapping[str, Any], model: str | None) -> PolicySettings:
    """The policy settings ``values`` make (thresholds in order); 422 naming the field."""
    try:
        return PolicySettings.from_site(values, model, ordered=True)
    except SettingsError as exc:
        abort(422, str(exc), errors={"json": {exc.field: exc.errors}})
        raise  # unreachable: abort raises

"""Schemas more than one blueprint reads: settings, queue filters and items, counts, reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import current_app

from service.api.common import REF_RE, REF_RULE, CleanString, DateTimeIn, count_schema
from service.errors import abort
from service.moderation.policy import LABELS, PolicySettings, SettingsError
from service.moderation.states import CommentStatus, Mode

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


StatusCounts = count_schema("StatusCounts", [status.value for status in CommentStatus])


class ReportOut(ma.Schema):
    id = ma.fields.Integer()
    comment_id = ma.fields.Integer()
    reason = ma.fields.String()
    reporter_id = ma.fields.String(attribute="reporter_ref", allow_none=True)
    note = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class Counts(ma.Schema):
    held = ma.fields.Integer()
    reported = ma.fields.Integer(
        metadata={"description": "Approved or held comments with unresolved reports."}
    )
    pending = ma.fields.Integer(metadata={"description": "Waiting for the scoring worker."})
    oldest_pending_at = ma.fields.AwareDateTime(allow_none=True)
    oldest_pending_s = ma.fields.Float(
        allow_none=True,
        metadata={"description": "Age of the oldest pending comment: large means stuck workers."},
    )
    oldest_held_at = ma.fields.AwareDateTime(allow_none=True)
    oldest_held_s = ma.fields.Float(allow_none=True)


class QueueFilter(ma.Schema):
    """The comments a queue (or a bulk decision's ``filter``) selects; all given must match."""

    status = ma.fields.String(
        load_default=CommentStatus.HELD.value,
        validate=ma.validate.OneOf([s.value for s in CommentStatus]),
        metadata={"description": "Comment status (default `held`)."},
    )
    reported = ma.fields.Boolean(
        metadata={"description": "true: only comments with unresolved reports; false: none."}
    )
    article = ma.fields.String(
        validate=ma.validate.Regexp(REF_RE, error=f"Expected {REF_RULE}."),
        metadata={"description": "Article ref."},
    )
    author = CleanString(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "Author id (the site's user id)."},
    )
    reason = ma.fields.String(
        validate=ma.validate.Regexp(r"^[a-z0-9_]{1,50}$", error="Expected a reason code."),
        metadata={
            "description": "A reason code the comment carries, e.g. `banned_word`, "
            "`toxicity`, `link`, `reported`, `scoring_failed`."
        },
    )
    label = ma.fields.String(
        validate=ma.validate.OneOf(LABELS),
        metadata={
            "description": "Score label that min_score/max_score and sort=-score use "
            "(default: the comment's highest label)."
        },
    )
    min_score = ma.fields.Float(
        allow_nan=False,
        validate=ma.validate.Range(min=0, max=1),
        metadata={"description": "Score at least this."},
    )
    max_score = ma.fields.Float(
        allow_nan=False,
        validate=ma.validate.Range(min=0, max=1),
        metadata={"description": "Score at most this."},
    )
    language = ma.fields.String(
        validate=ma.validate.Regexp(r"^[a-z]{2,3}$", error="Expected a language code like fr."),
        metadata={"description": "Language the comment was read as (ISO 639-1 code, e.g. `fr`)."},
    )
    since = DateTimeIn(metadata={"description": "Submitted at or after (ISO 8601)."})
    until = DateTimeIn(metadata={"description": "Submitted before (ISO 8601)."})

    @ma.validates_schema
    def _ranges(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high = data.get("min_score"), data.get("max_score")
        if low is not None and high is not None and low > high:
            raise ma.ValidationError("Must not be above max_score.", "min_score")
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:
            raise ma.ValidationError("Must be before until.", "since")


class ArticleRef(ma.Schema):
    ref = ma.fields.String()
    title = ma.fields.String(allow_none=True)
    url = ma.fields.String(allow_none=True)


class AuthorSummary(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    status = ma.fields.String(
        metadata={"description": "active, trusted, premod or banned (expired suspensions: active)."}
    )
    approved_count = ma.fields.Integer()
    rejected_count = ma.fields.Integer()


class QueueItem(ma.Schema):
    id = ma.fields.Integer()
    body = ma.fields.String()
    status = ma.fields.String()
    parent_id = ma.fields.Integer(allow_none=True)
    article = ma.fields.Nested(ArticleRef)
    author = ma.fields.Nested(AuthorSummary)
    scores = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(), allow_none=True)
    max_score = ma.fields.Float(allow_none=True)
    model = ma.fields.String(allow_none=True)
    language = ma.fields.String(allow_none=True, metadata={"description": "Read as (ISO 639-1)."})
    language_confidence = ma.fields.Float(allow_none=True)
    reasons = ma.fields.List(ma.fields.Dict(), metadata={"description": "Why the policy decided."})
    reports = ma.fields.List(ma.fields.Nested(ReportOut), metadata={"description": "Open reports."})
    created_at = ma.fields.AwareDateTime()
    scored_at = ma.fields.AwareDateTime(allow_none=True)
    decided_at = ma.fields.AwareDateTime(allow_none=True)
    decided_by = ma.fields.String(allow_none=True)


def settings_or_422(values: Mapping[str, Any], model: str | None) -> PolicySettings:
    """The policy settings ``values`` make (thresholds in order); 422 naming the field."""
    try:
        return PolicySettings.from_site(values, model, ordered=True)
    except SettingsError as exc:
        abort(422, str(exc), errors={"json": {exc.field: exc.errors}})
        raise  # unreachable: abort raises

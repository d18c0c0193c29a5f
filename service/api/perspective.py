"""Perspective API's face: ``comments:analyze`` and ``comments:suggestscore`` in its own shapes,
so Coral and any Perspective client switch by changing a base URL and a key."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from service import ratelimit
from service.analyze import AnalyzeUnavailable, caller_for, request_key, score_texts
from service.dropin import PERSPECTIVE_ATTRIBUTES, languages_read, sentence_spans
from service.errors import face_error
from service.extensions import db
from service.models import AnalyzeFeedback

log = logging.getLogger(__name__)

blp = Blueprint("perspective", __name__, url_prefix="/v1alpha1")

# HTTP status -> the google.rpc status Perspective names in its errors.
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class PerspectiveError(HTTPException):
    """An error answered in Perspective's shape ``{"error": {code, message, status}}``."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra_headers = headers or {}


@blp.errorhandler(429)  # the app's own 429 handler would win over a class handler
@blp.errorhandler(HTTPException)
def perspective_error(error: HTTPException):
    """Every failure of this face in Perspective's error shape (abort, 413, 429 alike)."""
    code, message, headers = face_error(error)
    if code == 413:
        code, message = 400, "Request payload size exceeds the limit."
    body = {
        "error": {"code": code, "message": message, "status": GOOGLE_STATUS.get(code, "UNKNOWN")}
    }
    response = jsonify(body)
    response.status_code = code
    response.headers.update({**headers, **getattr(error, "extra_headers", {})})
    return response


class CommentSchema(ma.Schema):
    text = ma.fields.String(required=True)
    type = ma.fields.String(validate=ma.validate.OneOf(["PLAIN_TEXT"]))


class RequestedAttributeSchema(ma.Schema):
    scoreType = ma.fields.String(validate=ma.validate.OneOf(["PROBABILITY"]))
    scoreThreshold = ma.fields.Float(allow_nan=False, validate=ma.validate.Range(min=0, max=1))


class AnalyzeRequestSchema(ma.Schema):
    comment = ma.fields.Nested(CommentSchema, required=True)
    requestedAttributes = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(RequestedAttributeSchema),
        required=True,
    )
    languages = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=20)))
    doNotStore = ma.fields.Boolean()
    spanAnnotations = ma.fields.Boolean()
    clientToken = ma.fields.String(validate=ma.validate.Length(max=200))
    sessionId = ma.fields.String(validate=ma.validate.Length(max=200))
    communityId = ma.fields.String(validate=ma.validate.Length(max=200))
    context = ma.fields.Raw()  # accepted, unused (as most Perspective models do)


class SuggestedValueSchema(ma.Schema):
    summaryScore = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(), required=True)


class SuggestRequestSchema(ma.Schema):
    comment = ma.fields.Nested(CommentSchema, required=True)
    attributeScores = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(SuggestedValueSchema), required=True
    )
    languages = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=20)))
    doNotStore = ma.fields.Boolean()
    clientToken = ma.fields.String(validate=ma.validate.Length(max=200))
    sessionId = ma.fields.String(validate=ma.validate.Length(max=200))
    communityId = ma.fields.String(validate=ma.validate.Length(max=200))
    context = ma.fields.Raw()


def _authenticate() -> None:
    """A Civility key (any role) from ``?key=``, ``X-Goog-Api-Key`` or Bearer; rate-limited."""
    token = request_key()
    if token is None:
        raise PerspectiveError(
            403, "The request is missing a valid API key (?key=, X-Goog-Api-Key or Bearer)."
        )
    caller = caller_for(token)
    if caller is None:
        raise PerspectiveError(400, "API key not valid. Please pass a valid API key.")
    ratelimit.check("key", caller.prefix)
    g.api_key = caller
    g.defer_site(caller.site_id)


def _load(schema: ma.Schema) -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise PerspectiveError(400, "Invalid JSON payload received: expected a JSON object.")
    try:
        return schema.load(payload)
    except ma.ValidationError as exc:
        field, problem = next(iter(_flat(exc.messages)))
        raise PerspectiveError(
            400, f'Invalid JSON payload received. Invalid value at "{field}": {problem}'
        ) from None


def _flat(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        found = []
        for name, value in messages.items():
            found += _flat(value, f"{prefix}.{name}" if prefix else str(name))
        return found
    if isinstance(messages, list) and messages and isinstance(messages[0], str):
        return [(prefix, messages[0])]
    return [(prefix, str(messages))]


def _text(comment: dict[str, Any]) -> str:
    text = comment["text"]
    if not text.strip():
        raise PerspectiveError(400, "Comment must be non-empty.")
    limit = current_app.config["ANALYZE_MAX_CHARS"]
    if len(text) > limit:
        raise PerspectiveError(400, f"Comment text too long: at most {limit} characters.")
    return text


@blp.post("/comments:analyze")
def analyze():
    """Score a comment on the requested attributes (Perspective's AnalyzeComment)."""
    _authenticate()
    body = _load(AnalyzeRequestSchema())
    text = _text(body["comment"])
    requested = body["requestedAttributes"]
    if not requested:
        raise PerspectiveError(400, "requestedAttributes must name at least one attribute.")
    unknown = [name for name in requested if name not in PERSPECTIVE_ATTRIBUTES]
    if unknown:
        raise PerspectiveError(400, f"Unknown attribute {unknown[0]}: not one Civility offers.")
    spans = (
        sentence_spans(text, current_app.config["ANALYZE_MAX_SPANS"])
        if body.get("spanAnnotations")
        else []
    )
    try:
        analysis = score_texts([text] + [text[b:e] for b, e in spans], "perspective")
    except AnalyzeUnavailable as exc:
        raise PerspectiveError(503, exc.message) from None
    missing = [name for name in requested if PERSPECTIVE_ATTRIBUTES[name] not in analysis.labels]
    if missing:
        raise PerspectiveError(
            400, f"Attribute {missing[0]} is not scored by the loaded model {analysis.model}."
        )
    attribute_scores = {}
    for name, options in requested.items():
        label = PERSPECTIVE_ATTRIBUTES[name]
        value = analysis.scores[0][label]
        if value < options.get("scoreThreshold", 0.0):
            continue  # as Perspective: below the threshold, the attribute is left out
        scored: dict[str, Any] = {"summaryScore": {"value": value, "type": "PROBABILITY"}}
        if spans:
            scored["spanScores"] = [
                {
                    "begin": begin,
                    "end": end,
                    "score": {"value": scores[label], "type": "PROBABILITY"},
                }
                for (begin, end), scores in zip(spans, analysis.scores[1:], strict=True)
            ]
        attribute_scores[name] = scored
    detected, read = analysis.languages[0], analysis.supported[0]
    answer: dict[str, Any] = {
        "attributeScores": attribute_scores,
        # The language the model read the text as: the detected one where a loaded model
        # reads it, else what the model that scored it knows (never an error).
        "languages": [detected]
        if detected and read
        else languages_read(body.get("languages") or [], analysis.model),
    }
    if detected:
        answer["detectedLanguages"] = [detected]
    if "clientToken" in body:
        answer["clientToken"] = body["clientToken"]
    return jsonify(answer)


@blp.post("/comments:suggestscore")
def suggest_score():
    """Store a moderator's label for a comment (Perspective's SuggestCommentScore)."""
    _authenticate()
    body = _load(SuggestRequestSchema())
    text = _text(body["comment"])
    values: dict[str, float] = {}
    for name, suggested in body["attributeScores"].items():
        if name not in PERSPECTIVE_ATTRIBUTES:
            raise PerspectiveError(400, f"Unknown attribute {name}: not one Civility offers.")
        value = suggested["summaryScore"].get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise PerspectiveError(
                400, f'Invalid value at "attributeScores.{name}.summaryScore.value": 0 to 1.'
            )
        values[name] = float(value)
    if not values:
        raise PerspectiveError(400, "attributeScores must name at least one attribute.")
    db.session.add(
        AnalyzeFeedback(
            site_id=g.api_key.site_id,
            client_token=body.get("clientToken"),
            community_id=body.get("communityId"),
            session_id=body.get("sessionId"),
            attributes=values,
            languages=body.get("languages") or [],
            text=None if body.get("doNotStore") else text,
        )
    )
    db.session.commit()
    answer = {"clientToken": body["clientToken"]} if "clientToken" in body else {}
    return jsonify(answer)

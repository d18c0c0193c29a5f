"""OpenAI's moderation face: ``POST /v1/moderations`` in its own request and answer shapes,
so the OpenAI SDK, LibreChat or LiteLLM use Civility by changing the base URL and key."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from service import ratelimit
from service.analyze import AnalyzeUnavailable, caller_for, request_key, score_texts
from service.dropin import (
    OPENAI_CATEGORIES,
    category_flagged,
    category_score,
    flagged_labels,
    site_policy,
)
from service.errors import face_error

blp = Blueprint("moderations", __name__, url_prefix="/v1")

# HTTP status -> OpenAI's error type and code.
ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "insufficient_permissions"),
    405: ("invalid_request_error", None),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", None),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
    503: ("server_error", "service_unavailable"),
}


class OpenAIError(HTTPException):
    """An error answered in OpenAI's shape ``{"error": {message, type, param, code}}``."""

    def __init__(self, code: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


@blp.errorhandler(429)  # the app's own 429 handler would win over a class handler
@blp.errorhandler(HTTPException)
def openai_error(error: HTTPException):
    """Every failure of this face in OpenAI's error shape (abort, 413, 429 alike)."""
    code, message, headers = face_error(error)
    kind, error_code = ERROR_KINDS.get(code, ("server_error", None))
    body = {
        "error": {
            "message": message,
            "type": kind,
            "param": getattr(error, "param", None),
            "code": error_code,
        }
    }
    response = jsonify(body)
    response.status_code = code
    response.headers.update(headers)
    return response


def _authenticate() -> None:
    token = request_key()
    caller = caller_for(token) if token else None
    if caller is None:
        raise OpenAIError(
            401,
            "Incorrect API key provided. Use a Civility key: Authorization: Bearer <key>.",
        )
    ratelimit.check("key", caller.prefix)
    g.api_key = caller
    g.defer_site(caller.site_id)


def _inputs(payload: dict[str, Any]) -> list[str]:
    """The texts of ``input``: a string, strings, or text parts (image parts are refused)."""
    raw = payload.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise OpenAIError(400, "'input' must be a string or a non-empty array.", "input")
    texts = []
    for index, item in enumerate(raw):
        if isinstance(item, dict):
            if item.get("type") == "image_url":
                raise OpenAIError(
                    400, "Image inputs are not supported: Civility scores text only.", "input"
                )
            if item.get("type") != "text" or not isinstance(item.get("text"), str):
                raise OpenAIError(
                    400, f"input[{index}] must be a string or {{type: 'text', text}}.", "input"
                )
            item = item["text"]
        if not isinstance(item, str):
            raise OpenAIError(400, f"input[{index}] must be a string.", "input")
        texts.append(item)
    limits = current_app.config
    if len(texts) > limits["ANALYZE_MAX_INPUTS"]:
        raise OpenAIError(
            400, f"At most {limits['ANALYZE_MAX_INPUTS']} inputs per request.", "input"
        )
    for index, text in enumerate(texts):
        if len(text) > limits["ANALYZE_MAX_CHARS"]:
            raise OpenAIError(
                400,
                f"input[{index}] is too long: at most {limits['ANALYZE_MAX_CHARS']} characters.",
                "input",
            )
    return texts


def result_for(scores: dict[str, float], policy: Any) -> dict[str, Any]:
    """One entry of ``results``: every OpenAI category, scored from the model's labels."""
    over = flagged_labels(scores, policy)
    categories = {name: category_flagged(scores, name, over) for name in OPENAI_CATEGORIES}
    return {
        # The site's own thresholds decide: any label over them, mapped to a category or not.
        "flagged": bool(over),
        "categories": categories,
        "category_scores": {name: category_score(scores, name) for name in OPENAI_CATEGORIES},
        "category_applied_input_types": {name: ["text"] for name in OPENAI_CATEGORIES},
    }


@blp.post("/moderations")
def moderations():
    """Classify texts (OpenAI's Create moderation); ``model`` is accepted and answered truly."""
    _authenticate()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise OpenAIError(400, "We could not parse the JSON body of your request.")
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise OpenAIError(400, "'model' must be a string.", "model")
    texts = _inputs(payload)
    try:
        analysis = score_texts(texts, "openai")
    except AnalyzeUnavailable as exc:
        raise OpenAIError(503, exc.message) from None
    # Each text is flagged on the thresholds of the model that read it: with scorers
    # routed by language, a site's unset thresholds are each model's own defaults.
    policies = {model: site_policy(g.site, model) for model in set(analysis.models)}
    return jsonify(
        {
            "id": f"modr-{secrets.token_hex(12)}",
            "model": analysis.model,
            "results": [
                result_for(scores, policies[model])
                for scores, model in zip(analysis.scores, analysis.models, strict=True)
            ],
        }
    )

"""One JSON error shape for every failure: ``{code, status, message, errors?}``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from flask import Flask, jsonify, request
from flask_smorest import abort as smorest_abort
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def abort(status: int, message: str, **extra: Any) -> None:
    """Stop the request with our error shape; ``errors={field: [...]}`` names fields."""
    smorest_abort(status, message=message, **extra)


def field_error(field: str, message: str, status: int = 422) -> None:
    """Stop the request with one field named in ``errors``."""
    abort(status, f"Invalid {field}: {message}", errors={"json": {field: [message]}})


class Refused(Exception):
    """A rule said no (outside a view: the domain); the API answers ``status`` in our shape."""

    status = 409

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(Refused):
    """Something asked for is not there (404)."""

    status = 404


class Conflict(Refused):
    """The request conflicts with the state of what it acts on (409)."""

    status = 409


class InvalidField(Refused):
    """One input field is wrong (422, the field named in ``errors``)."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Invalid {field}: {message}", errors={"json": {field: [message]}})
        self.field = field


def field_paths(errors: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields in a webargs/marshmallow error dict (locations dropped)."""
    if not isinstance(errors, dict):
        return [prefix] if prefix else []
    paths: list[str] = []
    for name, value in errors.items():
        name = str(name)
        if not prefix and name in LOCATIONS:
            paths += field_paths(value)
        else:
            paths += field_paths(value, f"{prefix}.{name}" if prefix else name)
    return paths


LOCATIONS = ("json", "query", "path", "headers", "form", "cookies", "files")


def _message(error: HTTPException, data: dict[str, Any], errors: Any) -> str:
    if data.get("message"):
        return data["message"]
    if error.code == 400 and errors and "json" in errors:
        return "Invalid JSON body."
    if error.code == 422 and errors:
        fields = field_paths(errors)
        if fields:
            return "Invalid input: " + ", ".join(fields) + "."
    return error.description or error.name


def _payload(error: HTTPException) -> tuple[dict[str, Any], dict[str, str]]:
    payload: dict[str, Any] = {"code": error.code, "status": error.name}
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    payload["message"] = _message(error, data, errors)
    if errors:
        payload["errors"] = errors
    for key, value in data.items():
        if key not in ("message", "errors", "messages", "headers", "exc", "schema"):
            payload[key] = value
    headers = dict(data.get("headers") or {})
    return payload, headers


def alt_responses(blp: Any, *codes: int) -> Any:
    """Decorator: document on a view each of ``codes`` as its standard error answer (404:
    NOT_FOUND, …), in the order given."""

    def decorate(view: Any) -> Any:
        for code in reversed(codes):
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorate


def face_error(error: HTTPException) -> tuple[int, str, dict[str, str]]:
    """What a compatibility face (OpenAI, Perspective) needs of any failure to answer it in
    its own shape: the status, the message (the face error's own, abort's, or werkzeug's
    description) and the headers to keep (abort's, and a rate limit's Retry-After)."""
    data = getattr(error, "data", None) or {}
    message = getattr(error, "message", None) or data.get("message") or error.description
    headers = dict(data.get("headers") or {})
    answer_headers = error.get_response().headers
    if "Retry-After" in answer_headers:
        headers.setdefault("Retry-After", answer_headers["Retry-After"])
    return error.code or 500, message, headers


def handle_http_exception(error: HTTPException):
    """Render any HTTPException (abort, 404, 405, 413, webargs 400/422) as JSON."""
    payload, headers = _payload(error)
    response = jsonify(payload)
    response.status_code = error.code or 500
    # Keep headers the exception itself carries (Allow on 405, Retry-After on 429).
    own = error.get_response().headers
    for name in ("Allow", "Retry-After"):
        if name in own:
            response.headers[name] = own[name]
    response.headers.update(headers)
    return response


def handle_refused(error: Refused):
    """Answer a refusal from the domain like an ``abort`` from a view."""
    try:
        abort(error.status, error.message, **error.extra)
    except HTTPException as http:
        return handle_http_exception(http)


def handle_unexpected(error: Exception):
    """Log the traceback and answer a 500 in the shared shape, never an HTML page."""
    log.exception("unhandled error: %s", type(error).__name__)
    return handle_http_exception(InternalServerError())


def handle_rate_limited(error: HTTPException):
    """429 with Retry-After: Flask-Limiter's headers plus our shape."""
    response = handle_http_exception(error)
    response.headers.setdefault("Retry-After", "60")
    return response


def require_json_body() -> None:
    """415 for a body that is not declared JSON (else it would read as missing fields)."""
    if (
        request.method in ("POST", "PUT", "PATCH")
        and request.content_length
        and not request.is_json
    ):
        abort(415, "Send the body as JSON with Content-Type: application/json.")


class ErrorSchema(ma.Schema):
    """The shared error shape, as documented in /openapi.json."""

    code = ma.fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = ma.fields.String(required=True, metadata={"description": "Its name."})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong."})
    errors = ma.fields.Dict(
        metadata={"description": "The fields at fault, by location: `{json: {field: [...]}}`."}
    )
    current_status = ma.fields.String(
        metadata={"description": "409 on a decision: the comment's status now."}
    )
    bulk_status = ma.fields.String(
        metadata={"description": "409 on an undo: the bulk action's status."}
    )
    matched = ma.fields.Integer(
        metadata={"description": "422 on a bulk selection too large: comments it matched."}
    )


class ErrorResponses(BasePlugin):
    """An apispec plugin documenting the errors every operation of a kind can answer.

    Views document their own 404, 409 and 422 (with ``alt_response``); the codes that
    come from shared code are added here: 401 and 429 (``auth.require``, rate limits)
    where a key is accepted, 403 where the role is above ``site`` or a dashboard
    session writes without its CSRF token, 415 on writes (``require_json_body``), 400
    and 413 where a JSON body is read.
    """

    def operation_helper(
        self, path: str | None = None, operations: Any = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            codes = set()
            requirements = [r for r in operation.get("security") or [] if "bearerAuth" in r]
            if requirements:
                codes |= {401, 429}
                roles = {role for r in requirements for role in r["bearerAuth"]}
                if roles - {"site"} or method != "get":
                    codes.add(403)
            if method in ("post", "put", "patch"):
                codes.add(415)
            if "requestBody" in operation:
                codes |= {400, 413}
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                if code not in responses and str(code) not in responses:
                    responses[code] = HTTPStatus(code).name


def init_app(app: Flask) -> None:
    """Register the handlers, replacing flask-smorest's default one."""
    app.json.sort_keys = False
    app.before_request(require_json_body)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(429, handle_rate_limited)
    app.register_error_handler(Refused, handle_refused)
    app.register_error_handler(Exception, handle_unexpected)

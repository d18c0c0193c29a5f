"""Logging set-up: readable text by default, JSON lines with ``LOG_FORMAT=json``; request ids."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # fullmatch
# What gunicorn's access log may show of a request: never its headers (Authorization),
# its query string or its Referer, which can carry secrets.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s "%(a)s"'
ACCESS_FIELDS = {
    "remote": "h",
    "method": "m",
    "path": "U",
    "status": "s",
    "bytes": "B",
    "duration_ms": "M",
    "request_id": "{x-request-id}o",
    "user_agent": "a",
}

_request_id: ContextVar[str | None] = ContextVar("civility_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Give every record a ``request_id``: its own (``extra=``), else the current request's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, then the record's request id when it has one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [request {request_id}]" if request_id else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            entry.update(access_fields(record.args))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """The safe fields of a gunicorn access record (its atoms hold every request header)."""
    fields = {name: atoms[atom] for name, atom in ACCESS_FIELDS.items() if atom in atoms}
    return {name: value for name, value in fields.items() if value not in (None, "-")}


def configure(app: Flask) -> None:
    """Install one handler on the root logger per the app's LOG_FORMAT and LOG_LEVEL."""
    fmt = app.config["LOG_FORMAT"]
    if fmt not in ("text", "json"):
        raise ValueError(f"CIVILITY_LOG_FORMAT: expected 'text' or 'json', got {fmt!r}")
    root = logging.getLogger()
    if getattr(root, "_civility_format", None) == fmt:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    for old in [h for h in root.handlers if getattr(h, "_civility", False)]:
        root.removeHandler(old)
    handler._civility = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    # Alembic announces its plugins at INFO on every app start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    root._civility_format = fmt  # type: ignore[attr-defined]


def gunicorn_config(fmt: str, level: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error and access logs in the app's format.

    The root logger is left to the app (``configure`` in each worker), so app records
    are written once; gunicorn's own loggers do not propagate to it.
    """
    formatter = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "root": {"level": level, "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
        "handlers": {
            "error": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "stream": "ext://sys.stdout",
            },
        },
        "formatters": {fmt: formatter},
    }


def init_app(app: Flask) -> None:
    """Give each request an id: the caller's ``X-Request-ID`` if sane, else a new one.

    It is echoed in the answer, set on every log record of the request, and stored
    on comments submitted with it, so their worker and webhook log lines carry it too.
    """

    @app.before_request
    def _start() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex
        g.request_id_token = _request_id.set(g.request_id)

    @app.after_request
    def _echo(response: Response) -> Response:
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            _request_id.reset(token)

"""Logging set-up: readable text by default, JSON lines with ``LOG_FORMAT=json``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


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
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(app: Flask) -> None:
    """Install one handler on the root logger per the app's LOG_FORMAT and LOG_LEVEL."""
    fmt = app.config["LOG_FORMAT"]
    if fmt not in ("text", "json"):
        raise ValueError(f"CIVILITY_LOG_FORMAT: expected 'text' or 'json', got {fmt!r}")
    root = logging.getLogger()
    if getattr(root, "_civility_format", None) == fmt:
        return
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for old in [h for h in root.handlers if getattr(h, "_civility", False)]:
        root.removeHandler(old)
    handler._civility = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    # Alembic announces its plugins at INFO on every app start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    root._civility_format = fmt  # type: ignore[attr-defined]

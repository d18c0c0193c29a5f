"""Refuses JSON bodies that Python's parser cannot take safely, before any view parses them.

Two shapes crash ``json.loads`` rather than failing cleanly: nesting deep enough to exhaust
the recursion limit (``RecursionError``), and integers longer than the interpreter's
int/str conversion limit (``ValueError``, 4,300 digits by default). Both are caught here,
on the raw body, with a cheap pre-check so ordinary bodies pay one scan and no parse.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from flask import Flask, current_app, request

from service.errors import abort

# A JSON string literal: its brackets and digits are text, not structure.
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")
DIGITS_LIMIT = sys.get_int_max_str_digits() or 4300
HUGE_DIGITS_RE = re.compile(r"\d{%d}" % (DIGITS_LIMIT + 1))  # noqa: UP031 (braces)


class _HugeInt:
    """Stands in for an integer too long to convert, so its place can be named."""


HUGE = _HugeInt()


def nesting_depth(text: str, limit: int) -> int:
    """The deepest nesting of arrays and objects in ``text``, counted up to ``limit + 1``."""
    brackets = NOT_BRACKET_RE.sub("", STRING_RE.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


def _parse_int(digits: str) -> Any:
    return HUGE if len(digits.lstrip("-")) > DIGITS_LIMIT else int(digits)


def huge_int_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where the first over-long integer sits in a parsed document, or None."""
    if value is HUGE:
        return path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = huge_int_path(item, (*path, str(key)))
        if found is not None:
            return found
    return None


def _nested(path: tuple[str, ...], message: str) -> Any:
    errors: Any = [message]
    for name in reversed(path):
        errors = {name: errors}
    return errors


def check_json_body() -> None:
    """400 for a JSON body nested deeper than JSON_MAX_DEPTH; 422 naming an over-long integer."""
    if not request.is_json or not request.content_length:
        return
    text = request.get_data(cache=True).decode("utf-8", errors="replace")
    limit = current_app.config["JSON_MAX_DEPTH"]
    # Fewer brackets than the limit cannot nest past it; most bodies stop here.
    if text.count("[") + text.count("{") > limit and nesting_depth(text, limit) > limit:
        abort(
            400,
            f"Invalid JSON body: nested deeper than {limit} levels (CIVILITY_JSON_MAX_DEPTH).",
            errors={"json": [f"Nested deeper than {limit} levels."]},
        )
    if not HUGE_DIGITS_RE.search(text):
        return
    try:
        parsed = json.loads(text, parse_int=_parse_int)
    except ValueError:
        return  # not JSON at all: the view's parser answers its own 400
    path = huge_int_path(parsed)
    if path is None:
        return
    message = f"Integer of more than {DIGITS_LIMIT} digits."
    field = ".".join(path) or "body"
    errors = _nested(path, message) if path else [message]
    abort(
        422,
        f"Invalid {field}: an integer of more than {DIGITS_LIMIT} digits.",
        errors={"json": errors},
    )


def init_app(app: Flask) -> None:
    """Check every JSON body before the views (and the dashboard's sign-in) read it."""
    app.before_request(check_json_body)

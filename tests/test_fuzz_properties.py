"""Hostile values in every JSON field and query parameter of /openapi.json: never a 5xx.

Schemathesis (tests/test_fuzz.py) generates requests from the schemas, so it rarely
builds what breaks parsers rather than validators. Here every input the document names
gets, one at a time: nesting past the depth limit, integers past Python's 4,300-digit
conversion limit, dates at the calendar's edges (also inside cursors), and odd Unicode
(format characters, lone surrogates, NUL, separators, combining marks). Two tests: one
sends each kind of value to every input (deterministic), one lets Hypothesis combine
them (a fixed seed: derandomized, no example database, EXAMPLES per operation).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import create_app
from tests.conftest import migrate

EXAMPLES = int(os.environ.get("CIVILITY_FUZZ_EXAMPLES", "10"))


def _spec() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"INSTANCE_PATH": instance, "SECRET_KEY": "spec"})
        return app.extensions["civility.api"].spec.to_dict()


SPEC = _spec()


def _fields(schema: dict[str, Any], prefix: tuple[str, ...] = (), depth: int = 0) -> list:
    """Dotted paths of a body schema's properties, into nested objects (two levels)."""
    if "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    found = []
    for name, prop in (schema.get("properties") or {}).items():
        path = (*prefix, name)
        found.append(path)
        if depth < 1 and ("$ref" in prop or prop.get("properties")):
            found += _fields(prop, path, depth + 1)
    return found


def _operations() -> list[tuple[str, str, list[str], list[tuple[str, ...]]]]:
    """(method, path, query parameter names, body field paths) of every operation."""
    found = []
    for path, methods in SPEC["paths"].items():
        for method, operation in methods.items():
            if method == "parameters":
                continue
            query = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            fields = _fields(body["schema"]) if body else []
            found.append((method.upper(), path, query, fields))
    # Not in the API document, but the one JSON route anyone may call.
    found.append(("POST", "/dashboard/sign-in", [], [("key",)]))
    return found


OPERATIONS = _operations()


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


DIGITS = "9" * 4301
EDGE_DATES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+00:00",
]
ODD_TEXT = [
    "\u200b\u200d\ufeff",  # invisible only
    "\x00",
    "\ud800",  # a lone surrogate (as the \ud800 escape in JSON)
    "\u202e\u2066evil",  # bidi overrides
    "\u3000\u2028\u2029",
    "e\u0301" * 50,
    "\U0001f469\u200d\U0001f4bb" * 20,
    "\uff11\uff12\uff13",  # fullwidth digits
]
# Raw JSON fragments: a huge integer cannot even be written with json.dumps.
JSON_KINDS: dict[str, list[str]] = {
    "deep": ["[" * 2000 + "]" * 2000, '{"a":' * 500 + "1" + "}" * 500],
    "huge-int": [DIGITS, "-" + DIGITS, "[" + DIGITS + "]", '{"x": ' + DIGITS + "}"],
    "date": [json.dumps(d) for d in EDGE_DATES],
    "unicode": [json.dumps(t) for t in ODD_TEXT],
}
QUERY_KINDS: dict[str, list[str]] = {
    "huge-int": [DIGITS, "-" + DIGITS],
    "date": EDGE_DATES,
    "unicode": ODD_TEXT[:2] + ODD_TEXT[3:],  # a lone surrogate cannot be URL-encoded
    "cursor": [_cursor(sort, when, 1) for sort in ("created", "-created") for when in EDGE_DATES]
    + [_cursor(when, 1) for when in EDGE_DATES]
    + [_cursor("-score", DIGITS, 1), _cursor(int(DIGITS[:300]), 1)],
}


def _body(path: tuple[str, ...], fragment: str) -> str:
    text = fragment
    for name in reversed(path):
        text = "{" + json.dumps(name) + ": " + text + "}"
    return text


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_CONNECT_TIMEOUT_S": 0.2}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: these are about parsing and validation, not the backend."""
    instance = tmp_path_factory.mktemp("fuzz-properties")
    url = f"sqlite:///{instance / 'fuzz.sqlite3'}"
    migrate(url, instance)
    return url


@pytest.fixture
def send(client, site, submit):
    """Send one request to an operation, its path parameters naming rows that exist."""
    admin = site.auth("admin")
    endpoint = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/h"}, headers=admin)
    comment = submit("A first comment.").get_json()
    bulk = client.post(
        "/v1/decisions/bulk",
        json={"ids": [comment["id"]], "decision": "approve"},
        headers=site.auth("moderator"),
    ).get_json()
    endpoint_id = endpoint.get_json()["id"]
    delivery = client.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=admin).get_json()
    known = {
        "{ref}": "article-1",
        "{comment_id}": str(comment["id"]),
        "{endpoint_id}": str(endpoint_id),
        "{delivery_id}": str(delivery["items"][0]["id"]),
        "{bulk_id}": bulk["bulk_id"],
    }

    def request(method: str, path: str, query: dict[str, str] | None, body: str | None):
        for name, value in known.items():
            path = path.replace(name, value)
        if "/authors/" in path:
            path = path.replace("article-1", "reader-1")
        answer = client.open(
            path,
            method=method,
            query_string=query,
            data=body,
            content_type="application/json" if body is not None else None,
            headers=admin,
        )
        assert answer.status_code < 500, (method, path, query, (body or "")[:200], answer.data)
        return answer

    return request


def test_every_kind_of_hostile_value_in_every_input_answers_4xx_or_success(send):
    sent = 0
    for method, path, query, fields in OPERATIONS:
        for name in query:
            for values in QUERY_KINDS.values():
                for value in values:
                    send(method, path, {name: value}, None)
                    sent += 1
        for field in fields:
            for fragments in JSON_KINDS.values():
                for fragment in fragments:
                    send(method, path, None, _body(field, fragment))
                    sent += 1
        if fields:  # the whole body hostile, too
            for fragments in JSON_KINDS.values():
                send(method, path, None, fragments[0])
                sent += 1
    assert sent > 1000  # every operation of the document was reached


def _json_values() -> st.SearchStrategy[str]:
    """Raw JSON fragments: hostile ones, combined into arrays and objects."""
    dates = st.datetimes(timezones=st.timezones()).map(lambda d: json.dumps(d.isoformat()))
    texts = st.text(
        st.characters(categories=["Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Cc", "Co", "So", "Nd"]),
        max_size=40,
    ).map(json.dumps)
    leaves = st.one_of(
        st.sampled_from([f for kind in JSON_KINDS.values() for f in kind]),
        st.integers(min_value=4301, max_value=6000).map(lambda n: "7" * n),
        st.integers(min_value=33, max_value=3000).map(lambda n: "[" * n + "]" * n),
        dates,
        texts,
        st.integers().map(str),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
            st.dictionaries(st.text(max_size=5), inner, max_size=3).map(
                lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
            ),
        ),
        max_leaves=6,
    )


def _query_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([v for kind in QUERY_KINDS.values() for v in kind]),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        st.text(st.characters(categories=["Cf", "Zs", "Mn", "Nd", "So"]), max_size=30),
        st.integers(min_value=4301, max_value=5000).map(lambda n: "1" * n),
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "fields"),
    [op for op in OPERATIONS if op[2] or op[3]],
    ids=[f"{op[0]} {op[1]}" for op in OPERATIONS if op[2] or op[3]],
)
def test_combined_hostile_values_never_cause_a_server_error(send, method, path, query, fields):
    @given(
        query_values=st.dictionaries(st.sampled_from(query or ["_"]), _query_values(), max_size=3),
        body_values=st.dictionaries(
            st.sampled_from(fields or [("_",)]), _json_values(), max_size=3
        ),
    )
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(query_values: dict[str, str], body_values: dict[tuple[str, ...], str]) -> None:
        body = None
        if fields:
            # Each field's fragment in its place; the first wins where two share a parent.
            parts: dict[str, Any] = {}
            for field, fragment in body_values.items():
                parts.setdefault(field[0], []).append((field[1:], fragment))
            members = []
            for name, inner in parts.items():
                sub, fragment = inner[0]
                members.append(json.dumps(name) + ": " + _body(sub, fragment))
            body = "{" + ", ".join(members) + "}"
        send(method, path, query_values if query else None, body)

    run()

"""Schemathesis against /openapi.json with a key of each role: a bounded, seeded run.

Every operation gets EXAMPLES generated requests per role, valid ones and (where it
takes a body or a query) invalid ones, half of them aimed at rows that exist. Checks:
no 5xx, every status code documented, every body in its documented shape.
``CIVILITY_FUZZ_EXAMPLES=500 scripts/test tests/test_fuzz.py`` runs a longer one.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import create_app
from tests.conftest import migrate

EXAMPLES = int(os.environ.get("CIVILITY_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _spec() -> dict[str, Any]:
    """The OpenAPI document, built once at collection to name a test per operation."""
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"INSTANCE_PATH": instance, "SECRET_KEY": "spec"})
        return app.extensions["civility.api"].spec.to_dict()


SCHEMA = schemathesis.openapi.from_dict(_spec())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Invalid input only where there is input to spoil: a body or a query.
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op.body or op.query
]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One backend is enough here (SQLite): the run is about the HTTP contract."""
    instance = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{instance / 'fuzz.sqlite3'}"
    migrate(url, instance)
    return url


@pytest.fixture
def config(config: dict[str, Any]) -> dict[str, Any]:
    # The seeded endpoint is local; test pings to it fail fast (nothing listens).
    return {**config, "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_CONNECT_TIMEOUT_S": 0.2}


@pytest.fixture
def existing(client, site, submit) -> dict[str, Any]:
    """Rows for generated requests to find: path parameters that name them."""
    endpoint = client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=site.auth("admin")
    ).json
    first = submit("A first comment.").json
    submit("A reply.", parent_id=first["id"])
    bulk = client.post(
        "/v1/decisions/bulk",
        json={"ids": [first["id"]], "decision": "approve"},
        headers=site.auth("moderator"),
    ).json
    deliveries = client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", headers=site.auth("admin")
    ).json
    client.post("/dashboard/sign-in", json={"key": site.moderator})
    sessions = client.get("/v1/sessions", headers=site.auth("admin")).json
    return {
        "session_id": sessions["items"][0]["id"],
        "ref": "article-1",
        "comment_id": first["id"],
        "endpoint_id": endpoint["id"],
        "delivery_id": deliveries["items"][0]["id"],
        "bulk_id": bulk["bulk_id"],
    }


def cases(operation: Any, mode: GenerationMode, existing: dict[str, Any]) -> st.SearchStrategy:
    """Generated requests, half of them (when it has path parameters) on existing rows."""
    names = [parameter.name for parameter in operation.path_parameters]
    if not names:
        return operation.as_strategy(mode)
    known = {name: existing[name] for name in names}
    if "/authors/" in operation.path:
        known["ref"] = "reader-1"
    return st.one_of(
        operation.as_strategy(mode), operation.as_strategy(mode, path_parameters=known)
    )


@pytest.mark.parametrize("role", ["site", "moderator", "admin"])
@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.label} {mode.value}" for op, mode in CASES]
)
def test_operation_keeps_its_contract(app, site, existing, operation, mode, role):
    headers = site.auth(role)

    @given(case=cases(operation, mode, existing))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, app=app)

    run()

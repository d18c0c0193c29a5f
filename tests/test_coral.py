"""Coral's external moderation phase: signed requests in Coral's exact shape, the whole policy."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from service.extensions import db
from service.models import Author, Site
from tests.analyze_helpers import patient_deadline, release_database  # noqa: F401 (autouse)

SECRET = "ssc_0123456789abcdef0123456789abcdef"


def coral_request(body: str, author: str = "coral-user-1") -> dict[str, Any]:
    """What Coral's external phase sends (services/comments/pipeline/phases/external.ts)."""
    return {
        "action": "NEW",
        "comment": {"body": body, "parentID": None},
        "author": {"id": author, "role": "COMMENTER"},
        "story": {"id": "story-1", "url": "https://news.example/story-1"},
        "site": {"id": "site-1"},
        "tenantID": "tenant-1",
        "tenantDomain": "news.example",
    }


def send(
    base: str, site_id: int, payload: dict[str, Any], *secrets: str, header: str | None = None
):
    release_database()
    raw = json.dumps(payload, indent=2).encode()  # Coral: JSON.stringify(data, null, 2)
    signatures = ",".join(
        "sha256=" + hmac.new(s.encode(), raw, hashlib.sha256).hexdigest() for s in secrets
    )
    headers = {"Content-Type": "application/json"}
    if header is not None or signatures:
        headers["X-Coral-Signature"] = header if header is not None else signatures
    return httpx.post(
        f"{base}/v1/coral/sites/{site_id}/moderation", content=raw, headers=headers, timeout=5
    )


@pytest.fixture
def coral_site(live_server, site):
    """The site with Coral's signing secret stored through the admin endpoint."""
    release_database()
    stored = httpx.post(
        f"{live_server}/v1/coral/secret", json={"secret": SECRET}, headers=site.auth("admin")
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["url"].endswith(f"/v1/coral/sites/{site.id}/moderation")
    return site


def test_clean_comment_gets_no_verdict_and_rude_one_is_withheld(
    live_server, coral_site, start_worker
):
    start_worker(ready=True)

    clean = send(live_server, coral_site.id, coral_request("Thanks, a fair article."), SECRET)
    rude = send(
        live_server,
        coral_site.id,
        coral_request("You are a fucking idiot and your shit article is garbage."),
        SECRET,
    )

    assert (clean.status_code, clean.json()) == (200, {"actions": []})
    assert rude.status_code == 200, rude.text
    assert rude.json()["status"] in ("SYSTEM_WITHHELD", "REJECTED")
    assert {"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"} in rude.json()["actions"]


def test_whole_policy_runs_banned_author_by_coral_id_and_banned_words(
    live_server, coral_site, start_worker
):
    start_worker(ready=True)
    row = db.session.get(Site, coral_site.id)
    row.banned_words = ["spamword"]
    db.session.add(Author(site_id=coral_site.id, ref="coral-banned", status="banned"))
    db.session.commit()

    banned = send(live_server, coral_site.id, coral_request("Hello.", "coral-banned"), SECRET)
    word = send(live_server, coral_site.id, coral_request("Buy spamword now."), SECRET)
    html = send(live_server, coral_site.id, coral_request("<p>Nice <b>work</b></p>"), SECRET)

    assert banned.json() == {"status": "REJECTED", "actions": []}
    assert word.json() == {
        "status": "REJECTED",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
    }
    assert html.json() == {"actions": []}


def test_a_language_no_loaded_model_reads_is_withheld_as_the_worker_holds_it(
    live_server, coral_site, start_worker
):
    """The worker's profanity-check reads English only: a German comment is not approved on
    the scores of a model that cannot read it, unless the site scores such comments."""
    start_worker(ready=True)
    german = "Vielen Dank für den Artikel, aber der Autor versteht nichts von der Wirtschaft."

    held = send(live_server, coral_site.id, coral_request(german), SECRET)
    english = send(live_server, coral_site.id, coral_request("Thanks, a fair article."), SECRET)
    row = db.session.get(Site, coral_site.id)
    row.unsupported_language = "score"
    db.session.commit()
    scored = send(live_server, coral_site.id, coral_request(german), SECRET)

    assert held.json() == {"status": "SYSTEM_WITHHELD", "actions": []}
    assert english.json() == {"actions": []}
    # Scored anyway: profanity-check finds nothing to hold in it.
    assert scored.json() == {"actions": []}


def test_unsigned_forged_and_stale_requests_are_refused(live_server, coral_site, app, start_worker):
    payload = coral_request("Hello.")
    assert send(live_server, coral_site.id, payload).status_code == 401
    assert (
        send(live_server, coral_site.id, payload, "ssc_wrong_secret_0000000000").status_code == 401
    )
    assert send(live_server, coral_site.id, payload, header="sha256=00").status_code == 401

    # Rotation: with no overlap the replaced secret is stale at once, the new one works.
    app.config["CORAL_SECRET_OVERLAP_S"] = 0
    release_database()
    new = "ssc_fedcba9876543210fedcba9876543210"
    rotated = httpx.post(
        f"{live_server}/v1/coral/secret", json={"secret": new}, headers=coral_site.auth("admin")
    )
    assert rotated.json()["replaced"] == 1
    stale = send(live_server, coral_site.id, payload, SECRET)
    assert stale.status_code == 401 and "expired" in stale.json()["message"]
    start_worker(ready=True)
    # Coral sends several signatures during its own rotation: one matching is enough.
    assert send(live_server, coral_site.id, payload, SECRET, new).status_code == 200


def test_secret_needs_an_admin_key_and_a_real_secret(live_server, site):
    release_database()
    url = f"{live_server}/v1/coral/secret"
    assert httpx.post(url, json={"secret": SECRET}, headers=site.auth()).status_code == 403
    short = httpx.post(url, json={"secret": "short"}, headers=site.auth("admin"))
    assert short.status_code == 422 and "secret" in short.json()["errors"]["json"]


def test_no_live_worker_answers_503_at_once_so_coral_fails_open(
    live_server, coral_site, redis_server, redis_prefix
):
    started = time.monotonic()
    answer = send(live_server, coral_site.id, coral_request("Hello there."), SECRET)

    # Coral publishes the comment unscored on any non-2xx: the answer must come at once,
    # well inside its 200 ms budget, rather than at the analyze deadline.
    assert answer.status_code == 503, answer.text
    assert "worker" in answer.json()["message"]
    assert time.monotonic() - started < 0.5
    assert redis_server.xlen(f"{redis_prefix}:analyze") == 0

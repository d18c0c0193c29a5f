"""Perspective's face over real HTTP, answered by real workers through Redis (request/reply);
under load and failure: test_perspective_load.py."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.extensions import db
from service.models import AnalyzeFeedback
from tests.analyze_helpers import (
    CORAL_TIMEOUT_S,
    analyze,
    assert_perspective_error,
    coral_body,
    patient_deadline,  # noqa: F401 (autouse)
    release_database,
)
from tests.marks import ONE_BACKEND
from tests.worker_helpers import detoxify_settings


@ONE_BACKEND
def test_coral_call_is_scored_by_a_detoxify_worker_in_perspective_shape(
    database_url, live_server, site, start_worker, tiny_checkpoint, redis_server, redis_prefix
):
    worker = start_worker(ready=True, **detoxify_settings(tiny_checkpoint))

    answer = analyze(
        live_server, coral_body("You are an idiot."), site.site, timeout=CORAL_TIMEOUT_S
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    summary = body["attributeScores"]["TOXICITY"]["summaryScore"]
    assert summary["type"] == "PROBABILITY" and 0 <= summary["value"] <= 1
    assert set(body["attributeScores"]) == {"TOXICITY"}
    assert body["languages"] == ["en"]
    assert "clientToken" not in body
    assert "analyze pass: 1 requests, 1 texts" in worker.log()
    # The same text scored by the comment path gets the same score: one model, one scorer.
    from workers.scorers import load_scorer

    checkpoint, config_dir = tiny_checkpoint
    scorer = load_scorer(f"detoxify:{checkpoint}", "none", config_dir=config_dir)
    assert summary["value"] == pytest.approx(scorer.score(["You are an idiot."])[0]["toxicity"])


@ONE_BACKEND
def test_every_attribute_threshold_span_and_client_token(
    database_url, live_server, site, start_worker, tiny_checkpoint
):
    start_worker(ready=True, **detoxify_settings(tiny_checkpoint))
    text = "Thanks for the article. You are an idiot! Read it again."
    attributes = ["TOXICITY", "SEVERE_TOXICITY", "IDENTITY_ATTACK", "INSULT", "PROFANITY", "THREAT"]
    body = {
        "comment": {"text": text, "type": "PLAIN_TEXT"},
        "requestedAttributes": {name: {"scoreType": "PROBABILITY"} for name in attributes},
        "spanAnnotations": True,
        "clientToken": "coral-123",
        "sessionId": "s-1",
        "context": {"entries": [{"text": "the article"}]},
    }

    answer = analyze(live_server, body, None, headers={"X-Goog-Api-Key": site.site})

    assert answer.status_code == 200, answer.text
    scored = answer.json()
    assert scored["clientToken"] == "coral-123"
    assert set(scored["attributeScores"]) == set(attributes)
    spans = scored["attributeScores"]["INSULT"]["spanScores"]
    assert [text[s["begin"] : s["end"]] for s in spans] == [
        "Thanks for the article.",
        "You are an idiot!",
        "Read it again.",
    ]
    assert all(s["score"]["type"] == "PROBABILITY" for s in spans)
    values = {name: scored["attributeScores"][name]["summaryScore"]["value"] for name in attributes}

    # scoreThreshold leaves out the attributes below it, as Perspective does. The cut lies
    # between two scores, not on one: this call scores the text alone, the first beside its
    # sentences, and a padded batch moves a score in its last bits.
    low, high = sorted(values.values())[1:3]
    assert high - low > 1e-4, values
    cut = (low + high) / 2
    body = {
        "comment": {"text": text},
        "requestedAttributes": {name: {"scoreThreshold": cut} for name in attributes},
    }
    kept = analyze(live_server, body, None, headers={"Authorization": f"Bearer {site.site}"})
    assert kept.status_code == 200, kept.text
    assert set(kept.json()["attributeScores"]) == {n for n, v in values.items() if v >= cut}


@ONE_BACKEND
def test_a_language_the_model_was_not_trained_on_is_scored_and_says_so(
    database_url, live_server, site, start_worker, tiny_checkpoint
):
    start_worker(ready=True, **detoxify_settings(tiny_checkpoint))

    answer = analyze(live_server, coral_body("Du bist ein Idiot.", "de"), site.site)

    assert answer.status_code == 200, answer.text
    assert answer.json()["languages"] == ["en"]  # read as English: the model knows no German
    # Coral sends "en" for most locales: the worker detects the text's own language, says so,
    # and the English model still scores it (never a 4xx, never unscored).
    german = "Das ist der schlechteste Artikel, den ich in dieser Zeitung je gelesen habe."
    answer = analyze(live_server, coral_body(german, "en"), site.site)
    assert answer.status_code == 200, answer.text
    assert answer.json()["detectedLanguages"] == ["de"]
    assert answer.json()["languages"] == ["en"]
    assert "TOXICITY" in answer.json()["attributeScores"]


@ONE_BACKEND
def test_bad_requests_answer_400_in_perspective_shape_naming_the_problem(
    database_url, live_server, site, start_worker, tiny_checkpoint, app
):
    start_worker(ready=True, **detoxify_settings(tiny_checkpoint))
    key = site.site
    cases = [
        ({"comment": {"text": "hi"}, "requestedAttributes": {"FLIRTATION": {}}}, "FLIRTATION"),
        # The tiny checkpoint is shaped like detoxify:original: no sexual_explicit label.
        (
            {"comment": {"text": "hi"}, "requestedAttributes": {"SEXUALLY_EXPLICIT": {}}},
            "SEXUALLY_EXPLICIT",
        ),
        ({"comment": {"text": "   "}, "requestedAttributes": {"TOXICITY": {}}}, "non-empty"),
        ({"comment": {"text": "x" * 20001}, "requestedAttributes": {"TOXICITY": {}}}, "too long"),
        ({"requestedAttributes": {"TOXICITY": {}}}, "comment"),
        ({"comment": {"text": "hi"}}, "requestedAttributes"),
        ({"comment": {"text": "hi"}, "requestedAttributes": {}}, "requestedAttributes"),
        (
            {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 2}}},
            "scoreThreshold",
        ),
        ({"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "x": 1}, '"x"'),
        (["not", "an", "object"], "JSON"),
    ]
    for body, word in cases:
        assert_perspective_error(analyze(live_server, body, key), 400, "INVALID_ARGUMENT", word)
    release_database()
    broken = httpx.post(
        f"{live_server}/v1alpha1/comments:analyze?key={key}",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_perspective_error(broken, 400, "INVALID_ARGUMENT", "JSON")


def test_missing_or_wrong_key_answers_in_perspective_shape(live_server, site):
    body = coral_body("hello")

    assert_perspective_error(analyze(live_server, body, None), 403, "PERMISSION_DENIED", "key")
    assert_perspective_error(
        analyze(live_server, body, "civ_not-a-real-key"), 400, "INVALID_ARGUMENT", "API key"
    )


def test_no_live_worker_answers_503_at_once_and_leaves_nothing(
    live_server, site, analyze_stream, redis_server, redis_prefix
):
    started = time.monotonic()
    answer = analyze(live_server, coral_body("hello"), site.site)

    assert_perspective_error(answer, 503, "UNAVAILABLE", "worker")
    assert time.monotonic() - started < 0.5  # no waiting for a deadline nobody can meet
    assert analyze_stream.length() == 0


@pytest.fixture
def rate_limited(config: dict[str, Any]) -> None:
    """Rate limits on (they are bound when the app is made, so before it)."""
    config.update(RATELIMIT_ENABLED=True, RATELIMIT_PER_KEY="2 per minute")


def test_per_key_rate_limit_answers_429_in_perspective_shape_with_retry_after(
    rate_limited, make_site, live_server
):
    keys = make_site()

    first = [analyze(live_server, coral_body("hello"), keys.site) for _ in range(2)]
    third = analyze(live_server, coral_body("hello"), keys.site)

    assert [a.status_code for a in first] == [503, 503]  # counted, then no worker to answer
    assert_perspective_error(third, 429, "RESOURCE_EXHAUSTED", "Rate limit")
    assert int(third.headers["Retry-After"]) >= 1


def test_do_not_store_leaves_no_trace(
    live_server, site, start_worker, tiny_checkpoint, redis_server, redis_prefix, caplog, app
):
    worker = start_worker(ready=True, **detoxify_settings(tiny_checkpoint))
    secret = "my very private sentence about the river"

    answer = analyze(live_server, coral_body(secret, do_not_store=True), site.site)

    assert answer.status_code == 200, answer.text
    for name in redis_server.scan_iter(f"{redis_prefix}:*"):
        kind = redis_server.type(name)
        dumped = (
            json.dumps(redis_server.xrange(name))
            if kind == "stream"
            else json.dumps(redis_server.dump(name).decode("latin-1"))
        )
        assert "river" not in dumped, name
    assert not list(redis_server.scan_iter(f"{redis_prefix}:reply:*"))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AnalyzeFeedback)) == 0
    db.session.rollback()
    assert "river" not in worker.log()
    assert "river" not in caplog.text


def test_suggestscore_stores_the_label_per_site_and_honours_do_not_store(live_server, site):
    base = f"{live_server}/v1alpha1/comments:suggestscore"
    coral = {
        "comment": {"text": "a rejected comment"},
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}},
        "languages": ["en"],
        "communityId": "Example News",
        "clientToken": "comment-42",
        "doNotStore": False,
    }

    release_database()
    stored = httpx.post(base, params={"key": site.site}, json=coral)
    private = httpx.post(
        base, params={"key": site.site}, json={**coral, "doNotStore": True, "clientToken": "c-43"}
    )
    unknown = httpx.post(
        base,
        params={"key": site.site},
        json={**coral, "attributeScores": {"SPAM": {"summaryScore": {"value": 1}}}},
    )

    assert (stored.status_code, stored.json()) == (200, {"clientToken": "comment-42"})
    assert (private.status_code, private.json()) == (200, {"clientToken": "c-43"})
    assert_perspective_error(unknown, 400, "INVALID_ARGUMENT", "SPAM")
    rows = db.session.scalars(
        sa.select(AnalyzeFeedback)
        .where(AnalyzeFeedback.site_id == site.id)
        .order_by(AnalyzeFeedback.created_at, AnalyzeFeedback.id)
    ).all()
    assert [(r.client_token, r.attributes, r.text) for r in rows] == [
        ("comment-42", {"TOXICITY": 1.0}, "a rejected comment"),
        ("c-43", {"TOXICITY": 1.0}, None),
    ]
    assert rows[0].community_id == "Example News" and rows[0].languages == ["en"]
    db.session.rollback()


def test_a_text_of_many_sentences_gets_at_most_the_span_limit_covering_all_of_it():
    from service.dropin import sentence_spans

    text = " ".join(f"Sentence number {n} is here." for n in range(1, 11))
    assert len(sentence_spans(text, 50)) == 10
    spans = sentence_spans(text, 3)
    assert len(spans) == 3
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    pieces = [text[b:e] for b, e in spans]
    assert pieces[0].startswith("Sentence number 1 ") and pieces[0].endswith("3 is here.")
    assert " ".join(pieces) == text  # every sentence in exactly one run, in order
    assert sentence_spans(text, 0) == [(0, len(text))]

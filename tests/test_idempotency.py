"""Idempotency-Key: a retried submission never creates a second comment."""

from __future__ import annotations

import sqlalchemy as sa

from service.extensions import db
from service.models import Comment


def comment_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Comment))


def test_retry_with_same_key_and_body_returns_the_same_comment(submit, redis_server, redis_prefix):
    first = submit(headers={"Idempotency-Key": "req-1"})
    retry = submit(headers={"Idempotency-Key": "req-1"})
    assert first.status_code == retry.status_code == 202
    assert first.get_json()["id"] == retry.get_json()["id"]
    assert comment_count() == 1
    assert redis_server.xlen(f"{redis_prefix}:score") == 1  # enqueued once


def test_same_key_with_a_different_body_is_409(submit):
    submit(headers={"Idempotency-Key": "req-2"})
    conflict = submit(body="Something else", headers={"Idempotency-Key": "req-2"})
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.get_json()["errors"]["headers"]
    assert comment_count() == 1


def test_same_key_on_another_article_is_a_different_request(submit):
    submit(article="one", headers={"Idempotency-Key": "req-3"})
    assert submit(article="two", headers={"Idempotency-Key": "req-3"}).status_code == 409


def test_keys_are_scoped_per_site(submit, other_site):
    mine = submit(headers={"Idempotency-Key": "shared"})
    theirs = submit(headers={"Idempotency-Key": "shared"}, as_site=other_site)
    assert theirs.status_code == 202
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert comment_count() == 2


def test_without_a_key_each_submission_is_a_new_comment(submit):
    submit()
    submit()
    assert comment_count() == 2

"""The status counts moderate() keeps: per day and language (/v1/stats' languages) and per
article (/v1/queue/counts' held comments)."""

from __future__ import annotations

import importlib.util
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.api.stats import by_language
from service.cli import main
from service.extensions import db
from service.models import Article, ArticleStatusCount, Comment, DayStatusCount, utcnow
from service.moderation import status_counts
from service.moderation.locks import locked
from service.moderation.moderate import moderate
from service.moderation.reports import file_report
from service.moderation.states import CommentStatus
from service.moderation.status_counts import ArticleKey, DayKey
from service.rollups import start_of
from tests.review_helpers import make_comments, moderator_moves, policy_decides, set_created

TODAY = utcnow().date()


def kept() -> dict[tuple, int]:
    """Both tables as kept, as key → comments and (key, "reported") → reported comments,
    counts of zero left out."""
    db.session.expire_all()
    out = {}
    for kind, model in status_counts.TABLES.items():
        table = model.__table__
        for row in db.session.execute(sa.select(table)).all():
            key = kind(*(getattr(row, field) for field in kind._fields))
            out |= flattened(key, [getattr(row, column) for column in status_counts.COLUMNS[kind]])
    return out


def recounted() -> dict[tuple, int]:
    """What a recount of both from the comments gives, as ``kept`` gives them."""
    out = {}
    for kind in status_counts.TABLES:
        for key, values in status_counts.recounted(kind, None).items():
            out |= flattened(key, values)
    return out


def flattened(key: tuple, values: list[int] | tuple[int, ...]) -> dict[tuple, int]:
    comments, *reported = values
    out = {key: comments} if comments else {}
    if reported and reported[0]:
        out[key, "reported"] = reported[0]
    return out


def decide_in(ids: list[int], status: str, language: str | None, unsupported: bool = False):
    """The worker's decision: the language it read, then the policy's move."""
    for comment in db.session.scalars(sa.select(Comment).where(Comment.id.in_(ids))):
        comment.language = language
    reasons = [{"code": "unsupported_language", "language": language}] if unsupported else None
    policy_decides(ids, status, reasons=reasons)


@pytest.fixture
def history(client, site):
    """Comments over four days in three languages, moved every way a comment moves."""
    days = [make_comments(site.id, 4) for _ in range(4)]
    for n, ids in enumerate(days):
        for comment_id in ids:
            set_created(comment_id, start_of(TODAY) - timedelta(days=n, hours=-1))
    d0, d1, d2, d3 = days
    decide_in(d0[:2], "approved", "en")
    decide_in(d0[2:3], "held", "de", unsupported=True)  # d0[3] stays pending
    decide_in(d1, "held", "fr")
    decide_in(d2, "approved", None)
    decide_in(d3[:3], "rejected", "en")
    decide_in(d3[3:], "held", "en")
    moderator_moves(d1[:2], "approved")
    moderator_moves(d1[2:3], "rejected")
    moderator_moves(d1[:1], "rejected")  # an override of an override
    moderator_moves(d3[:1], "approved")
    mod = site.auth("moderator")
    bulk = client.post(
        "/v1/decisions/bulk", json={"ids": d2[:3], "decision": "reject"}, headers=mod
    ).get_json()
    client.post(f"/v1/decisions/bulk/{bulk['bulk_id']}/undo", headers=mod)
    client.post(f"/v1/comments/{d2[3]}/reports", json={"reason": "spam"}, headers=site.auth())
    client.delete(f"/v1/comments/{d0[0]}", headers=mod)
    return days


def test_every_kind_of_move_keeps_the_counts_equal_to_a_recount(site, history):
    counts = kept()
    assert counts == recounted()
    d1 = TODAY - timedelta(days=1)
    assert counts[DayKey(site.id, d1, "fr", "approved", False)] == 1
    assert counts[DayKey(site.id, d1, "fr", "rejected", False)] == 2
    assert counts[DayKey(site.id, TODAY, "de", "held", True)] == 1
    [article] = {comment.article_id for comment in db.session.scalars(sa.select(Comment))}
    # Every comment is of one article here; 15 of the 16 are decided (one stays pending).
    assert counts[ArticleKey(site.id, article, "deleted")] == 1
    assert sum(n for key, n in counts.items() if isinstance(key, ArticleKey)) == 15
    # One comment has an open report (it is approved or held: the queue counts it).
    reported = {key: n for key, n in counts.items() if key[-1] == "reported"}
    assert list(reported.values()) == [1]
    assert next(iter(reported))[0].status in ("approved", "held")
    # Pending comments are not kept: they are counted live.
    assert not [key for key in counts if key not in reported and key.status == "pending"]


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (timedelta(days=10), timedelta(0)),  # whole days and a partial last one
        (timedelta(days=2, hours=12), timedelta(hours=-1)),  # partial at both ends
        (timedelta(hours=5), timedelta(hours=-2)),  # inside one day
        (timedelta(days=3), timedelta(days=1)),  # whole days only
    ],
)
def test_languages_of_any_window_match_a_count_of_the_comments(site, history, since, until):
    now = start_of(TODAY) + timedelta(hours=2)
    window = (now - since, now - until)
    live = languages_live(site.id, *window)
    assert by_language(site.id, *window) == live
    assert sum(entry["received"] for entry in live) > 0


def languages_live(site_id, since, until):
    """The answer counted from the comments alone, as /v1/stats did before the counts."""
    rows = db.session.execute(
        sa.select(Comment.language, Comment.status, Comment.reason_codes).where(
            Comment.site_id == site_id, Comment.created_at >= since, Comment.created_at < until
        )
    ).all()
    counts = {}
    for language, status, codes in rows:
        entry = counts.setdefault(
            language,
            {"language": language, "received": 0, "approved": 0, "held": 0, "rejected": 0}
            | {"pending": 0, "unsupported": 0},
        )
        entry["received"] += 1
        entry["unsupported"] += status_counts.UNSUPPORTED in (codes or "")
        if status in entry:
            entry[status] += 1
    return sorted(counts.values(), key=lambda e: (-e["received"], e["language"] or ""))


def test_a_rolled_back_move_counts_nothing(site):
    [comment_id] = make_comments(site.id, 1)
    decide_in([comment_id], "held", "en")
    before = kept()
    moderate(db.session.get(Comment, comment_id), CommentStatus.APPROVED, actor="mod")
    db.session.rollback()
    assert kept() == before
    # And the next transaction does not inherit the rolled-back move's counts.
    moderator_moves([comment_id], "rejected")
    assert kept() == recounted()


def test_counts_rebuild_repairs_a_wrong_count(app, site, history):
    db.session.execute(sa.update(DayStatusCount).values(comments=DayStatusCount.comments + 7))
    db.session.execute(
        sa.update(ArticleStatusCount).values(reported=ArticleStatusCount.reported + 2)
    )
    db.session.commit()
    assert kept() != recounted()
    result = app.test_cli_runner().invoke(main, ["counts", "rebuild", "--site", str(site.id)])
    assert result.exit_code == 0, result.output
    rows = [key for key in recounted() if key[-1] != "reported"]
    assert json.loads(result.output.strip().splitlines()[-1])["status_counts"] == len(rows)
    assert kept() == recounted()


@pytest.mark.backends("postgresql")  # SQLite runs one writer at a time: nothing to race
def test_concurrent_moves_of_one_day_add_up(app, site):
    ids = make_comments(site.id, 40)
    decide_in(ids, "held", "en")
    errors = []

    def moderator(chunk: list[int]) -> None:
        with app.app_context():
            try:
                for comment_id in chunk:
                    comment = db.session.get(Comment, comment_id, with_for_update=True)
                    moderate(comment, CommentStatus.APPROVED, actor="mod")
                    db.session.commit()
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=moderator, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    counts = kept()
    assert counts[DayKey(site.id, TODAY, "en", "approved", False)] == 40
    assert DayKey(site.id, TODAY, "en", "held", False) not in counts
    [article] = {comment.article_id for comment in db.session.scalars(sa.select(Comment))}
    assert counts[ArticleKey(site.id, article, "approved")] == 40
    assert counts == recounted()


def reported_kept(site_id: int) -> dict[tuple, int]:
    """The reported counts kept, as (article ref, status) → comments with open reports."""
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Article.ref, ArticleStatusCount.status, ArticleStatusCount.reported)
        .join(Article, Article.id == ArticleStatusCount.article_id)
        .where(ArticleStatusCount.site_id == site_id, ArticleStatusCount.reported != 0)
    ).all()
    return {(ref, status): n for ref, status, n in rows}


def test_reports_filed_moved_and_resolved_keep_the_reported_counts(client, site):
    a = make_comments(site.id, 3, article="a")
    b = make_comments(site.id, 2, article="b")
    policy_decides(a, "approved")
    policy_decides(b[:1], "held")  # b[1] stays pending
    mod, reader = site.auth("moderator"), site.auth()

    def report(comment_id: int, who: str) -> None:
        body = {"reason": "abusive", "reporter_id": who}
        answer = client.post(f"/v1/comments/{comment_id}/reports", json=body, headers=reader)
        assert answer.status_code == 201, answer.get_json()

    def decide(comment_id: int, decision: str) -> None:
        answer = client.post(
            f"/v1/comments/{comment_id}/decision", json={"decision": decision}, headers=mod
        )
        assert answer.status_code == 200, answer.get_json()

    report(a[0], "r1")
    report(a[0], "r2")  # a second open report: still one reported comment
    report(b[0], "r1")
    report(b[1], "r1")  # pending: not counted until it is decided
    assert reported_kept(site.id) == {("a", "approved"): 1, ("b", "held"): 1}
    assert kept() == recounted()
    for who in ("r3", "r4", "r5"):
        report(a[1], who)  # the third report sends it back to held (requeue_reports = 3)
    assert reported_kept(site.id) == {("a", "approved"): 1, ("a", "held"): 1, ("b", "held"): 1}
    policy_decides(b[1:], "held")
    assert reported_kept(site.id)[("b", "held")] == 2
    decide(a[0], "approve")  # a review resolves both of its reports
    decide(b[0], "reject")
    assert reported_kept(site.id) == {("a", "held"): 1, ("b", "held"): 1}
    moderate(db.session.get(Comment, a[1]), CommentStatus.REJECTED, actor="mod", review=False)
    db.session.commit()  # not a review: its reports stay open, on a rejected comment
    assert reported_kept(site.id) == {("b", "held"): 1}
    assert kept() == recounted()
    counts = client.get("/v1/queue/counts?by_article=true", headers=mod).get_json()
    assert counts["site"]["reported"] == 1
    # Article a has no work waiting any more (approved, approved, rejected).
    listed = [(x["article"]["ref"], x["held"], x["reported"]) for x in counts["articles"]]
    assert listed == [("b", 1, 1)]


@pytest.mark.backends("postgresql")  # SQLite runs one writer at a time: nothing to race
def test_concurrent_reports_and_reviews_count_each_comment_once(app, site):
    ids = make_comments(site.id, 12)
    decide_in(ids, "approved", "en")
    errors = []

    def reader(who: str) -> None:
        with app.app_context():
            try:
                for comment_id in ids:
                    file_report(
                        comment_id,
                        reason="abusive",
                        reporter=who,
                        note=None,
                        actor=who,
                        requeue_reports=2,
                    )
                    db.session.commit()
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    def moderator() -> None:
        with app.app_context():
            try:
                for comment_id in ids[::2]:
                    [comment] = locked(Comment.id == comment_id)
                    moderate(comment, CommentStatus.APPROVED, actor="mod", review=True)
                    db.session.commit()
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=reader, args=(f"r{n}",)) for n in range(3)]
    threads.append(threading.Thread(target=moderator))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert kept() == recounted()


def test_the_migration_backfills_the_reported_counts_kept(client, site, history):
    path = "service/migrations/versions/a7d3e9c1b5f2_article_reported_counts.py"
    spec = importlib.util.spec_from_file_location(
        "reported_counts", Path(__file__).parents[1] / path
    )
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    before = kept()
    assert [key for key in before if key[-1] == "reported"]
    db.session.execute(sa.update(ArticleStatusCount).values(reported=0))
    db.session.execute(sa.text(migration.BACKFILL))
    db.session.commit()
    assert kept() == before

"""comment.open_reports stays exact through every path, and the queue's reported counts read it."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa

from service.cli import main
from service.extensions import db
from service.models import Comment, Report
from tests.marks import POSTGRES_ONLY
from tests.review_helpers import make_comments, policy_decides


def report(client, site, comment_id: int, reporter: str) -> None:
    answer = client.post(
        f"/v1/comments/{comment_id}/reports",
        json={"reason": "spam", "reporter_id": reporter},
        headers=site.auth(),
    )
    assert answer.status_code == 201, answer.get_json()


def counters(site_id: int) -> dict[int, int]:
    """comment id: open_reports, as stored."""
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Comment.id, Comment.open_reports).where(Comment.site_id == site_id)
    )
    return dict(rows.all())


def truth(site_id: int) -> dict[int, int]:
    """comment id: its unresolved reports, counted from the report table."""
    open_reports = dict.fromkeys(counters(site_id), 0)
    rows = db.session.execute(
        sa.select(Report.comment_id, sa.func.count())
        .where(Report.site_id == site_id, Report.resolved_at.is_(None))
        .group_by(Report.comment_id)
    )
    open_reports.update(rows.all())
    return open_reports


def reported(client, site, **params) -> int:
    answer = client.get("/v1/queue/counts", query_string=params, headers=site.auth("moderator"))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["site"]["reported"]


def exact(site_id: int) -> dict[int, int]:
    stored = counters(site_id)
    assert stored == truth(site_id)
    return stored


def test_counters_follow_reports_decisions_bulk_undo_and_deletes(client, site):
    approved = make_comments(site.id, 3)
    held = make_comments(site.id, 2, article="article-2")
    policy_decides(approved, "approved")
    policy_decides(held, "held")
    for comment_id in [*approved, *held]:
        report(client, site, comment_id, "r1")
        report(client, site, comment_id, "r2")
    report(client, site, approved[0], "r1")  # the same reader's open report: not counted twice
    assert exact(site.id) == dict.fromkeys([*approved, *held], 2)
    assert reported(client, site) == 5
    # Holding keeps reports open; approving answers them.
    decide = f"/v1/comments/{held[0]}/decision"
    answer = client.post(decide, json={"decision": "approve"}, headers=site.auth("moderator"))
    assert answer.status_code == 200, answer.get_json()
    assert exact(site.id)[held[0]] == 0
    assert reported(client, site) == 4
    # A bulk reject answers the reports of what it moves; its undo reopens none.
    bulk = client.post(
        "/v1/decisions/bulk",
        json={"ids": approved[:2], "decision": "reject"},
        headers=site.auth("moderator"),
    ).get_json()
    assert [exact(site.id)[i] for i in approved] == [0, 0, 2]
    undone = client.post(
        f"/v1/decisions/bulk/{bulk['bulk_id']}/undo", headers=site.auth("moderator")
    )
    assert undone.status_code == 200, undone.get_json()
    assert [exact(site.id)[i] for i in approved] == [0, 0, 2]
    assert reported(client, site) == 2
    # A deleted comment keeps its reports, and leaves the reported count.
    deleted = client.delete(f"/v1/comments/{held[1]}", headers=site.auth("moderator"))
    assert deleted.status_code in (200, 204), deleted.get_json()
    exact(site.id)
    assert reported(client, site) == 1
    assert reported(client, site, article="article-2") == 0


def test_the_reported_count_is_per_article_and_per_site(client, site, other_site):
    mine = make_comments(site.id, 2, article="a")
    theirs = make_comments(other_site.id, 1, article="a")
    policy_decides(mine, "approved")
    policy_decides(theirs, "approved")
    for comment_id in mine:
        report(client, site, comment_id, "r1")
    report(client, other_site, theirs[0], "r1")
    answer = client.get(
        "/v1/queue/counts", query_string={"by_article": "true"}, headers=site.auth("moderator")
    ).get_json()
    assert answer["site"]["reported"] == 2
    assert [(a["article"]["ref"], a["reported"]) for a in answer["articles"]] == [("a", 2)]


@POSTGRES_ONLY
def test_concurrent_reports_and_a_resolution_add_up(app, client, site):
    """Each thread is its own request, session and connection: no increment is lost."""
    [comment_id] = make_comments(site.id)
    policy_decides([comment_id], "approved")
    readers = [f"reader-{i}" for i in range(8)]
    start = threading.Barrier(len(readers))

    def file(reader: str) -> None:
        with app.test_client() as own:
            start.wait()
            report(own, site, comment_id, reader)

    threads = [threading.Thread(target=file, args=(r,)) for r in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert exact(site.id) == {comment_id: len(readers)}


def test_rebuild_recounts_wrong_counters(app, client, site):
    ids = make_comments(site.id, 3)
    policy_decides(ids, "approved")
    report(client, site, ids[0], "r1")
    db.session.execute(sa.update(Comment).where(Comment.id.in_(ids[:2])).values(open_reports=7))
    db.session.commit()
    result = app.test_cli_runner().invoke(main, ["counts", "rebuild", "--site", str(site.id)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["open_reports_fixed"] == 2
    assert exact(site.id) == {ids[0]: 1, ids[1]: 0, ids[2]: 0}


@pytest.mark.parametrize("args", [["--site", "999999"]])
def test_rebuild_names_an_unknown_site(app, args):
    result = app.test_cli_runner().invoke(main, ["counts", "rebuild", *args])
    assert result.exit_code != 0
    assert "no site 999999" in result.output

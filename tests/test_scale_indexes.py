"""The scale indexes exist after migrating, and the moderator reads' plans use them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bench.scale_seed import seed
from service.extensions import db
from service.moderation.policy import LABELS
from service.score_key import index_name
from tests.marks import POSTGRES_ONLY

NEW_INDEXES = {
    "comment": {
        *(index_name(label) for label in (None, *LABELS)),
        "ix_comment_site_status_max_score",
        "ix_comment_waiting_article",
        "ix_comment_parent",
        "ix_comment_open_reported",
        "ix_comment_site_created_language",
    },
    "moderation_event": {
        "ix_event_site_decided",
        "ix_event_site_human",
        "ix_event_site_first_review",
    },
    "report": {"ix_report_site_open", "ix_report_site_created", "ix_report_site_resolved"},
}
# Enough rows that a sequential scan is the dearer plan; the bench seeds them by SQL.
SEEDED = 30_000


def index_names(table: str) -> set[str]:
    """The indexes the database has on ``table`` (expression ones included)."""
    if db.engine.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE tablename = :table"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
    return set(db.session.scalars(sa.text(query), {"table": table}))


def test_migrations_create_the_scale_indexes(app):
    for table, names in NEW_INDEXES.items():
        assert names <= index_names(table), table
    # Replaced by ix_comment_site_status_max_score, which the coalesced sort key can use.
    assert "ix_comment_site_status_score" not in index_names("comment")


@pytest.fixture
def seeded(app, site) -> Iterator[dict[str, Any]]:
    """SEEDED comments of a year on ``site``, vacuumed and analyzed (Postgres only: plans
    are checked on Postgres, the production database; the tests are marked so)."""
    assert db.engine.dialect.name == "postgresql", "mark the test POSTGRES_ONLY"
    # An open transaction of ours would keep VACUUM from marking pages all-visible, and
    # the planner from pricing index-only scans as such.
    db.session.close()
    yield seed(db.engine, site.id, SEEDED)


@pytest.fixture
def statements(app) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the app sends while the test runs, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    yield sent
    sa.event.remove(db.engine, "before_cursor_execute", record)


def plan_of(statement: str, parameters: Any, *, seqscan: bool = True, analyze: bool = False):
    """Every node of Postgres's plan of ``statement`` (``seqscan``: allowed; ``analyze``:
    run it, for actual rows and heap fetches)."""
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    with db.engine.connect() as conn:
        if not seqscan:
            conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.exec_driver_sql(f"EXPLAIN ({options}) {statement}", parameters).scalar()
        conn.rollback()
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        yield node
        nodes.extend(node.get("Plans", ()))


def plan_indexes(statement: str, parameters: Any, *, seqscan: bool = True) -> set[str]:
    """The index names in Postgres's plan of ``statement`` (``seqscan``: allowed)."""
    nodes = plan_of(statement, parameters, seqscan=seqscan)
    return {node["Index Name"] for node in nodes if "Index Name" in node}


def scan_of(statement: str, parameters: Any, index: str) -> dict[str, Any]:
    """The plan node (run: EXPLAIN ANALYZE) of ``statement`` that reads ``index``."""
    nodes = list(plan_of(statement, parameters, analyze=True))
    scans = [node for node in nodes if node.get("Index Name") == index]
    assert scans, f"{index} not in the plan: {nodes}"
    return scans[0]


def used(sent: list[tuple[str, Any]], table: str) -> list[tuple[str, set[str]]]:
    """(statement, indexes of its plan) of each statement that reads ``table``."""
    reads = [(s, p) for s, p in sent if s.lstrip().startswith("SELECT") and f"FROM {table}" in s]
    return [(statement, plan_indexes(statement, parameters)) for statement, parameters in reads]


def request(client, site, method: str, path: str, params: dict[str, Any]) -> None:
    auth = site.auth("moderator")
    if method == "GET":
        answer = client.get(path, query_string=params, headers=auth)
    else:
        answer = client.post(path, json=params, headers=auth)
    assert answer.status_code == 200, answer.get_json()


@POSTGRES_ONLY
def test_score_sort_by_label_reads_the_labels_held_index(client, site, seeded, statements):
    query = {"status": "held", "sort": "-score", "label": "toxicity"}
    request(client, site, "GET", "/v1/queue", query)
    [(statement, indexes)] = used(statements, "comment JOIN article")
    # The label's column and the status are literals, so a generic plan can match too.
    assert "comment.score_toxicity" in statement and "'held'" in statement
    assert "ix_comment_held_toxicity_score" in indexes


@POSTGRES_ONLY
def test_score_sort_without_label_reads_a_max_score_index(client, site, seeded, statements):
    request(client, site, "GET", "/v1/queue", {"sort": "-score"})
    [(_, indexes)] = used(statements, "comment JOIN article")
    assert indexes & {"ix_comment_held_max_score", "ix_comment_site_status_max_score"}


@POSTGRES_ONLY
def test_dry_run_counts_once_through_the_labels_index(client, site, seeded, statements):
    body = {
        "filter": {"status": "held", "label": "toxicity", "min_score": 0.9},
        "decision": "reject",
        "dry_run": True,
    }
    request(client, site, "POST", "/v1/decisions/bulk", body)
    counts = [(s, p) for s, p in statements if "count(" in s and "FROM comment" in s]
    assert len(counts) == 1, [s for s, _ in counts]
    [(statement, parameters)] = counts
    # Read from the index alone: it carries the label's column, so no matching row is
    # fetched from the table (one fetch per match made it 700 ms at 10M).
    scan = scan_of(statement, parameters, "ix_comment_held_toxicity_score")
    assert scan["Node Type"] == "Index Only Scan"
    # A page another test's open transaction kept VACUUM from marking all-visible is
    # still fetched; the JSON key fetched every match.
    assert scan["Actual Rows"] > 100
    assert scan["Heap Fetches"] < scan["Actual Rows"] / 10


@POSTGRES_ONLY
def test_counts_by_article_read_the_kept_counts_and_the_waiting_index(
    client, site, seeded, statements
):
    request(client, site, "GET", "/v1/queue/counts", {"by_article": "true"})
    sent = list(statements)
    # Held and reported comments: the counts moderate() and the reports keep per article,
    # by their primary key.
    # (The table has a row per article and status: a seq scan is cheaper at this size, so
    # the plan is asked for without one.)
    kept = [(s, p) for s, p in sent if "FROM article_status_count" in s]
    assert len(kept) == 2  # the site's totals, the busiest articles
    for statement, parameters in kept:
        assert "article_status_count_pkey" in plan_indexes(statement, parameters, seqscan=False)
    # Pending ones live, and the oldest of each: index probes, no scan of the table.
    plans = used(sent, "comment")
    pending = [i for s, i in plans if "comment.status = 'pending'" in s and "GROUP BY" in s]
    assert pending and pending[0]
    firsts = [i for s, i in plans if "min(comment.created_at)" in s]
    assert firsts and all(
        i
        & {
            "ix_comment_waiting_article",
            "ix_comment_site_status_created",
            "ix_comment_status_created",
        }
        for i in firsts
    )
    # No comment or report is read for the reported counts.
    assert not [s for s, _ in sent if "open_reports" in s or "FROM report" in s]


@POSTGRES_ONLY
def test_stats_read_decisions_and_reports_from_their_indexes(client, site, seeded, statements):
    request(client, site, "GET", "/v1/stats", {})
    events = used(statements, "moderation_event")
    # A single day's few events may be read through the narrower (site_id, created_at)
    # index, which serves as well; no read may scan the table.
    by_window = {
        "ix_event_site_decided",
        "ix_event_site_human",
        "ix_event_site_created",
        "ix_event_site_first_review",
        "moderation_event_pkey",  # the policy's newest decisions, newest first
    }
    missed = [(s, i) for s, i in events if not i & by_window]
    assert events and not missed, missed
    # The partial days' decisions (whole days are rolled up): a window index of events.
    decisions = [i for s, i in events if "moderation_event.policy_status" in s]
    assert decisions and decisions[0] & {"ix_event_site_decided", "ix_event_site_created"}
    # Overrides come from the decisions' own policy_status: no event is joined to another.
    assert not [s for s, _ in events if "moderation_event_1" in s]
    reviews = [i for s, i in events if "moderation_event.latency_s IS NOT NULL" in s]
    assert reviews and reviews[0] == {"ix_event_site_first_review"}
    reports = [i for s, i in used(statements, "report") if "FILTER" in s]
    assert reports and reports[0] & {"ix_report_site_created", "ix_report_site_resolved"}
    received = [i for s, i in used(statements, "comment") if "comment.created_at >=" in s]
    by_time = {"ix_comment_site_status_created", "ix_comment_site_created_language"}
    assert received and received[0] & by_time
    languages = [i for s, i in used(statements, "comment") if "GROUP BY comment.language" in s]
    by_time = {*by_time, "ix_comment_status_created"}  # the pending ones of whole days
    assert languages and all(i & by_time for i in languages)
    # The window's whole days: the kept per-day counts, by their primary key.
    days = used(statements, "day_status_count")
    assert days and days[0][1] == {"day_status_count_pkey"}

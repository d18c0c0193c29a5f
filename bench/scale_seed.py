"""A year of one site seeded straight through SQL, for bench/scale.py and bench/retention.py.

``generate_series`` writes the comments (a few busy articles and authors, 10% held, 90%
English and the rest German, French and Spanish), one policy event per decision,
moderator moves, ~3.6% reported, the authors' counts and the kept status counts,
then ANALYZEs as autovacuum would have. ``seed`` returns the refs and ids the timed routes need.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import comment_texts
from service.models import utcnow
from service.moderation.status_counts import recount_statements

TEXTS = 2_000  # distinct real comment bodies the seed cycles through
# Inserted per statement: bounds the seed's memory and WAL per transaction.
SEED_BATCH = 500_000
TABLES = ("comment", "moderation_event", "report", "author", "article")

# One row per comment, all in SQL. The randoms: r_art and r_auth skew towards low ids
# (power laws: a few busy articles and prolific authors; the busiest of 1,000
# articles gets 1% of the comments), r_fate picks the status,
# r_tox the toxicity. ids rise with created_at, as they do in a live table.
SEED_COMMENTS = """
INSERT INTO comment (id, site_id, article_id, author_id, body, status, scores, model,
                     reasons, max_score, reason_codes, created_at, scored_at, decided_at,
                     decided_by, language, score_toxicity, score_severe_toxicity,
                     score_obscene, score_threat, score_insult, score_identity_attack,
                     score_sexual_explicit)
SELECT g.i, :site, :first_article + floor(:articles * power(g.r_art, 1.5))::bigint,
       :first_author + floor(:authors * power(g.r_auth, 2))::bigint,
       t.body, f.status,
       CASE WHEN f.status <> 'pending' THEN json_build_object(
           'toxicity', s.toxicity, 'severe_toxicity', s.severe_toxicity,
           'obscene', s.obscene, 'threat', s.threat, 'insult', s.insult,
           'identity_attack', s.identity_attack, 'sexual_explicit', s.sexual_explicit) END,
       CASE WHEN f.status <> 'pending' THEN 'detoxify:original@0.5.2' END,
       CASE f.status WHEN 'held' THEN
            json_build_array(json_build_object('code', 'toxicity', 'label', 'toxicity',
                                               'score', f.tox, 'threshold', 0.6))
            WHEN 'rejected' THEN json_build_array(json_build_object('code', 'banned_word',
                                                                    'word', 'spamword'))
            ELSE '[]'::json END,
       CASE WHEN f.status <> 'pending' THEN f.tox END,
       CASE f.status WHEN 'held' THEN ' toxicity ' WHEN 'rejected' THEN ' banned_word ' END,
       f.created,
       CASE WHEN f.status <> 'pending' THEN f.created + interval '2 seconds' END,
       CASE WHEN f.status <> 'pending' THEN f.created + interval '2 seconds' END,
       CASE WHEN f.status <> 'pending' THEN 'policy' END,
       CASE WHEN f.status = 'pending' THEN NULL WHEN g.i % 100 < 90 THEN 'en'
            WHEN g.i % 100 < 94 THEN 'de' WHEN g.i % 100 < 97 THEN 'fr' ELSE 'es' END,
       s.toxicity, s.severe_toxicity, s.obscene, s.threat, s.insult, s.identity_attack,
       s.sexual_explicit
FROM (SELECT i, random() AS r_art, random() AS r_auth, random() AS r_fate,
             random() AS r_tox
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS s(i)) AS g
CROSS JOIN LATERAL (
    SELECT fate.status,
           CAST(:start AS timestamp)
               + CAST(:span AS interval) * (CAST(g.i - :first0 AS float8) / :total) AS created,
           CASE fate.status WHEN 'held' THEN 0.6 + 0.4 * g.r_tox
                WHEN 'rejected' THEN 0.5 * g.r_tox
                ELSE 0.3 * power(g.r_tox, 2) END AS tox
    FROM (SELECT CASE WHEN g.i > :last_decided THEN 'pending'
                      WHEN g.r_fate < 0.10 THEN 'held'
                      WHEN g.r_fate < 0.15 THEN 'rejected'
                      ELSE 'approved' END AS status) AS fate
) AS f
LEFT JOIN LATERAL (
    -- Each label's score (none while pending), the JSON's and the columns' alike.
    SELECT f.tox AS toxicity, f.tox / 8 AS severe_toxicity, f.tox / 2 AS obscene,
           f.tox / 10 AS threat, f.tox * 0.7 AS insult, f.tox / 9 AS identity_attack,
           f.tox / 12 AS sexual_explicit
    WHERE f.status <> 'pending'
) AS s ON true
JOIN bench_text AS t ON t.n = g.i % :texts
"""
SEED_POLICY_EVENTS = """
INSERT INTO moderation_event (site_id, comment_id, from_status, to_status, actor,
                              reason_code, created_at)
SELECT site_id, id, 'pending', status, 'policy', btrim(reason_codes), decided_at
FROM comment WHERE site_id = :site AND status <> 'pending' AND id BETWEEN :first AND :last
"""
# A third of the comments ever held were decided by a moderator; they are no longer held.
SEED_MODERATOR_MOVES = """
WITH moved AS (
    UPDATE comment SET status = CASE WHEN id % 5 = 0 THEN 'rejected' ELSE 'approved' END,
                       decided_by = 'moderator-' || (id % 4),
                       decided_at = created_at + interval '40 minutes'
    WHERE site_id = :site AND status = 'held' AND id % 3 = 0 AND id BETWEEN :first AND :last
    RETURNING id, site_id, status, decided_by, decided_at
)
INSERT INTO moderation_event (site_id, comment_id, from_status, to_status, actor, created_at)
SELECT site_id, id, 'held', status, decided_by, decided_at FROM moved
"""
SEED_REPORTS = """
INSERT INTO report (site_id, comment_id, reason, reporter_ref, created_at, resolved_at,
                    resolved_by)
SELECT site_id, id, (ARRAY['offensive', 'abusive', 'spam', 'other'])[1 + id % 4],
       'reader-' || (id % 997), created_at + interval '1 hour',
       CASE WHEN id % 10 < 7 THEN created_at + interval '1 day' END,
       CASE WHEN id % 10 < 7 THEN 'moderator-1' END
FROM comment
WHERE site_id = :site AND status IN ('approved', 'held') AND id BETWEEN :first AND :last
      AND (hashint8(id) % 1000 + 1000) % 1000 < 40
"""
SEED_AUTHOR_COUNTS = """
UPDATE author SET approved_count = c.approved, rejected_count = c.rejected
FROM (SELECT author_id, count(*) FILTER (WHERE status = 'approved') AS approved,
             count(*) FILTER (WHERE status = 'rejected') AS rejected
      FROM comment WHERE site_id = :site GROUP BY author_id) AS c
WHERE author.id = c.author_id
"""

# What service.moderation.report_counts keeps on a live site.
SEED_OPEN_REPORTS = """
UPDATE comment SET open_reports = r.n
FROM (SELECT comment_id, count(*) AS n FROM report
      WHERE site_id = :site AND resolved_at IS NULL GROUP BY comment_id) AS r
WHERE comment.id = r.comment_id
"""


def seed(engine: sa.Engine, site_id: int, comments: int) -> dict[str, Any]:
    """A year of ``comments`` on one site, by SQL; returns the refs and ids routes need."""
    articles = max(10, comments // 1000)
    authors = max(100, comments // 20)
    now = utcnow()
    start = (now - timedelta(days=365)).replace(tzinfo=None)  # the columns hold naive UTC
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(0.15)"))
        conn.execute(sa.text("CREATE TEMP TABLE bench_text (n int PRIMARY KEY, body text)"))
        texts = comment_texts(TEXTS)
        conn.execute(
            sa.text("INSERT INTO bench_text VALUES (:n, :body)"),
            [{"n": n, "body": body} for n, body in enumerate(texts)],
        )
        conn.execute(
            sa.text(
                "INSERT INTO article (site_id, ref, title, url, comments_open, created_at,"
                " updated_at) SELECT :site, 'article-' || i, 'Article ' || i,"
                " 'https://news.example/' || i, true, :start, :start"
                " FROM generate_series(1, :n) AS g(i) ORDER BY i"
            ),
            {"site": site_id, "n": articles, "start": start},
        )
        conn.execute(
            sa.text(
                "INSERT INTO author (site_id, ref, name, status, approved_count,"
                " rejected_count, created_at) SELECT :site, 'reader-' || i, 'Reader ' || i,"
                " 'active', 0, 0, :start FROM generate_series(1, :n) AS g(i) ORDER BY i"
            ),
            {"site": site_id, "n": authors, "start": start},
        )
        first_id = conn.scalar(sa.text("SELECT coalesce(max(id), 0) + 1 FROM comment"))
    last_id = first_id + comments - 1
    # The newest 0.01% are still waiting for the worker.
    last_decided = last_id - max(5, comments // 10_000)
    common = {"site": site_id, "articles": articles, "authors": authors, "texts": TEXTS}
    with engine.connect() as conn:
        common["first_article"] = conn.scalar(
            sa.text("SELECT min(id) FROM article WHERE site_id = :site"), common
        )
        common["first_author"] = conn.scalar(
            sa.text("SELECT min(id) FROM author WHERE site_id = :site"), common
        )
    for first in range(first_id, last_id + 1, SEED_BATCH):
        last = min(last_id, first + SEED_BATCH - 1)
        bounds = {**common, "first": first, "last": last}
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT setseed(:s)"), {"s": (first % 1000) / 1000})
            conn.execute(
                sa.text(SEED_COMMENTS),
                {
                    **bounds,
                    "first0": first_id,
                    "total": comments,
                    "start": start,
                    "span": timedelta(days=365) - timedelta(minutes=5),
                    "last_decided": last_decided,
                },
            )
            conn.execute(sa.text(SEED_POLICY_EVENTS), bounds)
            conn.execute(sa.text(SEED_MODERATOR_MOVES), bounds)
            conn.execute(sa.text(SEED_REPORTS), bounds)
    with engine.begin() as conn:
        conn.execute(sa.text(SEED_AUTHOR_COUNTS), common)
        conn.execute(sa.text(SEED_OPEN_REPORTS), common)
        # What service.moderation.status_counts keeps (its own recount, as the migration's).
        for statement in recount_statements(site_id):
            conn.execute(statement)
        # The ids were given explicitly: move the sequence past them.
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('comment', 'id'), :last)"),
            {"last": last_id},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # As autovacuum would have by now: statistics and the visibility map.
        conn.execute(sa.text("VACUUM ANALYZE"))
    return refs(engine, site_id, last_decided)


def refs(engine: sa.Engine, site_id: int, last_decided: int | None = None) -> dict[str, Any]:
    """The refs and ids the timed routes need, and the tables' sizes, of a seeded database
    (``last_decided``: the newest decided comment; found when not given)."""
    with engine.connect() as conn:
        if last_decided is None:
            last_decided = conn.scalar(
                sa.text(
                    "SELECT max(id) FROM comment WHERE site_id = :site AND status <> 'pending'"
                ),
                {"site": site_id},
            )
        last_id = conn.scalar(sa.text("SELECT max(id) FROM comment"))
        busy = conn.execute(
            sa.text(
                "SELECT a.ref FROM article a JOIN comment c ON c.article_id = a.id"
                " WHERE c.site_id = :site AND c.id >= :last - 5000"
                " GROUP BY a.ref ORDER BY count(*) DESC LIMIT 1"
            ),
            {"site": site_id, "last": last_id},
        ).scalar_one()
        author = conn.execute(
            sa.text(
                "SELECT a.ref FROM author a JOIN comment c ON c.author_id = a.id"
                " WHERE c.id >= :last - 5000 GROUP BY a.ref ORDER BY count(*) DESC LIMIT 1"
            ),
            {"last": last_id},
        ).scalar_one()
        sizes = {
            table: conn.scalar(sa.text(f"SELECT pg_total_relation_size('{table}')"))
            for table in TABLES
        }
        counts = {table: conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in TABLES}
    return {
        "busy_article": busy,
        "busy_author": author,
        "comment_id": last_decided,
        "table_bytes": sizes,
        "rows": counts,
    }

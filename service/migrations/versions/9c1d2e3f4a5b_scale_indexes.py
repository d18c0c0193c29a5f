"""scale indexes and daily stats rollups: score sorts, waiting counts, stats, open reports

Revision ID: 9c1d2e3f4a5b
Revises: c4f1d2e8a913
Create Date: 2026-12-01 22:10:00

On Postgres every index is built CONCURRENTLY outside the migration's transaction, so
upgrading a live database never locks writes to its comments (a failed build leaves an
INVALID index: drop it and upgrade again). SQLite builds them in place.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "9c1d2e3f4a5b"
down_revision = "c4f1d2e8a913"
branch_labels = None
depends_on = None

# This revision's SQL as it was written: the labels and their sort keys over the JSON
# scores (revision f3b9d6a2c8e1 moves the keys onto per-label columns), frozen here so a
# later change to service.score_key cannot change what upgrading through it builds.
LABELS = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
)


def score_sql(label: str | None, dialect: str) -> str:
    if label is None:
        score = "max_score"
    elif dialect == "postgresql":
        score = f"CAST((scores ->> '{label}') AS FLOAT)"
    else:
        score = f"CAST(JSON_EXTRACT(scores, '$.{label}') AS FLOAT)"
    return f"coalesce({score}, -1.0)"


def index_name(label: str | None) -> str:
    return f"ix_comment_held_{label or 'max'}_score"


def index_sql(label: str | None, dialect: str, *, concurrently: bool = False) -> str:
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {index_name(label)} ON comment "
        f"(site_id, ({score_sql(label, dialect)}) DESC, id DESC) WHERE status = 'held'"
    )


def _indexes(dialect: str, concurrently: bool) -> list[str]:
    how = "CONCURRENTLY " if concurrently else ""
    pg = dialect == "postgresql"
    decided_columns = (
        "(site_id, created_at) INCLUDE (id, comment_id, actor, from_status, to_status, reason_code)"
        if pg
        else "(site_id, created_at, actor, from_status, to_status, reason_code, comment_id, id)"
    )
    return [
        *(index_sql(label, dialect, concurrently=concurrently) for label in (None, *LABELS)),
        # sort=-score without a label, for every status (replaces ix_comment_site_status_score,
        # whose bare max_score the coalesced sort key could not use).
        f"CREATE INDEX {how}IF NOT EXISTS ix_comment_site_status_max_score ON comment "
        f"(site_id, status, ({score_sql(None, dialect)}) DESC, id DESC)",
        # Held and pending counts by article, and each article's oldest, from the index alone.
        f"CREATE INDEX {how}IF NOT EXISTS ix_comment_waiting_article ON comment "
        "(site_id, article_id, status, created_at) WHERE status IN ('held', 'pending')",
        # /v1/stats: decisions in a window, read from the index alone (creations left out).
        f"CREATE INDEX {how}IF NOT EXISTS ix_event_site_decided ON moderation_event "
        f"{decided_columns} WHERE from_status IS NOT NULL",
        # Deleting a comment sets its replies' parent_id to NULL: without this index every
        # deleted comment (erasure, pruning) scanned the whole table for its replies.
        f"CREATE INDEX {how}IF NOT EXISTS ix_comment_parent ON comment (parent_id) "
        "WHERE parent_id IS NOT NULL",
        # Moderators' decisions only (a few percent of events): overrides and moderator
        # latencies of a long window read them without passing every policy decision.
        f"CREATE INDEX {how}IF NOT EXISTS ix_event_site_human ON moderation_event "
        f"{decided_columns} WHERE actor <> 'policy' AND from_status IS NOT NULL",
        f"CREATE INDEX {how}IF NOT EXISTS ix_report_site_open ON report (site_id, comment_id) "
        "WHERE resolved_at IS NULL",
        f"CREATE INDEX {how}IF NOT EXISTS ix_report_site_created ON report (site_id, created_at)",
        f"CREATE INDEX {how}IF NOT EXISTS ix_report_site_resolved ON report "
        "(site_id, resolved_at) WHERE resolved_at IS NOT NULL",
    ]


NAMES = [
    *(index_name(label) for label in (None, *LABELS)),
    "ix_comment_site_status_max_score",
    "ix_comment_waiting_article",
    "ix_comment_parent",
    "ix_event_site_decided",
    "ix_event_site_human",
    "ix_report_site_open",
    "ix_report_site_created",
    "ix_report_site_resolved",
]


def upgrade():
    op.create_table(
        "stats_day",
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "day"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        with op.get_context().autocommit_block():
            for statement in _indexes(dialect, concurrently=True):
                op.execute(statement)
            op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_comment_site_status_score")
    else:
        for statement in _indexes(dialect, concurrently=False):
            op.execute(statement)
        op.execute("DROP INDEX IF EXISTS ix_comment_site_status_score")


def downgrade():
    dialect = op.get_bind().dialect.name
    how = "CONCURRENTLY " if dialect == "postgresql" else ""
    statements = [
        f"CREATE INDEX {how}IF NOT EXISTS ix_comment_site_status_score ON comment "
        "(site_id, status, max_score)",
        *(f"DROP INDEX {how}IF EXISTS {name}" for name in NAMES),
    ]
    if dialect == "postgresql":
        with op.get_context().autocommit_block():
            for statement in statements:
                op.execute(statement)
    else:
        for statement in statements:
            op.execute(statement)
    op.drop_table("stats_day")

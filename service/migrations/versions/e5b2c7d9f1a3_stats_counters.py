"""status counts per day and language and per article; overrides and review latency on events

Revision ID: e5b2c7d9f1a3
Revises: d3a8f1c2b4e6
Create Date: 2026-12-02 16:00:00

``day_status_count`` and ``article_status_count`` (kept by service.moderation.status_counts)
hold how many decided comments stand in each status now, per site, UTC day of submission
and language, and per article; they are backfilled here from the comments, one grouped
pass each (pending comments are counted live, not here). New tables: nothing live waits
on them.

A moderator's decision event gains ``policy_status`` (what the policy had decided for the
comment) and, on the comment's first such decision, ``latency_s`` (seconds since it was
submitted): /v1/stats then counts overrides into its daily rollups and reads moderators'
latency from the partial index ``ix_event_site_first_review``, without joining events to
events or to comments. Both are backfilled for the moderator decisions already stored
(a few percent of the events; the nullable columns are added without a table rewrite);
the index is built CONCURRENTLY on Postgres. Closed days already rolled up gain their
override counts the first time a window reads them (service.rollups).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5b2c7d9f1a3"
down_revision = "d3a8f1c2b4e6"
branch_labels = None
depends_on = None

UNSUPPORTED = "coalesce(reason_codes LIKE '% unsupported\\_language %' ESCAPE '\\', false)"
BACKFILL = (
    "INSERT INTO day_status_count (site_id, day, language, status, unsupported, comments)"
    " SELECT site_id, date(created_at), coalesce(language, ''), status, {unsupported},"
    " count(*) FROM comment WHERE status <> 'pending'"
    " GROUP BY site_id, date(created_at), coalesce(language, ''), status, {unsupported}",
    "INSERT INTO article_status_count (site_id, article_id, status, comments)"
    " SELECT site_id, article_id, status, count(*) FROM comment WHERE status <> 'pending'"
    " GROUP BY site_id, article_id, status",
)


# moderate.is_decision in SQL, for an event aliased ``e``.
DECISION = (
    "{e}.actor <> 'policy' AND {e}.from_status IS NOT NULL"
    " AND {e}.to_status IN ('approved', 'held', 'rejected')"
    " AND ({e}.reason_code IS NULL OR {e}.reason_code NOT IN ('reported', 'undo'))"
)
POLICY_STATUS = (
    "UPDATE moderation_event SET policy_status = (SELECT p.to_status FROM moderation_event p"
    " WHERE p.comment_id = moderation_event.comment_id AND p.actor = 'policy'"
    " AND p.from_status = 'pending' AND p.id < moderation_event.id ORDER BY p.id DESC LIMIT 1)"
    " WHERE " + DECISION.format(e="moderation_event")
)
SECONDS = {
    "postgresql": "extract(epoch FROM moderation_event.created_at - c.created_at)",
    "sqlite": "(julianday(moderation_event.created_at) - julianday(c.created_at)) * 86400.0",
}
LATENCY = (
    "UPDATE moderation_event SET latency_s = (SELECT max(0, {seconds}) FROM comment c"
    " WHERE c.id = moderation_event.comment_id)"
    " WHERE " + DECISION.format(e="moderation_event") + " AND NOT EXISTS (SELECT 1 FROM"
    " moderation_event e WHERE e.comment_id = moderation_event.comment_id"
    " AND e.id < moderation_event.id AND " + DECISION.format(e="e") + ")"
)
FIRST_REVIEW = {
    "postgresql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_event_site_first_review"
    " ON moderation_event (site_id, created_at) INCLUDE (latency_s) WHERE latency_s IS NOT NULL",
    "sqlite": "CREATE INDEX IF NOT EXISTS ix_event_site_first_review"
    " ON moderation_event (site_id, created_at, latency_s) WHERE latency_s IS NOT NULL",
}


def event_backfill(dialect: str) -> list[str]:
    """The UPDATEs that give stored moderator decisions what moderate() now records."""
    greatest = "greatest" if dialect == "postgresql" else "max"
    latency = LATENCY.format(seconds=SECONDS[dialect]).replace("max(0,", f"{greatest}(0,")
    return [POLICY_STATUS, latency]


def upgrade():
    op.create_table(
        "day_status_count",
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("unsupported", sa.Boolean(), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "day", "language", "status", "unsupported"),
    )
    op.create_table(
        "article_status_count",
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "article_id", "status"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite has no boolean type: LIKE gives 0 or 1, and false is 0.
    unsupported = UNSUPPORTED.replace("false", "0") if sqlite else UNSUPPORTED
    for statement in BACKFILL:
        op.execute(statement.format(unsupported=unsupported))

    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("moderation_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("latency_s", sa.Float(), nullable=True))
    for statement in event_backfill(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        with op.get_context().autocommit_block():
            op.execute(FIRST_REVIEW[dialect])
    else:
        op.execute(FIRST_REVIEW[dialect])


def downgrade():
    how = "CONCURRENTLY " if op.get_bind().dialect.name == "postgresql" else ""
    if how:
        with op.get_context().autocommit_block():
            op.execute(f"DROP INDEX {how}IF EXISTS ix_event_site_first_review")
    else:
        op.execute("DROP INDEX IF EXISTS ix_event_site_first_review")
    with op.batch_alter_table("moderation_event", schema=None) as batch_op:
        batch_op.drop_column("latency_s")
        batch_op.drop_column("policy_status")
    op.drop_table("article_status_count")
    op.drop_table("day_status_count")

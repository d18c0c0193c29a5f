"""open-report counts per comment, reported and language indexes

Revision ID: d3a8f1c2b4e6
Revises: b7e5c1d2a9f4
Create Date: 2026-12-02 12:40:00

``comment.open_reports`` (kept by service.moderation.report_counts) is backfilled from
the open reports; the partial index of approved or held comments with open reports
serves the queue's reported counts, and the covering index of comments by creation time
serves /v1/stats' languages from the index alone. On Postgres the column is added with
a constant default (no table rewrite) and the indexes are built CONCURRENTLY, outside
the migration's transaction, so a live database keeps taking comments (a failed build
leaves an INVALID index: drop it and upgrade again). SQLite builds them in place.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d3a8f1c2b4e6"
down_revision = "b7e5c1d2a9f4"
branch_labels = None
depends_on = None

OPEN_REPORTED = "open_reports > 0 AND status IN ('approved', 'held')"
BACKFILL = (
    "UPDATE comment SET open_reports = (SELECT count(*) FROM report"
    " WHERE report.comment_id = comment.id AND report.resolved_at IS NULL)"
    " WHERE id IN (SELECT comment_id FROM report WHERE resolved_at IS NULL)"
)
NAMES = ("ix_comment_open_reported", "ix_comment_site_created_language")


def _indexes(dialect: str) -> list[str]:
    how = "CONCURRENTLY " if dialect == "postgresql" else ""
    language = (
        "(site_id, created_at) INCLUDE (language, status, reason_codes)"
        if dialect == "postgresql"
        else "(site_id, created_at, language, status, reason_codes)"
    )
    return [
        f"CREATE INDEX {how}IF NOT EXISTS ix_comment_open_reported ON comment "
        f"(site_id, article_id) WHERE {OPEN_REPORTED}",
        f"CREATE INDEX {how}IF NOT EXISTS ix_comment_site_created_language ON comment "
        f"{language}",
    ]


def _run(statements: list[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for statement in statements:
                op.execute(statement)
    else:
        for statement in statements:
            op.execute(statement)


def upgrade():
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("open_reports", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(BACKFILL)
    _run(_indexes(op.get_bind().dialect.name))


def downgrade():
    how = "CONCURRENTLY " if op.get_bind().dialect.name == "postgresql" else ""
    _run([f"DROP INDEX {how}IF EXISTS {name}" for name in NAMES])
    with op.batch_alter_table("comment", schema=None) as batch_op:
        batch_op.drop_column("open_reports")

"""reported comments kept per article and status

Revision ID: a7d3e9c1b5f2
Revises: e5b2c7d9f1a3
Create Date: 2026-12-02 19:00:00

``article_status_count.reported``: of an article's approved or held comments, how many have
open reports (kept by service.moderation.status_counts, with the reports). The queue's
reported counts then read a row per article instead of an index-only scan of every
reported comment (112,000 at ten million). The column is added with a constant default
(no table rewrite) and backfilled in one grouped pass over ix_comment_open_reported.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7d3e9c1b5f2"
down_revision = "e5b2c7d9f1a3"
branch_labels = None
depends_on = None

# The rows exist: a reported comment of a decided status is one of its row's comments.
BACKFILL = (
    "UPDATE article_status_count SET reported = r.n FROM (SELECT site_id, article_id, status,"
    " count(*) AS n FROM comment WHERE open_reports > 0 AND status IN ('approved', 'held')"
    " GROUP BY site_id, article_id, status) AS r WHERE article_status_count.site_id = r.site_id"
    " AND article_status_count.article_id = r.article_id"
    " AND article_status_count.status = r.status"
)


def upgrade():
    op.add_column(
        "article_status_count",
        sa.Column("reported", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(BACKFILL)


def downgrade():
    with op.batch_alter_table("article_status_count", schema=None) as batch_op:
        batch_op.drop_column("reported")

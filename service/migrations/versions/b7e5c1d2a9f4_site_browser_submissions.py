"""site browser submissions and embed secret

Revision ID: b7e5c1d2a9f4
Revises: b7c41e5d9a17
Create Date: 2026-12-01 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e5c1d2a9f4'
down_revision = "b7c41e5d9a17"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('browser_submissions', sa.String(length=16), nullable=False,
                      server_default='off')
        )
        batch_op.add_column(sa.Column('embed_secret', sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column('embed_previous_secret', sa.String(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column('embed_previous_secret_expires_at', sa.DateTime(), nullable=True)
        )


def downgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('embed_previous_secret_expires_at')
        batch_op.drop_column('embed_previous_secret')
        batch_op.drop_column('embed_secret')
        batch_op.drop_column('browser_submissions')

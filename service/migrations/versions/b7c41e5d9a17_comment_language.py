"""comment language, site language settings

Revision ID: b7c41e5d9a17
Revises: 9c1d2e3f4a5b
Create Date: 2026-12-01 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7c41e5d9a17'
down_revision = "9c1d2e3f4a5b"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('language_confidence', sa.Float(), nullable=True))

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language_scorers', sa.JSON(), nullable=True))
        # Existing sites keep today's safety: an unread language is held.
        batch_op.add_column(
            sa.Column('unsupported_language', sa.String(length=8), nullable=False,
                      server_default='hold')
        )


def downgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('unsupported_language')
        batch_op.drop_column('language_scorers')

    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('language_confidence')
        batch_op.drop_column('language')

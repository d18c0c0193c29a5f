"""dashboard sessions, author erasure

Revision ID: c4f1d2e8a913
Revises: 418a62ab7314
Create Date: 2026-12-01 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4f1d2e8a913'
down_revision = "418a62ab7314"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dashboard_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('ended_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['api_key.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('dashboard_session', schema=None) as batch_op:
        batch_op.create_index('ix_dashboard_session_expires', ['expires_at'], unique=False)
        batch_op.create_index('ix_dashboard_session_key', ['key_id', 'ended_at'], unique=False)

    with op.batch_alter_table('author', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('author', schema=None) as batch_op:
        batch_op.drop_column('erased_at')

    with op.batch_alter_table('dashboard_session', schema=None) as batch_op:
        batch_op.drop_index('ix_dashboard_session_key')
        batch_op.drop_index('ix_dashboard_session_expires')

    op.drop_table('dashboard_session')

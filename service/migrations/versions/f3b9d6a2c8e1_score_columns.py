"""each label's score in its own column, carried by the held score indexes

Revision ID: f3b9d6a2c8e1
Revises: a7d3e9c1b5f2
Create Date: 2026-12-03 08:00:00

The held score indexes keyed each label on its JSON score (``scores ->> 'toxicity'``).
Postgres cannot read such a key back without the JSON column, so counting the held
comments over a threshold (the bulk dry run) fetched every matching row from the
table: 700 ms for 168,000 matches at ten million comments. The scores are now also
copied into one nullable column per label (``score_toxicity`` …, written by
moderate()), the keys read those, and on Postgres each index carries its key's column
(``INCLUDE``), so such a count is an index-only scan.

Adding nullable columns rewrites nothing. Postgres backfills them in transactions of
BATCH ids, then builds each new index CONCURRENTLY beside the old one, drops the old
and renames the new, so the queue always has an index to sort by. Comments that older
code scores after the backfill, before it is replaced, get their columns from
``civility counts rebuild``.
"""
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3b9d6a2c8e1"
down_revision = "a7d3e9c1b5f2"
branch_labels = None
depends_on = None

LABELS = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
)
BATCH = 50_000  # comments per backfill transaction


def _json_score(label: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST((scores ->> '{label}') AS FLOAT)"
    return f"CAST(JSON_EXTRACT(scores, '$.{label}') AS FLOAT)"


def _column(label: str | None) -> str:
    return "max_score" if label is None else f"score_{label}"


def _name(label: str | None) -> str:
    return f"ix_comment_held_{label or 'max'}_score"


def _index(label: str | None, dialect: str, *, name: str, key: str, include: bool) -> str:
    how = "CONCURRENTLY " if dialect == "postgresql" else ""
    carried = f" INCLUDE ({_column(label)})" if include else ""
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {name} ON comment "
        f"(site_id, (coalesce({key}, -1.0)) DESC, id DESC){carried} WHERE status = 'held'"
    )


def _backfill(dialect: str) -> None:
    sets = ", ".join(f"{_column(label)} = {_json_score(label, dialect)}" for label in LABELS)
    update = f"UPDATE comment SET {sets} WHERE scores IS NOT NULL"
    if dialect != "postgresql":
        op.execute(update)
        return
    bind = op.get_bind()
    low, high = bind.execute(sa.text("SELECT min(id), max(id) FROM comment")).one()
    if low is None:
        return
    for start in range(low, high + 1, BATCH):
        bind.execute(
            sa.text(f"{update} AND id >= :start AND id < :end"),
            {"start": start, "end": start + BATCH},
        )


def _swap(dialect: str, *, to_columns: bool) -> None:
    """Replace each held score index: keys over the columns (or back over the JSON)."""
    for label in (None, *LABELS):
        if label is None:
            key = "max_score"
        else:
            key = _column(label) if to_columns else _json_score(label, dialect)
        include = to_columns and dialect == "postgresql"
        name = _name(label)
        if dialect == "postgresql":
            op.execute(_index(label, dialect, name=f"{name}_next", key=key, include=include))
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"ALTER INDEX {name}_next RENAME TO {name}")
        else:
            op.execute(f"DROP INDEX IF EXISTS {name}")
            op.execute(_index(label, dialect, name=name, key=key, include=include))


def _outside_transaction(dialect: str) -> AbstractContextManager[Any]:
    """Postgres builds indexes CONCURRENTLY, which no transaction may hold; SQLite in place."""
    return op.get_context().autocommit_block() if dialect == "postgresql" else nullcontext()


def upgrade():
    for label in LABELS:
        op.add_column("comment", sa.Column(_column(label), sa.Float(), nullable=True))
    dialect = op.get_bind().dialect.name
    with _outside_transaction(dialect):
        _backfill(dialect)
        _swap(dialect, to_columns=True)


def downgrade():
    dialect = op.get_bind().dialect.name
    with _outside_transaction(dialect):
        _swap(dialect, to_columns=False)
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy would lose the
    # expression indexes, which SQLite's reflection cannot read back.
    for label in LABELS:
        op.drop_column("comment", _column(label))

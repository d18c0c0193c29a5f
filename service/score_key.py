"""The queue's score sort key as SQL text the score indexes store, identical on every query.

Postgres matches an expression index only when a query spells the same expression, and
a label sent as a bound parameter (``scores ->> $1``) never matches ``scores ->>
'toxicity'``, least of all under the generic plans psycopg's prepared statements get.
Labels come from a fixed set (LABELS), so the key renders the label as a validated
literal instead; migration 9c1d2e3f4a5b creates one partial index per label from the
same text (``index_sql``).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from service.moderation.policy import LABELS

# Sorts unscored comments (pending, scoring_failed) after every scored one.
NO_SCORE = -1.0
LABEL_RE = re.compile(r"^[a-z_]{1,40}$")


def _checked(label: str | None) -> str | None:
    if label is not None and (label not in LABELS or not LABEL_RE.match(label)):
        raise ValueError(f"unknown score label {label!r}")
    return label


def score_sql(label: str | None, dialect: str, column_prefix: str = "") -> str:
    """``coalesce(<label's score or max_score>, -1.0)`` in ``dialect``'s SQL."""
    label = _checked(label)
    if label is None:
        score = f"{column_prefix}max_score"
    elif dialect == "postgresql":
        score = f"CAST(({column_prefix}scores ->> '{label}') AS FLOAT)"
    else:
        score = f"CAST(JSON_EXTRACT({column_prefix}scores, '$.{label}') AS FLOAT)"
    return f"coalesce({score}, {NO_SCORE})"


def index_name(label: str | None) -> str:
    """The partial index over held comments that serves ``sort=-score`` for ``label``."""
    return f"ix_comment_held_{_checked(label) or 'max'}_score"


def index_sql(label: str | None, dialect: str, *, concurrently: bool = False) -> str:
    """CREATE INDEX for ``index_name(label)``: held comments of a site by key, then id."""
    how = "CONCURRENTLY " if concurrently else ""
    key = score_sql(label, dialect)
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {index_name(label)} ON comment "
        f"(site_id, ({key}) DESC, id DESC) WHERE status = 'held'"
    )


class ScoreKey(ColumnElement[float]):
    """The sort key of ``label`` (None: the highest label), as a SQL expression."""

    __visit_name__ = "score_key"
    inherit_cache = True
    _traverse_internals = [("label", InternalTraversal.dp_string)]
    type = sa.Float()

    def __init__(self, label: str | None) -> None:
        self.label = _checked(label)


@compiles(ScoreKey)
def _compile(element: ScoreKey, compiler: Any, **kw: Any) -> str:
    # Index DDL names bare columns; queries name the table, as the rest of their SQL does.
    prefix = "comment." if kw.get("include_table", True) else ""
    return score_sql(element.label, compiler.dialect.name, column_prefix=prefix)


def literal(value: str) -> Any:
    """``value`` rendered into the SQL, not bound: partial index predicates can then match.

    Only for values from a fixed, validated set (statuses), never for user text.
    """
    return sa.bindparam(None, value, type_=sa.String(), literal_execute=True)


def literals(*values: str) -> Any:
    """An IN list of ``values`` rendered into the SQL (see ``literal``)."""
    return sa.bindparam(None, list(values), type_=sa.String(), expanding=True, literal_execute=True)

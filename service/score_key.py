"""The queue's score sort key as SQL text the score indexes store, identical on every query.

Each label's score lives twice on a comment: in the ``scores`` JSON (what the model
said, rendered by the API) and in its own column (``score_toxicity`` …), which
moderate() copies from it. Keys and filters read the columns: a held index over a
label's key that also carries its column answers "how many held comments score at
least 0.9" from the index alone (the bulk dry run), where a key over the JSON made
Postgres fetch every matching row (an index-only scan must be able to rebuild each
column an expression reads).

Postgres matches an expression index only when a query spells the same expression, and
a label sent as a bound parameter never picks a column, least of all under the generic
plans psycopg's prepared statements get. Labels come from a fixed set (LABELS), so
the key renders the label's column as a validated literal instead; the model's
partial index per label (``service.models.content``) compiles the same ScoreKey, and
migration f3b9d6a2c8e1 writes out that text.
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


def column(label: str | None) -> str:
    """The comment column holding ``label``'s score (None: the highest label's)."""
    label = _checked(label)
    return "max_score" if label is None else f"score_{label}"


def columns_of(scores: dict[str, float]) -> dict[str, float | None]:
    """The score columns of a comment scored ``scores`` (column → value)."""
    return {
        column(None): max(scores.values(), default=None),
        **{column(label): scores.get(label) for label in LABELS},
    }


def score_sql(label: str | None, column_prefix: str = "") -> str:
    """``coalesce(<label's score or max_score>, -1.0)``, the same SQL on both dialects."""
    return f"coalesce({column_prefix}{column(label)}, {NO_SCORE})"


def index_name(label: str | None) -> str:
    """The partial index over held comments that serves ``sort=-score`` for ``label``."""
    return f"ix_comment_held_{_checked(label) or 'max'}_score"


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
    return score_sql(element.label, column_prefix=prefix)


def literal(value: str) -> Any:
    """``value`` rendered into the SQL, not bound: partial index predicates can then match.

    Only for values from a fixed, validated set (statuses), never for user text.
    """
    return sa.bindparam(None, value, type_=sa.String(), literal_execute=True)


def literals(*values: str) -> Any:
    """An IN list of ``values`` rendered into the SQL (see ``literal``)."""
    return sa.bindparam(None, list(values), type_=sa.String(), expanding=True, literal_execute=True)

"""Flask extensions shared by every app, bound in ``create_app`` with ``init_app``."""

from typing import Any

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)


def get_or_create(model: type, defaults: dict[str, Any] | None = None, **keys: Any) -> Any:
    """The row of ``model`` matching ``keys``, inserting it if absent; safe under races.

    The insert runs in a savepoint so a concurrent insert of the same key
    (unique constraint) costs a re-read, not the caller's transaction.
    """
    query = sa.select(model).filter_by(**keys)
    row = db.session.scalar(query)
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = model(**keys, **(defaults or {}))
            db.session.add(row)
    except sa.exc.IntegrityError:
        row = db.session.scalar(query)
    return row

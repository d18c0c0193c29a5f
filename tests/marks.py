"""Marks the suite's conftest understands (see ``pytest_collection_modifyitems`` there)."""

from __future__ import annotations

import pytest

# For tests whose subject does not depend on the database: one backend is enough.
ONE_BACKEND = pytest.mark.backends("sqlite")
# For tests about Postgres itself (query plans, cut connections).
POSTGRES_ONLY = pytest.mark.backends("postgresql")

"""An object seen with some attributes added or replaced, for a response schema to dump.

A response is dumped by its marshmallow schema from the object itself, so a field added
to the schema is answered without another list to keep beside it. Where a response has
values the row does not (an author's status now, a comment's open reports, a secret shown
once), ``Overlay(row, name=value, …)`` answers those and passes every other attribute
through to the row.
"""

from __future__ import annotations

from typing import Any


class Overlay:
    def __init__(self, base: Any, **values: Any) -> None:
        self._base = base
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not given: those come from the row.
        return getattr(self._base, name)

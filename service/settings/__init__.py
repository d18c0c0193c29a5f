"""The settings catalogue: one table for code, README and tests, grouped by area.

tests/test_operations.py checks that the README carries their table; ``service.config``
loads and coerces them.
"""

from __future__ import annotations

from service.settings import background, scoring, serving
from service.settings.setting import Setting

SETTINGS: tuple[Setting, ...] = serving.SETTINGS + scoring.SETTINGS + background.SETTINGS

__all__ = ["SETTINGS", "Setting"]

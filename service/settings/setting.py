"""One row of the settings catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str  # config key; the environment variable is CIVILITY_<name>
    default: Any
    meaning: str

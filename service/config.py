"""Settings: embedded defaults, overridden by ``CIVILITY_*`` environment variables.

The catalogue itself (every setting, its default and meaning) lives in ``service/settings/``,
grouped by the process that reads it; this module merges it, coerces environment strings to
each default's type and generates the README's table.
"""

from __future__ import annotations

from typing import Any

from service.settings import SETTINGS, Setting

__all__ = ["DEFAULTS", "RENAMED", "SETTINGS", "Setting", "coerce", "settings_table"]

DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}

# Settings that were renamed: setting the old name is an error, not silently ignored.
RENAMED = {"MODEL_QUANTIZE": "MODEL_PRECISION (none is now fp32)"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def coerce(name: str, value: Any) -> Any:
    """Convert an environment string to the type of the setting's default."""
    default = DEFAULTS.get(name)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"CIVILITY_{name}: expected a boolean (true/false), got {value!r}")
    if isinstance(default, int | float) and not isinstance(value, bool):
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            kind = type(default).__name__
            raise ValueError(f"CIVILITY_{name}: expected {kind}, got {value!r}") from None
    if isinstance(default, str) and not isinstance(value, str):
        return str(value)
    return value


def settings_table() -> str:
    """The README's configuration table, generated from SETTINGS."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        if s.default is None:
            default = "—"
        elif isinstance(s.default, bool):
            default = f"`{str(s.default).lower()}`"
        else:
            default = f"`{s.default}`"
        rows.append(f"| `CIVILITY_{s.name}` | {default} | {s.meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")

"""Column types given in table options: DuckDB type names only (``DECIMAL(12, 2)``,
``VARCHAR[]``), never SQL; checked once for every connector's options model."""

from __future__ import annotations

import re

_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?$")


def checked_type_names(value: dict[str, str] | None) -> dict[str, str] | None:
    """``value`` (column -> type) when every type is a DuckDB type name; else ValueError."""
    for name, kind in (value or {}).items():
        if not _TYPE.match(kind):
            raise ValueError(f"'{kind}' (column {name}) is not a DuckDB type name")
    return value

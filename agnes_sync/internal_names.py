"""Names the SQL rails keep for DuckDB's and Agnes's own objects (``duckdb_tables``,
``pragma_version``, ``sqlite_master``, ``_meta``): a query naming one as a table is
refused (``internal_object_not_allowed``), so no table or snapshot may be given one."""

from __future__ import annotations

INTERNAL_PREFIXES = ("_", "duckdb_", "pragma_", "sqlite_")


def internal_name(name: str) -> bool:
    """Whether a query naming ``name`` as a table is refused as an internal object."""
    return name.lower().startswith(INTERNAL_PREFIXES)

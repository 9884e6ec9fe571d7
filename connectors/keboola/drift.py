"""Schema drift: the columns a table was published with, before and after a sync.

A column added or removed in Keboola (or a changed type) is not an error: the new schema
is published (an incremental merge keeps the old rows, a removed column's values of the
rows already published stay and new rows get NULL there), the change is logged and kept
in ``_keboola_schema_changes`` in the source's extract DB. A drift that breaks the sync
(the key or the incremental column gone, types that no longer merge) fails it as terminal
and the last good data stays published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from agnes_sync.contract import ExtractWriter

logger = logging.getLogger("agnes.sync")

CHANGES_DDL = """
CREATE TABLE IF NOT EXISTS _keboola_schema_changes (
    table_name VARCHAR NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    added      VARCHAR[],
    removed    VARCHAR[],
    retyped    VARCHAR[]
)
"""


@dataclass(frozen=True)
class SchemaChange:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[str, ...] = ()  # "name: OLD -> NEW"

    def describe(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        if self.retyped:
            parts.append("retyped " + ", ".join(self.retyped))
        return "schema changed: " + "; ".join(parts)


def published_columns(writer: ExtractWriter, table: str) -> dict[str, str] | None:
    """The published view's columns and types (``None`` before the first publish)."""
    if not writer.paths.db.is_file():
        return None
    with writer.connect() as con:
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
    return {str(name): str(kind) for name, kind in rows} or None


def compare(before: dict[str, str] | None, after: dict[str, str] | None) -> SchemaChange | None:
    if before is None or after is None or before == after:
        return None
    change = SchemaChange(
        added=tuple(c for c in after if c not in before),
        removed=tuple(c for c in before if c not in after),
        retyped=tuple(
            f"{c}: {before[c]} -> {after[c]}"
            for c in after
            if c in before and before[c] != after[c]
        ),
    )
    return change if (change.added or change.removed or change.retyped) else None


def record(writer: ExtractWriter, table: str, change: SchemaChange, at: datetime) -> None:
    logger.warning("table %s: %s", table, change.describe())
    with writer.connect() as con:
        con.execute(CHANGES_DDL)
        con.execute(
            "INSERT INTO _keboola_schema_changes VALUES (?, ?, ?, ?, ?)",
            [table, at, list(change.added), list(change.removed), list(change.retyped)],
        )


def recorded(writer: ExtractWriter, table: str) -> list[SchemaChange]:
    """The schema changes recorded for ``table``, oldest first."""
    if not writer.paths.db.is_file():
        return []
    with writer.connect() as con:
        con.execute(CHANGES_DDL)
        rows = con.execute(
            "SELECT added, removed, retyped FROM _keboola_schema_changes "
            "WHERE table_name = ? ORDER BY changed_at",
            [table],
        ).fetchall()
    return [SchemaChange(tuple(a or ()), tuple(r or ()), tuple(t or ())) for a, r, t in rows]

"""Forward-only, numbered schema migrations for the system DB.

Migrations are the ``NNNN_name.sql`` files beside this module. Each runs in its own
transaction together with the row that records it in ``schema_version``, so a
crash leaves the DB at the last complete version. Re-running is a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import duckdb

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def available_migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this code, in version order (checked contiguous)."""
    folder = resources.files("agnes_mcp.store.migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise RuntimeError(f"migrations are not numbered 1..N: {[m.version for m in found]}")
    return tuple(found)


def head_version() -> int:
    return available_migrations()[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The version a DB is at (0 for an empty DB)."""
    con.execute(_VERSION_TABLE)
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> list[int]:
    """Apply every pending migration up to ``target`` (default: head); return versions applied.

    The caller checks that the DB is not newer than this code (see SystemStore.open).
    """
    goal = head_version() if target is None else target
    applied: list[int] = []
    start = current_version(con)
    for migration in available_migrations():
        if migration.version <= start or migration.version > goal:
            continue
        con.begin()
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_version (version, name) VALUES (?, ?)",
                [migration.version, migration.name],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        applied.append(migration.version)
    return applied

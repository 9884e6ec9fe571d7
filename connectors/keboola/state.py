"""What the connector remembers between syncs of a table, kept in its source's extract DB.

``_keboola_state`` (one row per table): ``changed_since``, where the next incremental
export starts (the Keboola time the last successful export job was created, so a row
imported while that export ran is read again, not lost), and ``load_until``, set while a
first load is split into chunks (the end of the whole load; cleared when it is done). The
table lives beside the contract's tables; the extract reader ignores it. A row is only
trusted while the table's data is published: a table dropped and registered again starts
over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agnes_sync.contract import ExtractWriter

STATE_DDL = """
CREATE TABLE IF NOT EXISTS _keboola_state (
    table_name    VARCHAR PRIMARY KEY,
    keboola_table VARCHAR,
    changed_since TIMESTAMPTZ,
    load_until    TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ
)
"""


@dataclass(frozen=True)
class TableState:
    keboola_table: str
    changed_since: datetime | None
    load_until: datetime | None


def read_state(writer: ExtractWriter, table: str) -> TableState | None:
    if not writer.paths.db.is_file():
        return None
    with writer.connect() as con:
        con.execute(STATE_DDL)
        row = con.execute(
            "SELECT keboola_table, changed_since, load_until FROM _keboola_state "
            "WHERE table_name = ?",
            [table],
        ).fetchone()
    return TableState(row[0], row[1], row[2]) if row else None


def write_state(
    writer: ExtractWriter,
    table: str,
    keboola_table: str,
    changed_since: datetime | None,
    load_until: datetime | None,
    now: datetime,
) -> None:
    with writer.connect() as con:
        con.execute(STATE_DDL)
        con.execute(
            "INSERT OR REPLACE INTO _keboola_state VALUES (?, ?, ?, ?, ?)",
            [table, keboola_table, changed_since, load_until, now],
        )

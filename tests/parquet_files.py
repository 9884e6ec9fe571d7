"""Small real parquet files for tests that build a workspace's folders by hand."""

from __future__ import annotations

from pathlib import Path

import duckdb


def write_ids(path: Path, rows: int) -> None:
    """A parquet file of ``rows`` rows (one column, ``id``: 0, 1, ...), DuckDB-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT range AS id FROM range({rows})) TO '{path}' (FORMAT parquet)")
    finally:
        con.close()

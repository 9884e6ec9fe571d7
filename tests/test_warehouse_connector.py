"""The DuckDB warehouse connector: remote tables stay put, materialized SQL is published."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import (
    InvalidTableSpec,
    SourceDataError,
    SourceTableNotFound,
    TerminalSyncError,
)
from agnes_sync.extract_reader import read_extract
from connectors.duckdb_warehouse.connector import DuckDBWarehouseConnector


@pytest.fixture
def connector(tmp_path: Path, warehouse: Path) -> DuckDBWarehouseConnector:
    return DuckDBWarehouseConnector(SourceContext("warehouse", {"path": str(warehouse)}, tmp_path))


@pytest.fixture
def writer(tmp_path: Path) -> ExtractWriter:
    return ExtractWriter(tmp_path / "extracts", "warehouse")


def test_lists_and_describes_tables(connector: DuckDBWarehouseConnector) -> None:
    assert [(t.bucket, t.source_table) for t in connector.list_tables()] == [("main", "events")]
    columns = connector.describe_table(TableRequest(id="e", bucket="main", source_table="events"))
    assert [c.name for c in columns] == ["id", "day", "kind", "value"]
    with pytest.raises(SourceTableNotFound):
        connector.describe_table(TableRequest(id="x", bucket="main", source_table="nope"))
    with pytest.raises(InvalidTableSpec):
        connector.describe_table(TableRequest(id="x", bucket="main", source_table="events; DROP"))


def test_remote_table_copies_nothing(
    connector: DuckDBWarehouseConnector, writer: ExtractWriter, warehouse: Path
) -> None:
    published = connector.extract(
        TableRequest(id="events", bucket="main", source_table="events", query_mode="remote"), writer
    )
    assert published.rows == 3000 and published.size_bytes > 0 and published.files == []
    assert list(writer.paths.data.iterdir()) == []
    table = read_extract(writer.paths, strict=True).tables["events"]
    assert table.remote is not None
    assert (table.remote.alias, table.remote.engine, table.remote.url) == (
        "warehouse",
        "duckdb",
        str(warehouse),
    )
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    con.execute(f"ATTACH '{warehouse}' AS warehouse (READ_ONLY)")
    assert con.execute("SELECT count(*) FROM events").fetchone() == (
        3000,
    )  # the view reads the warehouse
    con.close()


def test_materialized_sql_runs_in_the_warehouse(
    connector: DuckDBWarehouseConnector, writer: ExtractWriter
) -> None:
    request = TableRequest(
        id="by_kind",
        query_mode="materialized",
        source_query="SELECT kind, count(*) AS n, sum(value) AS total FROM events GROUP BY kind ORDER BY kind; -- by kind\n",
    )
    assert [c.name for c in connector.describe_table(request)] == ["kind", "n", "total"]
    published = connector.extract(request, writer)
    assert published.rows == 3 and len(published.files) == 1
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    assert con.execute("SELECT kind, n FROM by_kind ORDER BY kind").fetchall() == [
        ("a", 1000),
        ("b", 1000),
        ("c", 1000),
    ]
    con.close()


def test_128_bit_integers_are_published_exactly(
    connector: DuckDBWarehouseConnector, writer: ExtractWriter
) -> None:
    """A sum() of BIGINTs is a HUGEINT, which parquet cannot hold: DuckDB wrote it as a
    DOUBLE, and 9007199254740993 was published as 9007199254740992. It is a DECIMAL(38,0)
    now; a value of 39 digits fails the sync rather than being published rounded."""
    request = TableRequest(
        id="sums",
        query_mode="materialized",
        source_query="SELECT sum(9007199254740993) AS total, "
        "UHUGEINT '99999999999999999999999999999999999999' AS widest",
    )
    connector.extract(request, writer)
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    assert con.execute("SELECT total::VARCHAR, widest::VARCHAR FROM sums").fetchone() == (
        "9007199254740993",
        "99999999999999999999999999999999999999",
    )
    con.close()
    too_wide = TableRequest(
        id="sums",
        query_mode="materialized",
        source_query="SELECT HUGEINT '170141183460469231731687303715884105727' AS total",
    )
    with pytest.raises(TerminalSyncError, match="Could not cast value 1701411834604692317"):
        connector.extract(too_wide, writer)


def test_materialized_errors_are_terminal_and_clear(
    connector: DuckDBWarehouseConnector, writer: ExtractWriter
) -> None:
    with pytest.raises(InvalidTableSpec, match="needs a source_query"):
        connector.extract(TableRequest(id="m", query_mode="materialized"), writer)
    with pytest.raises(SourceDataError, match=r"SQL does not run: .*nope") as raised:
        connector.describe_table(
            TableRequest(id="m", query_mode="materialized", source_query="SELECT * FROM nope")
        )
    assert "None" not in raised.value.message  # was "no table main.None"
    assert raised.value.details == {"field": "source_query"}  # shown beside the SQL
    with pytest.raises(TerminalSyncError, match="Materializing 'm' failed"):
        connector.extract(
            TableRequest(id="m", query_mode="materialized", source_query="SELECT * FROM nope"),
            writer,
        )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT content FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT content FROM read_text('{extracts}/../secret.txt')",
    ],
)
def test_materialized_sql_reads_no_file_of_the_server(
    connector: DuckDBWarehouseConnector, writer: ExtractWriter, tmp_path: Path, sql: str
) -> None:
    """An admin's SQL runs in the server process: it reads the warehouse, never the
    server's environment or files (its extract folder only, where a sync writes)."""
    (tmp_path / "extracts" / "secret.txt").write_text("s3cret")
    request = TableRequest(
        id="leak", query_mode="materialized", source_query=sql.format(extracts=writer.paths.data)
    )
    with pytest.raises(SourceDataError, match="disabled by configuration"):
        connector.describe_table(request)
    with pytest.raises(TerminalSyncError, match="disabled by configuration"):
        connector.extract(request, writer)
    assert writer.published_path("leak") is None


def test_missing_warehouse_file(tmp_path: Path) -> None:
    gone = DuckDBWarehouseConnector(SourceContext("w", {"path": "missing.duckdb"}, tmp_path))
    with pytest.raises(SourceTableNotFound, match=r"missing\.duckdb"):
        gone.list_tables()

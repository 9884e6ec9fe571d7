"""The DuckDB warehouse connector: the local stand-in for BigQuery in the demo and tests.

- ``remote`` tables stay in the database file: nothing is downloaded; the extract gets a
  ``_remote_attach`` row pointing at the file and a view over ``warehouse.<schema>.<table>``.
- ``materialized`` tables run the registered SQL inside the warehouse (attached read-only,
  as the default catalog) and publish the result as parquet.

The registered SQL is an admin's text, run by the server process: once the warehouse is
attached the connection is locked down (no file outside the source's own extract folder,
no extension loading, no ATTACH, settings locked). Without it, an admin of the app could
materialize ``read_text('/proc/self/environ')`` and read the server's secrets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, cast

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from agnes_sync import strategies
from agnes_sync.connector import Capability, Column, Connector, SourceTable, TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable, RemoteAttach
from agnes_sync.errors import (
    InvalidTableSpec,
    SourceDataError,
    SourceTableNotFound,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.sql_text import quote_ident, quote_literal, statement_body
from agnes_sync.time_zone import TIME_ZONE

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class WarehouseOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The DuckDB database file (relative to the data dir).")
    alias: str = Field(
        default="warehouse", pattern=r"^[a-z_][a-z0-9_]*$", description="Catalog alias."
    )


class DuckDBWarehouseConnector(Connector):
    name = "duckdb_warehouse"
    description = "Tables of a DuckDB database file, kept remote or materialized by SQL."
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.FULL_REFRESH,
            Capability.INCREMENTAL,
            Capability.PARTITIONED,
            Capability.REMOTE,
            Capability.MATERIALIZED,
        }
    )
    Options = WarehouseOptions

    @property
    def settings(self) -> WarehouseOptions:
        return cast(WarehouseOptions, self.options)

    @property
    def database(self) -> Path:
        return self.context.resolve(self.settings.path).resolve()

    def _connect(self, writes_to: Path | None = None) -> duckdb.DuckDBPyConnection:
        """The warehouse, attached read-only; files elsewhere are out of reach (only
        ``writes_to``, the source's extract folder, for the parquet a sync writes)."""
        if not self.database.is_file():
            raise SourceTableNotFound(
                f"The warehouse file {self.database} (source '{self.context.name}') does not exist."
            )
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        # A materialized query and a row filter read times as queries do, not in the zone
        # of the machine the server runs on.
        con.execute(f"SET GLOBAL TimeZone = {quote_literal(TIME_ZONE)}")
        alias = quote_ident(self.settings.alias)
        try:
            con.execute(f"ATTACH {quote_literal(str(self.database))} AS {alias} (READ_ONLY)")
        except duckdb.IOException as exc:
            con.close()
            raise TransientSyncError(
                f"The warehouse file cannot be opened now: {str(exc).splitlines()[0]}"
            ) from None
        con.execute(f"USE {alias}")
        allowed = [quote_literal(str(writes_to))] if writes_to is not None else []
        con.execute(f"SET allowed_directories = [{', '.join(allowed)}]")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    def _object(self, request: TableRequest) -> str:
        schema = request.bucket or "main"
        table = request.source_table or ""
        if not (_NAME.match(schema) and _NAME.match(table)):
            raise InvalidTableSpec(
                f"Table '{request.id}' needs a bucket (schema) and source_table naming a "
                "warehouse table."
            )
        return f"{quote_ident(schema)}.{quote_ident(table)}"

    def _source_sql(self, request: TableRequest) -> str:
        if request.query_mode == "materialized":
            if not request.source_query or not request.source_query.strip():
                raise InvalidTableSpec(
                    f"Materialized table '{request.id}' needs a source_query (SQL)."
                )
            return statement_body(request.source_query)
        return f"SELECT * FROM {self._object(request)}"

    def list_tables(self) -> list[SourceTable]:
        con = self._connect()
        try:
            rows = con.execute(
                "SELECT schema_name, table_name, comment FROM duckdb_tables() "
                "WHERE database_name = ? ORDER BY 1, 2",
                [self.settings.alias],
            ).fetchall()
        finally:
            con.close()
        return [
            SourceTable(source_table=t, bucket=s, suggested_id=t, description=c or "")
            for s, t, c in rows
        ]

    def describe_table(self, request: TableRequest) -> list[Column]:
        materialized = request.query_mode == "materialized"
        con = self._connect()
        try:
            rows = con.execute(f"DESCRIBE {self._source_sql(request)}").fetchall()
        except duckdb.CatalogException as exc:
            if materialized:  # the SQL names what is missing; no source_table is involved
                raise _sql_error(exc) from None
            raise SourceTableNotFound(
                f"The warehouse has no table {request.bucket or 'main'}.{request.source_table}.",
                hint="List its tables with the registry API (or DESCRIBE in DuckDB).",
            ) from None
        except duckdb.Error as exc:
            raise _sql_error(exc, field="source_query" if materialized else None) from None
        finally:
            con.close()
        return [Column(name=r[0], type=r[1], nullable=r[2] != "NO") for r in rows]

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        self.check_supported(request)
        if request.query_mode == "remote":
            return self._register_remote(request, writer)
        con = self._connect(writes_to=writer.paths.data)
        try:
            return strategies.run(con, self._source_sql(request), request, writer)
        except duckdb.Error as exc:
            raise TerminalSyncError(
                f"Materializing '{request.id}' failed: {str(exc).splitlines()[0]}"
            ) from None
        finally:
            con.close()

    def _register_remote(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        con = self._connect()
        try:
            schema = request.bucket or "main"
            row = con.execute(
                "SELECT estimated_size, column_count FROM duckdb_tables() "
                "WHERE database_name = ? AND schema_name = ? AND table_name = ?",
                [self.settings.alias, schema, request.source_table],
            ).fetchone()
            if row is None:
                raise SourceTableNotFound(
                    f"The warehouse has no table {schema}.{request.source_table}."
                )
            rows = int(con.execute(f"SELECT count(*) FROM {self._object(request)}").fetchone()[0])  # type: ignore[index]
            size = self._table_bytes(con, schema, request.source_table or "")
        finally:
            con.close()
        return writer.publish_remote(
            request.id,
            attach=RemoteAttach(self.settings.alias, "duckdb", str(self.database)),
            remote_name=self._object(request),
            description=request.description,
            rows=rows,
            size_bytes=size,
            bind_view=True,
        )

    def _table_bytes(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
        """Compressed bytes of the table's columns in the file (storage metadata, no scan)."""
        try:
            qualified = quote_literal(f"{self.settings.alias}.{schema}.{table}")
            alias = quote_literal(self.settings.alias)
            row = con.execute(
                "SELECT count(DISTINCT block_id) * any_value(block_size) "
                "FROM (SELECT block_id, (SELECT block_size FROM pragma_database_size() "
                f"WHERE database_name = {alias}) AS block_size "
                f"FROM pragma_storage_info({qualified}) WHERE block_id IS NOT NULL)"
            ).fetchone()
        except duckdb.Error:
            return 0
        return int(row[0] or 0) if row else 0


def _sql_error(exc: duckdb.Error, field: str | None = "source_query") -> SourceDataError:
    """DuckDB's refusal of the table's SQL, about ``field`` of the table (the admin app
    shows it beside that field)."""
    return SourceDataError(
        f"The table's SQL does not run: {str(exc).splitlines()[0]}",
        details={"field": field} if field else None,
    )

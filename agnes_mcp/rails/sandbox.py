"""The second wall: a DuckDB that can see only what the caller may read, and cannot do more.

Each sandbox is an in-memory DuckDB holding views over exactly the parquet files of one
set of tables, then locked in this order (the only order that works on DuckDB 2.0):
``allowed_paths`` = those files (not their folders, which would let ``COPY TO`` write
there) -> no extension auto-install/auto-load -> ``enable_external_access = false`` ->
memory and thread limits -> ``lock_configuration = true``. It holds alone, without the
sqlglot policy: DuckDB's own parser must see exactly one SELECT, which runs inside a
transaction that is always rolled back, under a timeout (interrupt), a row cap and a
byte cap. Sandboxes are pooled per set of tables, since a new DuckDB costs ~11 ms and a
cursor nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa

from agnes_mcp.rails.engine_errors import locate, read_duckdb_error
from agnes_mcp.rails.refusals import MultipleStatements, QueryFailed, QueryTimeout, ReadOnly
from agnes_mcp.rails.tables import CatalogTable
from agnes_mcp.rails.watchdog import WATCHDOG
from agnes_sync.sql_text import quote_ident, quote_literal

POOL_SIZE = 16


@dataclass(frozen=True)
class Limits:
    rows: int
    bytes: int
    timeout_seconds: float
    # Where the row limit came from: the caller's limit, the default, or the row cap
    # (max_result_rows) that a larger request was cut to.
    rows_source: Literal["requested", "default", "cap"] = "requested"

    @classmethod
    def for_request(
        cls, requested: int | None, *, default: int, cap: int, bytes: int, timeout_seconds: float
    ) -> Limits:
        """The limits of one query: ``requested`` rows, else ``default``, never above ``cap``."""
        wanted = requested or default
        source: Literal["requested", "default", "cap"] = (
            "cap" if wanted > cap else ("requested" if requested else "default")
        )
        return cls(
            rows=max(1, min(wanted, cap)),
            bytes=bytes,
            timeout_seconds=timeout_seconds,
            rows_source=source,
        )


@dataclass
class RunResult:
    table: pa.Table
    truncated: bool
    reason: str | None  # rows | bytes
    seconds: float


def lock_down(
    con: duckdb.DuckDBPyConnection, allowed: list[str], *, memory_limit: str, threads: int
) -> None:
    """Apply the sandbox settings to ``con`` and lock them."""
    con.execute(f"SET allowed_paths = [{', '.join(quote_literal(p) for p in allowed)}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET lock_configuration = true")


def run_select(
    base: duckdb.DuckDBPyConnection,
    sql: str,
    limits: Limits,
    *,
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> RunResult:
    """Run one SELECT on a fresh cursor of ``base``: DuckDB's parser decides it is one
    SELECT; a LIMIT stops the scan early; a timer interrupts it; nothing it did survives."""
    cursor = base.cursor()
    try:
        statements = cursor.extract_statements(sql)
    except duckdb.Error as exc:
        cursor.close()
        raise QueryFailed(f"DuckDB cannot parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        cursor.close()
        raise MultipleStatements(f"DuckDB reads {len(statements)} statements; send one.")
    if statements[0].type != duckdb.StatementType.SELECT:
        cursor.close()
        raise ReadOnly(f"Only SELECT queries run here, not {statements[0].type.name}.")
    text = statements[0].query.rstrip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    # The newline keeps a trailing "-- comment" from swallowing the closing parenthesis.
    wrapped = f"SELECT * FROM (\n{text}\n) AS agnes_result LIMIT {limits.rows + 1}"
    ticket: int | None = None
    started = time.perf_counter()
    try:
        cursor.begin()
        if prepare is not None:
            prepare(cursor)
        ticket = WATCHDOG.watch(limits.timeout_seconds, cursor.interrupt)
        table = cursor.sql(wrapped).to_arrow_table()
    except duckdb.InterruptException:
        raise QueryTimeout(
            f"The query ran longer than {limits.timeout_seconds:g} s and was stopped."
        ) from None
    except duckdb.Error as exc:
        raise engine_failure(str(exc), text, line_offset=1) from None
    finally:
        if ticket is not None:
            WATCHDOG.release(ticket)
        with contextlib.suppress(duckdb.Error):
            cursor.rollback()
        cursor.close()
    return capped(table, limits, time.perf_counter() - started)


def engine_failure(text: str, sql: str, *, line_offset: int = 0) -> QueryFailed:
    """DuckDB's refusal with its suggestions and position kept; ``line_offset``: lines
    the SQL was moved down by when it was wrapped."""
    error = read_duckdb_error(text)
    if error.line is not None:
        error.line -= line_offset
        if error.line < 1:
            error.line = error.column = None
    locate(sql, error)
    hint = "Fix the query; the message is the engine's."
    if error.candidates:
        hint = f"Did you mean {', '.join(repr(c) for c in error.candidates)}? {hint}"
    return QueryFailed(f"{error.message}{error.where}", hint=hint, details=error.details())


COUNT_SECONDS = 5.0  # counting a cut answer is a courtesy: it gives up rather than wait


def count_rows(
    base: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    timeout_seconds: float,
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> int | None:
    """How many rows the whole answer to ``sql`` (one checked SELECT) has, or None when
    counting fails or takes longer than ``timeout_seconds`` (then the caller says "more
    than")."""
    text = sql.strip().rstrip(";").rstrip()
    counting = f"SELECT count(*) AS n FROM (\n{text}\n) AS agnes_counted"
    limits = Limits(rows=1, bytes=1024, timeout_seconds=min(timeout_seconds, COUNT_SECONDS))
    try:
        result = run_select(base, counting, limits, prepare=prepare)
    except (QueryFailed, QueryTimeout, MultipleStatements, ReadOnly):
        return None
    value = result.table.column(0)[0].as_py() if result.table.num_rows else None
    return int(value) if value is not None else None


def capped(table: pa.Table, limits: Limits, seconds: float) -> RunResult:
    """``table`` (fetched with one row more than allowed) cut to the row and byte caps."""
    truncated, reason = False, None
    if table.num_rows > limits.rows:
        table, truncated, reason = table.slice(0, limits.rows), True, "rows"
    if table.nbytes > limits.bytes and table.num_rows:
        keep = max(0, int(table.num_rows * limits.bytes / table.nbytes))
        table, truncated, reason = table.slice(0, keep), True, "bytes"
    return RunResult(table=table, truncated=truncated, reason=reason, seconds=seconds)


class Sandbox:
    """Views over exactly ``tables``' files, in a locked in-memory DuckDB."""

    def __init__(self, tables: list[CatalogTable], *, memory_limit: str, threads: int) -> None:
        self.tables = {t.id for t in tables}
        self._con = duckdb.connect()
        allowed: list[str] = []
        for table in tables:
            if not table.files:
                continue
            files = ", ".join(quote_literal(f) for f in table.files)
            self._con.execute(
                f"CREATE VIEW {quote_ident(table.id)} AS SELECT * FROM read_parquet([{files}], "
                "union_by_name = true, hive_partitioning = false)"
            )
            allowed.extend(table.files)
        lock_down(self._con, allowed, memory_limit=memory_limit, threads=threads)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The locked base connection (trusted code may add cursors with registered data)."""
        return self._con

    def run(
        self,
        sql: str,
        limits: Limits,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> RunResult:
        return run_select(self._con, sql, limits, prepare=prepare)

    def count(
        self,
        sql: str,
        limits: Limits,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> int | None:
        """Rows of the whole answer (for a result the row limit cut), or None."""
        return count_rows(self._con, sql, timeout_seconds=limits.timeout_seconds, prepare=prepare)

    def close(self) -> None:
        self._con.close()


class SandboxPool:
    """Sandboxes by (set of tables, catalog version), least recently used dropped first."""

    def __init__(self, *, memory_limit: str, threads: int, size: int = POOL_SIZE) -> None:
        self._memory = memory_limit
        self._threads = threads
        self._size = size
        self._lock = threading.Lock()
        self._pool: OrderedDict[tuple[object, ...], Sandbox] = OrderedDict()

    def get(self, tables: list[CatalogTable], version: object) -> Sandbox:
        key = (version, frozenset(t.id for t in tables))
        with self._lock:
            sandbox = self._pool.get(key)
            if sandbox is not None:
                self._pool.move_to_end(key)
                return sandbox
        sandbox = Sandbox(tables, memory_limit=self._memory, threads=self._threads)
        with self._lock:
            existing = self._pool.get(key)
            if existing is not None:
                sandbox.close()
                return existing
            self._pool[key] = sandbox
            while len(self._pool) > self._size:
                _, dropped = self._pool.popitem(last=False)
                dropped.close()
            return sandbox

    def clear(self) -> None:
        with self._lock:
            for sandbox in self._pool.values():
                sandbox.close()
            self._pool.clear()

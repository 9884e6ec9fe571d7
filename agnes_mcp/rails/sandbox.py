"""The second wall: a DuckDB that can see only what the caller may read, and cannot do more.

Each sandbox is an in-memory DuckDB holding one view per table the caller may read. DuckDB
reads the table's parquet files with its own reader, from in-memory copies of them
(:mod:`file_copies`): the view is ``read_parquet(['/proc/self/fd/<n>', ...])`` and the
only files DuckDB may open are those copies, whose canonical names (``/memfd:agnes-<k>``)
say nothing about the server, so no view, setting or catalog function holds a server path.
Where no copy can be made (no ``memfd_create``, or past the copies' budget) the files are
read by trusted code as an Arrow dataset (:mod:`arrow_sources`), registered on the query's
cursor under a hidden name, and DuckDB may open no file at all. After set-up it is locked
in this order (the only order that works on DuckDB 2.0): ``allowed_paths`` = the copies ->
no extension auto-install/auto-load -> ``enable_external_access = false`` -> memory and
thread limits and the time zone (UTC) -> ``lock_configuration = true``. It holds alone,
without the sqlglot policy: DuckDB's own parser must see exactly one SELECT, which runs
inside a transaction that is always rolled back, under a timeout (interrupt), a row cap
and a byte cap. The result is streamed in record batches and reading stops as soon as the
byte cap is passed, so a huge answer is never built whole; the functions that could build
a huge value are wrapped (:mod:`value_guards`). Sandboxes are pooled per set of tables,
since a new DuckDB costs ~11 ms and a cursor nothing.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import pyarrow as pa

from agnes_mcp.rails import (
    bare_functions,
    chains,
    inlined_ctes,
    list_lambdas,
    macro_errors,
    reduce_lambdas,
    relations,
    result_meter,
    spill,
    value_guards,
    window_values,
)
from agnes_mcp.rails.answer_stream import result_types, statement_types, stream
from agnes_mcp.rails.arrow_sources import ArrowSource, TableUnavailable, install_decoders
from agnes_mcp.rails.engine_errors import locate, read_duckdb_error, within
from agnes_mcp.rails.file_copies import SHARED, NativeFiles
from agnes_mcp.rails.native_tables import NativeTables
from agnes_mcp.rails.refusals import (
    STOPPING_RETRY_SECONDS,
    MultipleStatements,
    QueryCancelled,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    ReadOnly,
    ServerStopping,
    SqlTooLarge,
    bounded,
    query_cancelled,
    query_timeout,
    server_stopping,
)
from agnes_mcp.rails.table_views import create_views, refuse_unreadable
from agnes_mcp.rails.tables import CatalogTable
from agnes_mcp.rails.watchdog import WATCHDOG
from agnes_sync.caller import CALLER, caller_gave_up, interruptible
from agnes_sync.sql_text import quote_literal, statement_body
from agnes_sync.time_zone import TIME_ZONE

# Rows per record batch read from DuckDB (one vector): the byte cap is checked after each,
# so a cut answer overshoots the cap by at most one batch.
BATCH_ROWS = 2048
IDLE_CURSORS = 8  # per sandbox, kept with its datasets registered


class MemoryLimitExceeded(QueryRefused):
    code = "memory_limit_exceeded"
    status = 400
    default_hint = (
        "The query needs more memory than a query may use (query_memory_limit): aggregate "
        "or filter earlier, select fewer columns, or split it."
    )


class ServerShortOfMemory(QueryRefused):
    """The process could not get memory it asked the system for (an allocation failed
    below the query's own limit, or a sandbox could not be made): the machine or the
    process is short of memory, not the query past ``query_memory_limit``."""

    code = "server_out_of_memory"
    status = 503
    default_hint = (
        "Send the query again in a moment; if it keeps failing, the server is short of "
        "memory (other queries, or the machine): tell its admin."
    )


def server_short_of_memory(what: str) -> ServerShortOfMemory:
    return ServerShortOfMemory(
        f"The server could not get the memory {what}: it is short of memory now; the "
        "query did not pass its own limit (query_memory_limit).",
        details={"retry_after_seconds": STOPPING_RETRY_SECONDS},
    )


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
        """The limits of one query: ``requested`` rows, else ``default``, never above ``cap``
        (a request below 1 is refused: it is no way to ask for the default)."""
        if requested is not None:
            bounded("limit", requested, 1)
        wanted = requested or default
        source: Literal["requested", "default", "cap"] = (
            "cap" if wanted >= cap else ("requested" if requested else "default")
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
    con: duckdb.DuckDBPyConnection,
    allowed: list[str],
    *,
    memory_limit: str,
    threads: int,
    spill_bytes: int = spill.SPILL_BYTES,
) -> None:
    """Wrap the functions that build large values (:mod:`value_guards`), apply the sandbox
    settings to ``con`` (spilling past ``memory_limit`` to a private folder, at most
    ``spill_bytes``: :mod:`spill`) and lock them."""
    value_guards.install(con)
    list_lambdas.install(con)
    bare_functions.install(con)
    con.execute(f"SET temp_directory = {quote_literal(spill.folder())}")
    con.execute(f"SET max_temp_directory_size = '{int(spill_bytes)} bytes'")
    con.execute(f"SET allowed_paths = [{', '.join(quote_literal(p) for p in allowed)}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    con.execute(f"SET threads = {int(threads)}")
    # Answers never depend on the machine's time zone: a TIMESTAMPTZ cast to DATE, truncated
    # to a day or formatted reads the same on the server, a laptop and in the warehouse.
    con.execute(f"SET GLOBAL TimeZone = {quote_literal(TIME_ZONE)}")  # cursors too
    # In a Jupyter kernel without ipywidgets DuckDB refuses to touch the progress bar at
    # all; it is off there already.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    con.execute("SET lock_configuration = true")


class SandboxConnection:
    """A sandbox's locked connection with its tables: cursors opened through it can read
    them (a table read through an Arrow dataset has it registered on each cursor, by its
    hidden source name).

    Cursors are kept for reuse (registering a dataset costs ~0.25 ms a table): a query
    only runs SELECTs in a transaction that is rolled back, so it leaves nothing on the
    cursor; one given data of its own (``prepare``) or whose interrupt fired is closed
    instead. Closing waits for the queries still running: what they read (the copies of
    the files) is released only after the last one ends."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        sources: dict[str, ArrowSource],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.raw = con
        self.sources = sources  # by lower-case table id
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._running = 0
        self._closing = False
        self._closed = False
        self._on_close = on_close
        # DuckDB invalidated the database (a fatal or internal error): every later query
        # would fail, so the pool makes a new sandbox instead (see retire).
        self.retired = False

    def attach(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Register every Arrow-read table's dataset on ``cursor``."""
        for source in self.sources.values():
            cursor.register(source.name, source.dataset)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor that can read every table of the sandbox (for trusted code)."""
        cursor = self.raw.cursor()
        self.attach(cursor)
        return cursor

    def take(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one query; :meth:`give_back` it when the query is done."""
        with self._lock:
            if self._closed:
                raise TableUnavailable(
                    "The tables were being replaced as the query started.",
                    hint="Run the query again.",
                )
            self._running += 1
            if self._idle:
                return self._idle.pop()
        try:
            return self.cursor()
        except BaseException:
            self._done()
            raise

    def give_back(self, cursor: duckdb.DuckDBPyConnection, reusable: bool) -> None:
        with self._lock:
            keep = reusable and not self._closing and len(self._idle) < IDLE_CURSORS
            if keep:
                self._idle.append(cursor)
        if not keep:
            cursor.close()
        self._done()

    def _done(self) -> None:
        with self._lock:
            self._running -= 1
            finish = self._closing and self._running == 0 and not self._closed
            self._closed = self._closed or finish
        if finish:
            self._finish()

    def retire(self) -> None:
        """Take it out of use: DuckDB invalidated its database (after an internal error it
        answers every query "database has been invalidated"). It closes once its running
        queries end, and whoever hands it out makes a new one."""
        self.retired = True
        self.close()

    def close(self) -> None:
        """Close now, or when the last running query ends."""
        with self._lock:
            self._closing = True
            finish = self._running == 0 and not self._closed
            self._closed = self._closed or finish
        if finish:
            self._finish()

    def _finish(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for cursor in idle:
            cursor.close()
        self.raw.close()
        if self._on_close is not None:
            self._on_close()


Opens = duckdb.DuckDBPyConnection | SandboxConnection


def run_select(
    base: Opens,
    sql: str,
    limits: Limits,
    *,
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    fixed_width: bool = False,
    answers_late: bool = True,
) -> RunResult:
    """Run one SELECT on a fresh cursor of ``base``: DuckDB's parser decides it is one
    SELECT (and :mod:`value_guards` checks its calls); a LIMIT stops the scan early; the
    answer is read batch by batch and reading stops past the byte cap; a timer
    interrupts it; nothing it did survives. ``fixed_width``: the caller foresaw an answer
    of fixed-width columns only (:mod:`fixed_width`), which runs without the row guard's
    bind when DuckDB's own answer schema agrees. ``answers_late``: past its timeout and
    not stopped yet, its caller hears the timeout then (:meth:`Caller.answer_now`); off
    for a query whose failure the caller does not hear (a count that may fail)."""
    pooled = isinstance(base, SandboxConnection)
    cursor = base.take() if isinstance(base, SandboxConnection) else base.cursor()
    reusable = pooled and prepare is None
    try:
        statement, text = _one_select(cursor, sql)
        caller_text = text
        chains.check_text(text)  # DuckDB's binder does not stop for an interrupt on one
        guarded, inlines = value_guards.needs_check(text), inlined_ctes.needs_check(text)
        joins, windows = relations.needs_check(text), window_values.needs_check(text)
        reduces, lambdas = reduce_lambdas.needs_check(text), list_lambdas.needs_check(text)
        if guarded or inlines or joins or windows or reduces or lambdas:
            serialized = _serialized(cursor, text)
            # the relations are walked (scoped by CTE) only when their count in the text
            # may pass the bound (~0.05 ms, where the walk takes milliseconds)
            many = inlines or (joins and relations.over(serialized))
            if guarded or many or windows or reduces or lambdas:
                tree = _parse_tree(serialized)
                if reduces:
                    reduce_lambdas.check(tree)
                if windows:
                    window_values.check(tree)
                if guarded:
                    value_guards.check_functions(tree)
                    value_guards.check_types(tree)
                if inlines:
                    inlined_ctes.check(tree)
                if many:
                    relations.check(inlined_ctes.relations(tree))
                if lambdas:  # last: the checks above read the caller's own tree
                    statement, text = _lambdas_checked(cursor, statement, text, tree)
    except BaseException:
        _done(base, cursor, reusable)
        raise
    # The newline keeps a trailing "-- comment" from swallowing the closing parenthesis.
    wrapped = f"SELECT * FROM (\n{text}\n) AS agnes_result LIMIT {limits.rows + 1}"
    interrupted_late: list[bool] = []
    meter = result_meter.needs_meter(text)

    def watched_read() -> tuple[pa.Table, bool]:
        if caller_gave_up():
            # Cancelled before it started (an MCP cancel read before its call): DuckDB
            # clears an interrupt as a query begins, so a short query ran and answered.
            raise duckdb.InterruptException("the caller gave up before the query started")
        ticket = WATCHDOG.watch(limits.timeout_seconds, cursor.interrupt, overdue)
        try:
            if not meter and fixed_width:  # foreseen; DuckDB's schema says if it holds
                reader = stream(cursor, wrapped, BATCH_ROWS)
                if result_meter.fixed_width_schema(reader.schema):
                    return _read(reader, limits)
                reader.close()
            if not meter:  # each row measured; one too large for a batch: metered after all
                guarded = _row_guarded(cursor, statement, text, wrapped, limits)
                if guarded is None:
                    return _read(stream(cursor, wrapped, BATCH_ROWS), limits)
                try:
                    return _read(stream(cursor, guarded, BATCH_ROWS), limits)
                except (duckdb.Error, pa.ArrowException) as exc:
                    if not result_meter.row_too_large(str(exc)):
                        raise
                cursor.rollback()  # DuckDB ended the transaction's use with the error
                begin()
            metered = _metered(cursor, wrapped, limits)
            return _read(stream(cursor, metered or wrapped, BATCH_ROWS), limits, bool(metered))
        finally:
            if not WATCHDOG.release(ticket):
                interrupted_late.append(True)  # its interrupt may still arrive

    caller = CALLER.get() if answers_late else None

    def overdue() -> None:  # past its timeout and not stopped yet: the caller hears it now
        if caller is not None:
            ran = time.perf_counter() - started
            caller.answer_now(query_timeout(limits.timeout_seconds, ran, still_stopping=True))

    def begin() -> None:  # a transaction, the caller's tables registered in it
        cursor.begin()
        if prepare is not None:
            prepare(cursor)

    started = time.perf_counter()
    try:
        begin()
        # Ctrl-C on the main thread (agnes query in process, a notebook) stops it at once
        table, bytes_cut = interruptible(watched_read)
    except duckdb.InterruptException:
        raise _timeout(limits, time.perf_counter() - started) from None
    except MemoryError:
        raise server_short_of_memory("to read the answer") from None
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        if invalidated(str(exc)):
            reusable = False
            if isinstance(base, SandboxConnection):
                base.retire()
        ran = time.perf_counter() - started
        raise _failure(
            str(exc), caller_text, limits, moved=text is not caller_text, ran=ran
        ) from None
    except RuntimeError as exc:
        if interrupted_by_user(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        if interrupted_late:
            reusable = False
        try:
            cursor.rollback()
        except duckdb.Error:
            reusable = False
        _done(base, cursor, reusable)
    return capped(table, limits, time.perf_counter() - started, bytes_cut=bytes_cut)


def _row_guarded(
    cursor: duckdb.DuckDBPyConnection,
    statement: duckdb.Statement,
    text: str,
    wrapped: str,
    limits: Limits,
) -> str | None:
    """``wrapped`` (``text`` under the row cap's ``LIMIT``) stopped by DuckDB at a row
    whose variable-width values take more than :func:`_row_bytes`
    (:func:`result_meter.row_guarded_sql`, at the level of the ``LIMIT``), or None when
    its answer has no variable-width column or does not bind (it then fails as it runs).
    The types come from the statement DuckDB already parsed (``text``), bound without
    parsing again: an answer of numbers only pays that bind alone. Its names are those of
    ``text`` unless two are the same to DuckDB, which renames the second in ``wrapped``
    (``a``, ``a_1``): then ``wrapped`` is bound for them."""
    try:
        names, types = statement_types(cursor, statement)
    except duckdb.Error:
        return None
    row_bytes = _row_bytes(limits)
    guarded = result_meter.row_guarded_sql(text, names, types, row_bytes, limit=limits.rows + 1)
    if guarded is not None and len({name.lower() for name in names}) < len(names):
        return _metered(cursor, wrapped, limits, row_bytes=row_bytes)
    return guarded


def _row_bytes(limits: Limits) -> int:
    """The most variable-width bytes one row of an answer not metered may hold: a batch of
    such rows stays under the byte cap."""
    return max(1, limits.bytes // BATCH_ROWS)


def _metered(
    cursor: duckdb.DuckDBPyConnection, sql: str, limits: Limits, *, row_bytes: int | None = None
) -> str | None:
    """``sql`` with its answer's Arrow bytes counted by DuckDB (:mod:`result_meter`), or,
    with ``row_bytes``, each row's measured against it; None when it has no variable-width
    column or does not bind (it then fails as it runs)."""
    try:
        names, types = result_types(cursor, sql)
    except duckdb.Error:
        return None
    if row_bytes is not None:
        return result_meter.row_guarded_sql(sql, names, types, row_bytes)
    return result_meter.metered_sql(sql, names, types, limits.bytes)


def invalidated(message: str) -> bool:
    """Whether a DuckDB error left its database unusable: after a FATAL or INTERNAL error
    (an allocation that failed inside an aggregate, say) DuckDB refuses every later
    statement of every connection to that database."""
    return message.startswith(("FATAL Error", "INTERNAL Error")) or (
        "database has been invalidated" in message
    )


def interrupted_by_user(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB stopping a query for Ctrl-C (a kernel interrupt in Jupyter):
    DuckDB sees the signal while it streams the answer, stops the query and raises it as
    ``RuntimeError: Query interrupted`` (an interrupt from another thread, the watchdog's or
    a read meter's, is an ``InterruptException``). Signals reach Python's main thread only,
    so a server's query threads never answer True."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return str(exc).startswith("Query interrupted")


def _done(base: Opens, cursor: duckdb.DuckDBPyConnection, reusable: bool) -> None:
    if isinstance(base, SandboxConnection):
        base.give_back(cursor, reusable)
    else:
        cursor.close()


def _one_select(cursor: duckdb.DuckDBPyConnection, sql: str) -> tuple[duckdb.Statement, str]:
    """The one SELECT in ``sql`` as DuckDB parsed it, and its text; or a refusal."""
    try:
        statements = cursor.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(f"DuckDB cannot parse the query: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise MultipleStatements(f"DuckDB reads {len(statements)} statements; send one.")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise ReadOnly(f"Only SELECT queries run here, not {statements[0].type.name}.")
    return statements[0], statement_body(statements[0].query)


def _serialized(cursor: duckdb.DuckDBPyConnection, text: str) -> str:
    """DuckDB's own parse tree of ``text`` (one SELECT) as JSON text, or a refusal."""
    try:
        row = cursor.execute("SELECT json_serialize_sql(?::VARCHAR)", [text]).fetchone()
    except duckdb.Error as exc:
        raise QueryFailed(f"DuckDB cannot check the query: {str(exc).splitlines()[0]}") from None
    return str(row[0]) if row and row[0] is not None else ""


def _lambdas_checked(
    cursor: duckdb.DuckDBPyConnection, statement: duckdb.Statement, text: str, tree: Any
) -> tuple[duckdb.Statement, str]:
    """The SELECT with its lists' lambdas checked as they run (:mod:`list_lambdas`), its
    answer's columns named as the caller's own SELECT names them; unchanged without such
    a lambda. Nothing is bound here: a prepare step (a warehouse's USE) runs later."""

    def to_sql(rewritten: Any) -> str:
        row = cursor.execute(
            "SELECT json_deserialize_sql(?::JSON)", [json.dumps(rewritten)]
        ).fetchone()
        return str(row[0]) if row and row[0] is not None else ""

    try:
        if not list_lambdas.rewrite(tree, to_sql):
            return statement, text
        return _one_select(cursor, to_sql(tree))
    except duckdb.Error as exc:
        raise QueryFailed(f"DuckDB cannot check the query: {str(exc).splitlines()[0]}") from None


def _parse_tree(serialized: str) -> Any:
    """The parse tree in ``serialized`` (:func:`_serialized`), or a refusal."""
    try:
        tree = json.loads(serialized) if serialized else None
    except ValueError as exc:
        raise QueryFailed(f"DuckDB cannot check the query: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # a parse tree nested deeper than Python reads JSON
        raise SqlTooLarge("The SQL is nested too deeply to check.") from None
    if not isinstance(tree, dict) or tree.get("error"):
        reason = tree.get("error_message") if isinstance(tree, dict) else None
        raise QueryFailed(f"DuckDB cannot check the query: {reason or 'no parse tree'}.")
    return tree


def _read(
    reader: pa.RecordBatchReader, limits: Limits, metered: bool = False
) -> tuple[pa.Table, bool]:
    """The answer, read batch by batch until it ends or passes a cap (one row past the
    row cap, or the byte cap), and whether a metered answer (:mod:`result_meter`) was cut
    where its meter passed the byte cap: DuckDB stops working when reading stops."""
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    bytes_cut = False
    schema = reader.schema
    if metered:
        schema = pa.schema(list(schema)[:-1], metadata=schema.metadata)
    try:
        for batch in reader:
            if metered:
                batch, bytes_cut = result_meter.cut(batch, limits.bytes)
            batches.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
            if bytes_cut or rows > limits.rows or size > limits.bytes:
                break
    finally:
        reader.close()
    return pa.Table.from_batches(batches, schema=schema), bytes_cut


def _timeout(
    limits: Limits, ran: float | None = None
) -> QueryTimeout | QueryCancelled | ServerStopping:
    """What an interrupt meant: the server is stopping, the caller gave up, or the query
    timeout (``ran``: the seconds the query took to stop)."""
    if WATCHDOG.stopping:
        return server_stopping()
    if caller_gave_up():
        return query_cancelled()
    return query_timeout(limits.timeout_seconds, ran)


def _failure(
    message: str, sql: str, limits: Limits, *, moved: bool = False, ran: float | None = None
) -> QueryRefused:
    """A DuckDB error (also one relayed through the Arrow stream, as text) as a refusal
    naming the limit it hit, else as the engine's own message (``moved``: DuckDB ran
    ``sql`` rewritten, so its positions are not ``sql``'s)."""
    if message.startswith("INTERRUPT Error"):
        return _timeout(limits, ran)
    too_large = value_guards.refusal(message) or list_lambdas.refusal(message)
    if too_large is not None:
        return too_large
    denied = bare_functions.refusal(message)
    if denied is not None:
        return denied
    if message.startswith("INTERNAL Error: Memory allocation failure"):
        return MemoryLimitExceeded(
            "The query needed more memory than a query may use (an allocation failed).",
            details={"limit_name": "query_memory_limit"},
        )
    if message.startswith("Out of Memory Error") and "(bad allocation)" in message:
        # the system refused the allocation (DuckDB's own limit says "X/Y used")
        first = message.splitlines()[0].removeprefix("Out of Memory Error: ").rstrip(".")
        return server_short_of_memory(f"the query needed ({first})")
    if message.startswith("Out of Memory Error"):
        first = message.splitlines()[0].removeprefix("Out of Memory Error: ").rstrip(".")
        if spill.over_budget(message):
            return MemoryLimitExceeded(
                "The query needed more memory than a query may use, and more disk to spill "
                f"the rest to than a query may use ({first}).",
                hint="Aggregate or filter earlier, select fewer columns, or split the query: "
                "it may use query_memory_limit of memory and query_spill_bytes of disk.",
                details={"limit_name": "query_spill_bytes"},
            )
        return MemoryLimitExceeded(
            f"The query needed more memory than a query may use ({first}).",
            details={"limit_name": "query_memory_limit"},
        )
    # a position in SQL the sandbox rewrote (moved) is not one in the caller's: none is given
    return engine_failure(message, sql, line_offset=sys.maxsize if moved else 1)


def engine_failure(text: str, sql: str, *, line_offset: int = 0) -> QueryFailed:
    """DuckDB's refusal with its suggestions and position kept; ``line_offset``: lines
    the SQL was moved down by when it was wrapped."""
    error = read_duckdb_error(text)
    if error.line is not None:
        error.line -= line_offset
        # a position past the caller's text is one in SQL the caller never wrote (a value
        # guard's macro body: "line 2" of a one-line query): it points nowhere
        if error.line < 1 or not within(sql, error.line, error.column or 1):
            error.line = error.column = None
    said = macro_errors.inside_macro(error, sql, placed=error.line is not None)
    if said is not None:  # raised inside a macro's body: said of the call the query wrote
        hint = macro_errors.hint(sql) or "Fix the arguments' types."
        return QueryFailed(f"{said.message}{said.where}", hint=hint, details=said.details())
    locate(sql, error)
    hint = "Fix the query; the message is the engine's."
    if error.candidates:
        hint = f"Did you mean {', '.join(repr(c) for c in error.candidates)}? {hint}"
    return QueryFailed(f"{error.message}{error.where}", hint=hint, details=error.details())


COUNT_SECONDS = 5.0  # counting a cut answer is a courtesy: it gives up rather than wait


def count_rows(
    base: Opens,
    sql: str,
    *,
    timeout_seconds: float,
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> int | None:
    """How many rows the whole answer to ``sql`` (one checked SELECT) has, or None when
    counting fails or takes longer than ``timeout_seconds`` (then the caller says "more
    than")."""
    counting = f"SELECT count(*) AS n FROM (\n{statement_body(sql)}\n) AS agnes_counted"
    limits = Limits(rows=1, bytes=1024, timeout_seconds=min(timeout_seconds, COUNT_SECONDS))
    try:
        result = run_select(base, counting, limits, prepare=prepare, answers_late=False)
    except QueryRefused:
        return None
    value = result.table.column(0)[0].as_py() if result.table.num_rows else None
    return int(value) if value is not None else None


def capped(
    table: pa.Table, limits: Limits, seconds: float, *, bytes_cut: bool = False
) -> RunResult:
    """``table`` (fetched with one row more than allowed) cut to the row and byte caps
    (``bytes_cut``: already cut where its rows passed the byte cap)."""
    truncated, reason = bytes_cut, "bytes" if bytes_cut else None
    if table.num_rows > limits.rows:
        table, truncated, reason = table.slice(0, limits.rows), True, "rows"
    if table.nbytes > limits.bytes and table.num_rows:
        keep = max(0, int(table.num_rows * limits.bytes / table.nbytes))
        table, truncated, reason = table.slice(0, keep), True, "bytes"
    return RunResult(table=table, truncated=truncated, reason=reason, seconds=seconds)


class Sandbox:
    """Views over exactly ``tables``' files, in a locked in-memory DuckDB that may open
    only in-memory copies of those files (``copies``; None: none, and every table is read
    through an Arrow dataset by trusted code), or, for a table ``natives`` has converted,
    only that table's own DuckDB file, attached read-only."""

    def __init__(
        self,
        tables: list[CatalogTable],
        *,
        memory_limit: str,
        threads: int,
        copies: NativeFiles | None = SHARED,
        natives: NativeTables | None = None,
        spill_bytes: int = spill.SPILL_BYTES,
    ) -> None:
        self.tables = {t.id for t in tables}
        try:
            self._con = duckdb.connect()
        except (MemoryError, duckdb.OutOfMemoryException):
            raise server_short_of_memory("to open the tables for the query") from None
        try:
            install_decoders(self._con)
            views = create_views(self._con, tables, copies, natives)
        except (MemoryError, duckdb.OutOfMemoryException):
            self._con.close()
            raise server_short_of_memory("to open the tables for the query") from None
        except BaseException:
            self._con.close()
            raise
        try:
            self._con.execute("SET GLOBAL parquet_metadata_cache = true")
            lock_down(
                self._con,
                views.allowed,
                memory_limit=memory_limit,
                threads=threads,
                spill_bytes=spill_bytes,
            )
        except (MemoryError, duckdb.OutOfMemoryException):
            self._con.close()
            views.release()
            raise server_short_of_memory("to open the tables for the query") from None
        except BaseException:
            self._con.close()
            views.release()
            raise
        self.unreadable = views.unreadable  # tables left without a view: their refusals
        self.native = len(views.leases)  # tables read from parquet copies (natively)
        self.converted = views.attached  # tables read from their converted DuckDB files
        self._connection = SandboxConnection(self._con, views.sources, views.release)
        # a sandbox dropped without close() still gives its copies back (release is idempotent)
        weakref.finalize(self._connection, views.release)

    def refuse_unreadable(self, reads: Iterable[CatalogTable]) -> None:
        """Refuse (``table_unavailable``) a query reading a table whose files could not
        be read when the views were made; a damaged file of one table leaves the others'
        queries alone."""
        refuse_unreadable(self.unreadable, reads)

    @property
    def retired(self) -> bool:
        """Whether DuckDB invalidated it (:meth:`SandboxConnection.retire`): make a new one."""
        return self._connection.retired

    @property
    def connection(self) -> SandboxConnection:
        """The locked connection; cursors opened through it read the tables (trusted code
        may register more data on them)."""
        return self._connection

    def run(
        self,
        sql: str,
        limits: Limits,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        fixed_width: bool = False,
    ) -> RunResult:
        return run_select(self._connection, sql, limits, prepare=prepare, fixed_width=fixed_width)

    def count(
        self,
        sql: str,
        limits: Limits,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        *,
        spent: float = 0.0,
    ) -> int | None:
        """Rows of the whole answer (for a result the row limit cut), or None. The cut
        answer had more than ``limits.rows`` rows: a count saying otherwise (the data
        changed between the two runs) is no count. The count runs in what is left of the
        query's timeout after the ``spent`` seconds its answer took, so the two together
        stay within it (a query's place is free once its timeout has passed)."""
        left = limits.timeout_seconds - spent
        if left <= 0:
            return None
        counted = count_rows(self._connection, sql, timeout_seconds=left, prepare=prepare)
        return counted if counted is not None and counted > limits.rows else None

    def close(self) -> None:
        """Close it, once the queries running in it end."""
        self._connection.close()

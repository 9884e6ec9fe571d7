"""DuckDB files (extracts, the analytics DB) opened through an in-memory DuckDB, a host, to
which the file is attached for the moment: attaching and detaching costs ~1 ms where
opening the file as a DuckDB of its own costs ~10-15 ms (a new instance builds its whole
function catalog), on every publish of every table and every rebuild.

A host checkpoints at every commit (``checkpoint_threshold = 0``): DuckDB then writes the
committed changes straight into the file instead of first to the WAL and again at the
checkpoint that the DETACH would make (one flush to disk fewer, ~1 ms), and the file is left
with no WAL for readers to replay. It runs on one thread: it only ever runs small catalog
statements, for which scheduling work across threads costs more than it gives (~1 ms a
publish).

Which host, so that no one's reads reach into another's writes (a catalog function such as
``duckdb_columns()`` opens a transaction in every database attached to its host, and a
write's commit does not checkpoint while another transaction is open there):

- :data:`WRITER`, for writing extracts (:func:`attached`);
- :data:`READER`, for reading from any thread (:func:`attached` with ``read_only``, or
  ``read_parquet`` on one of its cursors): only read-only attachments, which no
  transaction can hold back;
- a :class:`Host` of one's own, for work that is serialised anyway (the orchestrator's
  rebuilds, under its lock; the conversion of tables to DuckDB's storage, on its thread).

The caller holds the file's lock (:func:`agnes_sync.locks.lock_for`), so one file is
attached once at a time (DuckDB refuses a second attachment of the same file); an
attachment never outlives the ``with`` block, and whatever the block did not commit is
rolled back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb

from agnes_sync.sql_text import quote_ident, quote_literal
from agnes_sync.time_zone import TIME_ZONE


class Host:
    """An in-memory DuckDB (opened at first use) to which files are attached."""

    def __init__(self, **config: str | int) -> None:
        """``config``: DuckDB settings beside the host's own (e.g. ``memory_limit``)."""
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "threads": 1,
            "checkpoint_threshold": "0b",
            **config,
        }
        self._guard = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor (close it when done; cursors are safe across threads)."""
        with self._guard:
            if self._con is None:
                self._con = duckdb.connect(config=self._config)
                # Times as queries read them, not in the machine's zone (a setting of
                # the ICU extension: not accepted in the config, before it is loaded).
                self._con.execute(f"SET GLOBAL TimeZone = {quote_literal(TIME_ZONE)}")
            return self._con.cursor()

    @contextmanager
    def attached(
        self, db: Path, *, read_only: bool = False, block_size: int | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose default database is ``db`` (created if missing, unless
        ``read_only``: then a missing file raises :class:`duckdb.IOException`).
        ``block_size``: the block size of a file created here (DuckDB's default, 256 KiB,
        otherwise; a file holds at least a few blocks)."""
        alias = quote_ident(f"attached_{uuid.uuid4().hex}")
        admin = self.cursor()
        try:
            options = ["READ_ONLY"] if read_only else []
            if block_size is not None:
                options.append(f"BLOCK_SIZE {int(block_size)}")
            mode = f" ({', '.join(options)})" if options else ""
            admin.execute(f"ATTACH {quote_literal(str(db))} AS {alias}{mode}")
            try:
                con = self.cursor()
                try:
                    con.execute(f"USE {alias}")
                    yield con
                finally:
                    con.close()  # rolls back what the block did not commit
            finally:
                self._detach(admin, alias)
        finally:
            admin.close()

    def _detach(self, admin: duckdb.DuckDBPyConnection, alias: str) -> None:
        """Detach ``alias``; if DuckDB refuses, drop the whole host instead (its next use
        opens a new one), so a file never stays attached and refused for the process's
        life. Cursors still open on the old host keep it alive until they close."""
        try:
            admin.execute(f"DETACH {alias}")
        except duckdb.Error:
            with self._guard:
                self._con = None
            raise

    def close(self) -> None:
        with self._guard:
            con, self._con = self._con, None
        if con is not None:
            con.close()


WRITER = Host()
READER = Host()


def attached(
    db: Path, *, read_only: bool = False
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """``db`` attached to the process's :data:`WRITER` host, or to its :data:`READER` host
    when ``read_only``."""
    return (READER if read_only else WRITER).attached(db, read_only=read_only)

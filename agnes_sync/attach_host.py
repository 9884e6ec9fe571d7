"""DuckDB files (extracts, the analytics DB) opened through one in-memory DuckDB per process,
the host, to which the file is attached for the moment: attaching and detaching costs
~1 ms where opening the file as a DuckDB of its own costs ~10-15 ms (a new instance builds
its whole function catalog), on every publish of every table and every rebuild.

The host checkpoints at every commit (``checkpoint_threshold = 0``): DuckDB then writes the
committed changes straight into the file instead of first to the WAL and again at the
checkpoint that the DETACH would make (one flush to disk fewer, ~1 ms), and the file is left
with no WAL for readers to replay. It runs on one thread: it only ever runs small catalog
statements, for which scheduling work across threads costs more than it gives (~1 ms a
publish).

The caller holds the file's lock (:func:`agnes_sync.locks.lock_for`), so one file is
attached once at a time (DuckDB refuses a second attachment of the same file); an
attachment never outlives the ``with`` block, and whatever the block did not commit is
rolled back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agnes_sync.sql_text import quote_ident, quote_literal

_guard = threading.Lock()
_host: duckdb.DuckDBPyConnection | None = None


def host_cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor on the host (close it when done; cursors are safe across threads)."""
    global _host
    with _guard:
        if _host is None:
            _host = duckdb.connect(config={"threads": 1, "checkpoint_threshold": "0b"})
        return _host.cursor()


@contextmanager
def attached(db: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose default database is ``db`` (created if missing, unless
    ``read_only``: then a missing file raises :class:`duckdb.IOException`)."""
    alias = quote_ident(f"attached_{uuid.uuid4().hex}")
    admin = host_cursor()
    try:
        mode = " (READ_ONLY)" if read_only else ""
        admin.execute(f"ATTACH {quote_literal(str(db))} AS {alias}{mode}")
        try:
            con = host_cursor()
            try:
                con.execute(f"USE {alias}")
                yield con
            finally:
                con.close()  # rolls back what the block did not commit
        finally:
            admin.execute(f"DETACH {alias}")
    finally:
        admin.close()

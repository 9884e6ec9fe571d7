"""The system DuckDB: one process writes it, through the repositories.

Open it with :meth:`SystemStore.open`, which turns the ways a DuckDB file can be
unusable (locked by another process, not a DuckDB file, written by newer code)
into errors that name the file and say what to do. Every operation takes its own
cursor, so the store is safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agnes_mcp.errors import (
    SystemStoreCorrupt,
    SystemStoreError,
    SystemStoreLocked,
    SystemStoreTooNew,
)
from agnes_mcp.store.migrate import current_version, head_version, migrate


class SystemStore:
    """A connection to ``state/system.duckdb`` plus a change counter for caches."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self._con = connection
        self._generation = 0
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: Path, *, run_migrations: bool = True) -> SystemStore:
        """Open (creating if needed) and migrate the system DB at ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SystemStoreError(
                f"Cannot create the folder for the system DB {path}: {exc.strerror}.",
                hint="Check that the data dir is writable, or choose another with --data-dir.",
            ) from None
        try:
            con = duckdb.connect(str(path), config={"threads": 2})
        except duckdb.IOException as exc:
            raise _explain_open_error(path, exc) from None
        except duckdb.Error as exc:
            raise SystemStoreCorrupt(
                f"The system DB {path} cannot be opened: {_first_line(exc)}",
                hint=_CORRUPT_HINT,
            ) from None
        store = cls(path, con)
        try:
            at = current_version(con)
            if at > head_version():
                raise SystemStoreTooNew(
                    f"The system DB {path} is at schema version {at}, newer than this "
                    f"Agnes understands ({head_version()}).",
                    hint="Upgrade Agnes, or restore a backup made before the upgrade.",
                )
            if run_migrations:
                migrate(con)
        except BaseException:
            con.close()
            raise
        return store

    # --- access ------------------------------------------------------------------

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one operation (thread-safe)."""
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside BEGIN/COMMIT; rolled back if the block raises. Bumps the generation."""
        with self.cursor() as cur:
            cur.begin()
            try:
                yield cur
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
        self.bump()

    # --- change tracking for in-memory caches ---------------------------------------

    @property
    def generation(self) -> int:
        """Increases after every committed change made through the repositories."""
        return self._generation

    def bump(self) -> None:
        with self._lock:
            self._generation += 1

    def schema_version(self) -> int:
        with self.cursor() as cur:
            return current_version(cur)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._con.close()


_CORRUPT_HINT = (
    "Restore state/system.duckdb from a backup; or move it aside and start again to get an "
    "empty store (users, tokens and grants then have to be recreated)."
)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _explain_open_error(path: Path, exc: duckdb.IOException) -> SystemStoreError:
    text = str(exc)
    if "lock" in text.lower():
        holder = ""
        if "PID" in text:
            holder = " (" + text[text.index("PID") :].split(")")[0] + ")"
        return SystemStoreLocked(
            f"The system DB {path} is locked by another process{holder}.",
            hint=(
                "Another Agnes server is probably running on this data dir: stop it, or use "
                "another --data-dir. Admin commands go through the running server "
                "('agnes admin ...')."
            ),
        )
    if "not a valid DuckDB database" in text or "Corrupt" in text or "checksum" in text.lower():
        return SystemStoreCorrupt(
            f"The system DB {path} is not a valid DuckDB database (corrupt or not a DuckDB file).",
            hint=_CORRUPT_HINT,
        )
    if "Permission denied" in text:
        return SystemStoreError(
            f"The system DB {path} cannot be opened: permission denied.",
            hint="Run the server as the user that owns the data dir.",
        )
    return SystemStoreError(f"The system DB {path} cannot be opened: {_first_line(exc)}")

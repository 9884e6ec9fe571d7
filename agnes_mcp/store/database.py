"""The system DuckDB: one process writes it, through the repositories.

Open it with :meth:`SystemStore.open`, which turns the ways a DuckDB file can be
unusable (locked by another process, not a DuckDB file, written by newer code)
into errors that name the file and say what to do. Every operation takes its own
cursor, so the store is safe to share between threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
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
    """A connection to ``state/system.duckdb`` plus a change counter for caches.

    Reads run concurrently, each on its own cursor. Writes are serialised by one
    re-entrant lock (:meth:`writing`): the system DB sees few writes, and DuckDB's
    optimistic concurrency would otherwise turn two admins' simultaneous changes into
    commit-time conflicts. A check that must hold while writing (does the group still
    exist?) runs inside :meth:`writing` too.
    """

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self._con = connection
        self._generation = 0
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False
        # Called (no arguments, on the writer's thread) after each committed change.
        self.change_listeners: list[Callable[[], None]] = []

    @classmethod
    def open(cls, path: Path, *, run_migrations: bool = True) -> SystemStore:
        """Open (creating if needed) and migrate the system DB at ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
        with contextlib.suppress(OSError):  # e-mails, token hashes and IPs: owner only
            path.chmod(0o600)
            path.parent.chmod(0o700)
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
    def writing(self) -> Iterator[None]:
        """Hold the write lock (re-entrant): checks and writes inside see no other writer."""
        with self._write_lock:
            yield

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside BEGIN/COMMIT under the write lock; rolled back if the block raises."""
        with self._write_lock, self.cursor() as cur:
            cur.begin()
            try:
                yield cur
            except BaseException:
                _rollback(cur)
                raise
            try:
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Like :meth:`writer`, and bumps the generation so in-memory caches refresh."""
        with self.writer() as cur:
            yield cur
        self.bump()

    # --- change tracking for in-memory caches ---------------------------------------

    @property
    def generation(self) -> int:
        """Increases after every committed change made through the repositories."""
        return self._generation

    def bump(self) -> None:
        with self._lock:
            self._generation += 1
        for listener in self.change_listeners:
            listener()

    def schema_version(self) -> int:
        with self.cursor() as cur:
            return current_version(cur)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._con.close()


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed COMMIT has already ended it)."""
    with contextlib.suppress(duckdb.Error):
        cur.rollback()


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

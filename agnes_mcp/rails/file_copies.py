"""Table files the sandbox's DuckDB reads with its own parquet reader, under names that
say nothing about the server.

DuckDB's parquet reader is what makes a query fast (``count(*)`` from the footers, row
groups skipped by their statistics, strings kept as dictionaries, footers cached), but
with external access off it opens only ``allowed_paths``, which any query can read back
(``duckdb_settings()``, ``current_setting``) and which DuckDB canonicalises (symlinks,
``/proc/self/fd/<n>`` included, are resolved to the real file). So the sandbox never
names a table's files: each file is copied once by the kernel (``sendfile``) into an
anonymous in-memory file (``memfd_create``), sealed against any write, and DuckDB reads
it as ``/proc/self/fd/<n>``, whose canonical name is ``/memfd:agnes-<k> (deleted)``.
That is all a query can see, name or open; the real paths stay in trusted code.

A copy is shared by every sandbox that reads the file (keyed by device, inode, size and
modification time, so a file a sync replaced is copied again) and closed when the last
of them closes. They cost memory (the parquet bytes, compressed: 17 MB for the demo at
full scale), so copies stop at a byte budget and an open-file budget; past either, or
where the platform has no ``memfd_create`` (macOS, Windows), a table is read through an
Arrow dataset instead (:mod:`arrow_sources`), slower and equally sealed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no copies, every table read through Arrow
    fcntl = None  # type: ignore[assignment]

DEFAULT_MAX_BYTES = 2 * 1024**3
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


@dataclass
class _Copy:
    fd: int
    size: int
    users: int = 0

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self.fd}"


@dataclass
class Lease:
    """Copies of one table's files, in the table's order, held until :meth:`release`."""

    paths: list[str]
    _keys: list[tuple[int, int, int, int]] = field(repr=False)
    _owner: FileCopies | None = field(default=None, repr=False)

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._release(self._keys)


class FileCopies:
    """The process's in-memory copies of table files, shared and reference-counted."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_files: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_files = _file_budget() if max_files is None else max_files
        self._copies: dict[tuple[int, int, int, int], _Copy] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._names = itertools.count()

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def files(self) -> int:
        return len(self._copies)

    def lease(self, files: tuple[str, ...] | list[str]) -> Lease | None:
        """In-memory copies of ``files`` (made now where missing), or None when this
        platform cannot make them or the budget has no room: the caller reads the files
        some other way. Raises OSError when a file cannot be read."""
        if not files or not supported():
            return None
        keys: list[tuple[int, int, int, int]] = []
        try:
            for path in files:
                key = self._acquire(path)
                if key is None:
                    self._release(keys)
                    return None
                keys.append(key)
        except BaseException:
            self._release(keys)
            raise
        with self._lock:
            paths = [self._copies[k].path for k in keys]
        return Lease(paths, keys, self)

    def _acquire(self, path: str) -> tuple[int, int, int, int] | None:
        with Path(path).open("rb") as source:
            stat = os.fstat(source.fileno())
            key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            with self._lock:
                found = self._copies.get(key)
                if found is not None:
                    found.users += 1
                    return key
                if (
                    self._bytes + stat.st_size > self.max_bytes
                    or len(self._copies) >= self.max_files
                ):
                    return None
                self._bytes += stat.st_size  # reserved while copying outside the lock
            try:
                fd = _copy(source.fileno(), stat.st_size, f"agnes-{next(self._names)}")
            except BaseException:
                with self._lock:
                    self._bytes -= stat.st_size
                raise
        with self._lock:
            found = self._copies.get(key)
            if found is not None:  # another thread copied it meanwhile: keep theirs
                self._bytes -= stat.st_size
                found.users += 1
                os.close(fd)
                return key
            self._copies[key] = _Copy(fd, stat.st_size, users=1)
        return key

    def _release(self, keys: list[tuple[int, int, int, int]]) -> None:
        closing = []
        with self._lock:
            for key in keys:
                copy = self._copies.get(key)
                if copy is None:
                    continue
                copy.users -= 1
                if copy.users <= 0:
                    del self._copies[key]
                    self._bytes -= copy.size
                    closing.append(copy.fd)
        for fd in closing:
            os.close(fd)


def _copy(source: int, size: int, name: str) -> int:
    """A sealed in-memory file holding the ``size`` bytes of ``source``."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        offset = 0
        while offset < size:
            sent = os.sendfile(fd, source, offset, size - offset)
            if sent == 0:
                raise OSError(f"the file shrank while it was copied ({offset} of {size} bytes)")
            offset += sent
        seals = 0
        for seal in _SEALS:
            seals |= getattr(fcntl, seal)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_budget() -> int:
    """A quarter of the open files this process may hold: the rest stay for sockets,
    DuckDB's own reads and the system store."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return 256
    if soft == resource.RLIM_INFINITY:
        return 16_384
    return max(0, soft // 4)


_supported: bool | None = None


def supported() -> bool:
    """Whether this platform gives in-memory files whose ``/proc/self/fd`` name resolves
    to an anonymous name (checked once, on a real one), and sealing."""
    global _supported
    if _supported is None:
        _supported = _probe()
    return _supported


def _probe() -> bool:
    if fcntl is None or not hasattr(os, "memfd_create") or not hasattr(fcntl, "F_ADD_SEALS"):
        return False
    fd = -1
    try:
        fd = os.memfd_create("agnes-probe", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.write(fd, b"probe")
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
        resolved = os.path.realpath(f"/proc/self/fd/{fd}")
        with Path(f"/proc/self/fd/{fd}").open("rb") as again:
            readable = again.read() == b"probe"
        return readable and resolved.startswith("/memfd:agnes-probe")
    except OSError:
        return False
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class InPlaceFiles:
    """The files themselves, for a sandbox whose paths are no secret (a workspace reads
    its own pulled files on the analyst's machine): native reading, no copy, no memory.
    DuckDB may still open those files and nothing else."""

    def lease(self, files: tuple[str, ...] | list[str]) -> Lease | None:
        if not files:
            return None
        # strict: a file that is gone is refused as a copy of it would be
        return Lease([str(Path(p).resolve(strict=True)) for p in files], [])


NativeFiles = FileCopies | InPlaceFiles

SHARED = FileCopies()  # the process's copies: every sandbox shares them and their budget
IN_PLACE = InPlaceFiles()

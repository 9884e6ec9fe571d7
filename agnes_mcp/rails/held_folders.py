"""Private folders in the system's temporary folder that a process holds while it lives.

A query DuckDB's spill files (``agnes-spill-*``) and the converted tables
(``agnes-tables-*``, gigabytes) live in folders the process removes when it closes them
or exits; a process that is killed (SIGKILL, the OOM killer, a power cut) leaves them
behind, and every restart added more. So each folder holds a lock file (``.held``, an
exclusive ``flock`` the kernel releases when the process dies, whatever killed it), and
making a folder, or a server starting, first removes the folders of its kind whose lock
can be taken: their process is gone. A folder of another live process, or one without
a lock file (made by an older version, or being made), is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

LOCK_NAME = ".held"
PREFIXES = ("agnes-spill-", "agnes-tables-")


class HeldFolder:
    """A new private folder (mode 0700) named ``<prefix><random>``, held until
    :meth:`remove` (or the process's end)."""

    def __init__(self, prefix: str) -> None:
        sweep(prefix)
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        # locked before it takes its name, so a sweep never finds it unlocked
        building = self.path / f"{LOCK_NAME}.new"
        self._fd: int | None = os.open(building, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        building.rename(self.path / LOCK_NAME)
        self._lock = threading.Lock()

    def remove(self) -> None:
        """Remove the folder and let go of it (idempotent)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(fd)


def sweep(prefix: str) -> list[Path]:
    """Remove the folders named ``<prefix>*`` in the system's temporary folder, of this
    user, whose holding process has died; returns them."""
    removed = []
    parent = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if entry.name.startswith(prefix) and _abandoned(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def sweep_all() -> list[Path]:
    """:func:`sweep` every kind of held folder (at a server's start)."""
    return [path for prefix in PREFIXES for path in sweep(prefix)]


def _abandoned(folder: Path) -> bool:
    """Whether ``folder`` is a directory of this user holding a lock file nobody holds."""
    try:
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # gone, not ours, or no lock file: not known to be abandoned
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its process lives
    finally:
        os.close(fd)  # (a lock taken is let go with it)
    return True

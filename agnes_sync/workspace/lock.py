"""One pull (or push) at a time per workspace: an exclusive lock file in ``.agnes/``,
released by the OS when the process ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from agnes_sync.errors import AgnesError
from agnes_sync.storage_errors import workspace_writes
from agnes_sync.workspace.layout import WorkspacePaths


@contextmanager
def workspace_lock(paths: WorkspacePaths, name: str, busy: type[AgnesError]) -> Iterator[None]:
    """An exclusive lock file in ``.agnes/`` (released by the OS if the process dies).
    What the holder writes meanwhile (the lock file first) and the disk refuses is raised
    as ``workspace_unwritable`` (:func:`~agnes_sync.storage_errors.workspace_writes`)."""
    with workspace_writes(paths.root):
        paths.dot.mkdir(parents=True, exist_ok=True)
        fd = os.open(paths.dot / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy(f"Another {name.split('.')[0]} is running in {paths.root}.") from None
            yield
        finally:
            os.close(fd)

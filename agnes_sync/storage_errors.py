"""Recognising a write the data dir's disk refused, wherever it surfaced.

DuckDB reports a failed write as an ``IOException`` (or a failed commit as a
``TransactionException``) whose text holds the operating system's reason; Python as an
``OSError`` with its ``errno``. A connector may have wrapped either in an error of its own
(a reader error, say), so the whole chain of causes is searched.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agnes_sync.errors import AgnesError, StorageUnwritable

# errno -> the reason as the C library words it (what DuckDB's messages carry)
_REASONS = {
    errno.ENOSPC: "No space left on device",
    errno.EROFS: "Read-only file system",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EFBIG: "File too large",
}


# A workspace is the user's own folder: one made by another account (sudo) refuses too.
_DENIED = {
    errno.EACCES: "Permission denied",
    errno.EPERM: "Operation not permitted",
}


def _reason(exc: BaseException, reasons: dict[int, str] = _REASONS) -> str | None:
    if isinstance(exc, OSError) and exc.errno in reasons:
        return reasons[exc.errno]
    text = str(exc)
    return next((reason for reason in reasons.values() if reason in text), None)


def _refused_write(exc: BaseException, reasons: dict[int, str]) -> str | None:
    """The reason a refused write caused ``exc``, searching its chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = _reason(current, reasons)
        if reason is not None:
            return reason
        current = current.__cause__ or current.__context__
    return None


def storage_failure(exc: BaseException, data_dir: Path) -> StorageUnwritable | None:
    """``exc`` as a :class:`StorageUnwritable` when a refused write caused it, else None."""
    reason = _refused_write(exc, _REASONS)
    if reason is None:
        return None
    return StorageUnwritable(
        f"Writing to the data dir {data_dir} failed: {reason}.",
        hint="Free space on the disk holding the data dir (or make it writable, or "
        "raise its quota or the file-size limit). What was published before stays "
        "as it was; a failed sync is tried again at its next run.",
        details={"reason": reason},
    )


class WorkspaceUnwritable(AgnesError):
    """The disk holding a workspace refused a write: full, read-only, over a quota, or a
    folder this account may not write."""

    code = "workspace_unwritable"
    status = 507


def workspace_failure(exc: BaseException, root: Path) -> WorkspaceUnwritable | None:
    """``exc`` as a :class:`WorkspaceUnwritable` when a refused write in the workspace at
    ``root`` caused it, else None."""
    if isinstance(exc, AgnesError):
        return exc if isinstance(exc, WorkspaceUnwritable) else None
    reason = _refused_write(exc, {**_REASONS, **_DENIED})
    if reason is None:
        return None
    return WorkspaceUnwritable(
        f"Writing to the workspace {root} failed: {reason}.",
        hint="Free space on its disk (disk_info shows what the workspace holds, "
        "snapshot_drop frees a snapshot's), or make its .agnes/ writable by this account. "
        "What was there before stays as it was: nothing half-written is used.",
        details={"reason": reason},
    )


@contextmanager
def workspace_writes(root: Path) -> Iterator[None]:
    """Raise a write the workspace's disk refuses as :class:`WorkspaceUnwritable` (an
    answer naming the folder and the reason), not as the ``OSError`` or DuckDB error it
    surfaced as: a traceback from the CLI, "Error calling tool" from the MCP server."""
    try:
        yield
    except Exception as exc:
        refused = workspace_failure(exc, root)
        if refused is None or refused is exc:
            raise
        raise refused from exc

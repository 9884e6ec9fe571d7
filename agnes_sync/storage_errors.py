"""Recognising a write the data dir's disk refused, wherever it surfaced.

DuckDB reports a failed write as an ``IOException`` (or a failed commit as a
``TransactionException``) whose text holds the operating system's reason; Python as an
``OSError`` with its ``errno``. A connector may have wrapped either in an error of its own
(a reader error, say), so the whole chain of causes is searched.
"""

from __future__ import annotations

import errno
from pathlib import Path

from agnes_sync.errors import StorageUnwritable

# errno -> the reason as the C library words it (what DuckDB's messages carry)
_REASONS = {
    errno.ENOSPC: "No space left on device",
    errno.EROFS: "Read-only file system",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EFBIG: "File too large",
}


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = str(exc)
    return next((reason for reason in _REASONS.values() if reason in text), None)


def storage_failure(exc: BaseException, data_dir: Path) -> StorageUnwritable | None:
    """``exc`` as a :class:`StorageUnwritable` when a refused write caused it, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = _reason(current)
        if reason is not None:
            return StorageUnwritable(
                f"Writing to the data dir {data_dir} failed: {reason}.",
                hint="Free space on the disk holding the data dir (or make it writable, or "
                "raise its quota or the file-size limit). What was published before stays "
                "as it was; a failed sync is tried again at its next run.",
                details={"reason": reason},
            )
        current = current.__cause__ or current.__context__
    return None

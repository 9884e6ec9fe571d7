"""Start writing a download to disk while it is still arriving, so that the fsync before
its rename has little left to wait for.

Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` queues the written range for writeback
and returns at once (it promises nothing about durability: the fsync still does). Where
it is not available this does nothing and the fsync does all the work, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

EVERY = 8 << 20  # bytes between two kicks
_WRITE = 2  # SYNC_FILE_RANGE_WRITE


def _load() -> Callable[[int, int, int], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def kick(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, _WRITE)  # best effort: an error only means no head start

    return kick


_kick = _load()


class Writeback:
    """Call :meth:`wrote` after each write; every ``EVERY`` bytes it queues the new range."""

    def __init__(self, fd: int, start: int = 0) -> None:
        self.fd = fd
        self.queued = start
        self.end = start

    def wrote(self, count: int) -> None:
        self.end += count
        if _kick is not None and self.end - self.queued >= EVERY:
            _kick(self.fd, self.queued, self.end - self.queued)
            self.queued = self.end

    def finish(self) -> None:
        """Queue what is left (the file is whole: its flush comes next)."""
        if _kick is not None and self.end > self.queued:
            _kick(self.fd, self.queued, self.end - self.queued)
            self.queued = self.end

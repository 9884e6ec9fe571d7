"""Where a query's DuckDB writes what does not fit in its memory, and how much it may.

Past ``memory_limit`` DuckDB offloads sorts, joins and aggregates to its
``temp_directory``: by default ``.tmp`` in the process's working folder (the server's, or
an analyst's workspace), up to 90% of that disk's free space. One query sorting a cross
join could so fill the disk the server's own state lives on. Each locked DuckDB instead
spills into a folder of its own under one private folder of the process (mode 0700, in
the system's temporary folder), which DuckDB creates when it first spills and removes
when it closes (the folder goes at exit, or, after a kill, when a later process sweeps
it: :mod:`held_folders`), and at most ``spill_bytes`` (the server's ``query_spill_bytes``); past
that the query is refused as over its memory (``memory_limit_exceeded``).
"""

from __future__ import annotations

import atexit
import itertools
import threading
from pathlib import Path

from agnes_mcp.rails.held_folders import HeldFolder

# Disk one query DuckDB may spill to by default (half its default memory limit).
SPILL_BYTES = 1024**3

_lock = threading.Lock()
_parent: Path | None = None
_names = itertools.count()


def folder() -> str:
    """A new folder path for one DuckDB's spill files (not created: DuckDB creates it on
    its first spill and removes it when it closes)."""
    global _parent
    with _lock:
        if _parent is None or not _parent.is_dir():
            held = HeldFolder("agnes-spill-")  # mode 0700; a killed process's is swept
            atexit.register(held.remove)
            _parent = held.path
        return str(_parent / str(next(_names)))


def over_budget(message: str) -> bool:
    """Whether a DuckDB error says a query could not spill past its budget."""
    return "max_temp_directory_size" in message

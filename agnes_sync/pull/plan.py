"""What a pull must do: files to fetch, files already right, files to remove.

A file is right when the state recorded its hash and it is still on disk with the same
size and modification time; a file that is there but changed (or was never recorded) is
hashed, and fetched only if its bytes differ. Files of tables the manifest no longer
lists (a revoked grant, an unregistered table) and vanished partitions are removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from agnes_sync.hashing import file_hash
from agnes_sync.pull.listing import Listing
from agnes_sync.pull.state import FileState, PullState


@dataclass(frozen=True)
class FileJob:
    table: str
    relative: str  # under .agnes/data/
    part: str | None  # the download's ?part= (None for a table's only file)
    size: int
    hash: str


@dataclass
class PullPlan:
    fetch: list[FileJob] = field(default_factory=list)
    unchanged: dict[str, FileState] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)  # paths under .agnes/data/

    @property
    def fetch_bytes(self) -> int:
        return sum(j.size for j in self.fetch)


def _still_right(path: Path, want: str, size: int, known: FileState | None) -> FileState | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if stat.st_size != size:
        return None
    if known is not None and known.hash == want and known.mtime_ns == stat.st_mtime_ns:
        return known
    if file_hash(path, mapped=False) == want:  # there, but not recorded: check the bytes
        return FileState(table="", hash=want, size=size, mtime_ns=stat.st_mtime_ns)
    return None


def plan_pull(manifest: Listing, state: PullState, data: Path) -> PullPlan:
    plan = PullPlan()
    wanted: set[str] = set()
    for table in manifest.tables:
        single = len(table.parts) == 1
        for part in table.parts:
            wanted.add(part.path)
            right = _still_right(data / part.path, part.hash, part.size, state.files.get(part.path))
            if right is not None:
                plan.unchanged[part.path] = replace(right, table=table.id)
            else:
                plan.fetch.append(
                    FileJob(
                        table.id, part.path, None if single else part.path, part.size, part.hash
                    )
                )
    plan.remove = sorted((_parquet_on_disk(data) | set(state.files)) - wanted)
    return plan


def _parquet_on_disk(data: Path) -> set[str]:
    """Paths under ``data`` of the parquet files there, hidden files and folders left out
    (os.walk with plain strings: pathlib's rglob cost ~35 ms for 1,000 files)."""
    found: set[str] = set()
    for folder, folders, files in os.walk(data):
        folders[:] = [f for f in folders if not f.startswith(".")]
        prefix = os.path.relpath(folder, data)
        for name in files:
            if name.endswith(".parquet") and not name.startswith("."):
                found.add(name if prefix == "." else str(Path(prefix, name)))
    return found

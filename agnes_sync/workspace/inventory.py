"""What a workspace holds: pulled tables, snapshots and kept results, found on disk.

A table is ``data/<id>.parquet`` or a folder ``data/<id>/`` of parquet parts (partitioned
tables keep the server's ``<column>_<grain>=<key>/`` folders). ``manifest.json``, when a
pull wrote one, adds descriptions and freshness. Hidden files (downloads in progress)
are never listed.

Reading the inventory builds a path object per file and parses the manifest: ~1.5 ms on
the demo's workspace, which every query paid. :func:`disk_state` is the cheap question
asked first (a directory listing and a ``stat`` per file, no objects): while its answer
stays the same, so does the inventory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agnes_sync.pull import failure
from agnes_sync.snapshot_files import NAME, SnapshotFiles
from agnes_sync.workspace.layout import WorkspacePaths

if TYPE_CHECKING:
    from agnes_sync.snapshot_meta import SnapshotMeta


@dataclass(frozen=True)
class LocalTable:
    id: str
    files: tuple[Path, ...]
    description: str = ""
    query_mode: str = "local"
    updated: dt.datetime | None = None
    rows: int | None = None
    size_bytes: int = 0
    # Parts the last manifest lists that are not on disk (a pull that failed or stopped
    # before fetching them): the files here are not the whole table.
    missing_parts: int = 0
    listed_parts: int = 0
    # Why the server's copy was not whole when pulled (its manifest's ``incomplete``).
    incomplete: str | None = None
    # The last pull failed and left this copy as it was: since when, why, how to retry.
    stale: str | None = None


@dataclass
class Inventory:
    tables: dict[str, LocalTable] = field(default_factory=dict)
    snapshots: dict[str, SnapshotMeta] = field(default_factory=dict)
    results: dict[str, Path] = field(default_factory=dict)
    remote: dict[str, dict[str, Any]] = field(default_factory=dict)  # from the manifest
    snapshot_root: Path = Path()


DiskState = tuple[object, ...]


def disk_state(paths: WorkspacePaths) -> DiskState:
    """A fingerprint of everything :func:`read_inventory` reads: each visible entry under
    ``data/`` at any depth and each entry of the snapshot and result folders (path, size,
    modification time, inode), and the manifests'. A file added, removed, replaced or
    rewritten in place changes it; equal fingerprints mean equal inventories. Hidden
    entries under ``data/`` (downloads in progress) are left out, as the inventory
    leaves them out; elsewhere everything counts (a superset only costs a re-read)."""
    found: list[object] = [
        _stat(paths.manifest),
        _stat(paths.pending_manifest),
        _stat(paths.pull_failure),
    ]
    _entries_of(str(paths.data), found, deep=True)
    _entries_of(str(paths.snapshots), found, deep=False)
    _entries_of(str(paths.results), found, deep=False)
    return tuple(found)


def _stat(path: Path) -> tuple[object, ...]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def _entries_of(folder: str, found: list[object], *, deep: bool) -> None:
    """Append ``folder``'s entries (with ``deep``, its visible sub-folders' too: as the
    inventory, a folder is entered through a link only at the top, never below)."""
    pending = [(folder, True)]
    while pending:
        current, top = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)  # in the folder's own order, stable while unchanged
        except OSError:
            found.append((current, None))
            continue
        for entry in entries:
            if deep and entry.name.startswith("."):
                continue
            if deep and entry.is_dir(follow_symlinks=top):
                found.append((entry.path, "folder"))
                pending.append((entry.path, False))
                continue
            try:
                st = entry.stat()
            except OSError:
                found.append((entry.path, None))
                continue
            found.append((entry.path, st.st_size, st.st_mtime_ns, st.st_ino))


def _parquet_files(folder: Path) -> tuple[Path, ...]:
    return tuple(
        sorted(
            p
            for p in folder.rglob("*.parquet")
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    )


def _files_of(entry: Path) -> tuple[Path, ...]:
    """A table's files: ``<id>.parquet``, or the parquet parts of the folder ``<id>/``."""
    if entry.suffix == ".parquet" and entry.is_file():
        return (entry,)
    if entry.is_dir():
        return _parquet_files(entry)
    return ()


def table_files(data: Path, table_id: str) -> tuple[Path, ...]:
    """The files :func:`read_inventory` finds for one table under ``data``."""
    return _files_of(data / f"{table_id}.parquet") or _files_of(data / table_id)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _entries(manifest: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    items = manifest.get(key)
    if not isinstance(items, list):
        return {}
    return {str(t.get("id")): t for t in items if isinstance(t, dict)}


def _listed_parts(data: Path, entry: dict[str, Any]) -> set[Path]:
    """The files of a partitioned table that its manifest entry lists."""
    parts = entry.get("parts")
    if not isinstance(parts, list):
        return set()
    return {
        data / part["path"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("path"), str)
    }


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_inventory(paths: WorkspacePaths) -> Inventory:
    inventory = Inventory(snapshot_root=paths.snapshots)
    manifest = _manifest(paths.manifest)
    described = _entries(manifest, "tables")
    pending = _entries(_manifest(paths.pending_manifest), "tables")  # a pull not finished
    inventory.remote = _entries(manifest, "remote_tables")
    failed = failure.read(paths.dot)
    if paths.data.is_dir():
        for entry in sorted(paths.data.iterdir()):
            if entry.name.startswith("."):
                continue
            table_id = entry.stem if entry.suffix == ".parquet" else entry.name
            if not NAME.match(table_id):
                continue
            files = _files_of(entry)
            if not files:
                continue
            info = described.get(table_id, {})
            updated = info.get("updated")
            listed = _listed_parts(paths.data, info) | _listed_parts(
                paths.data, pending.get(table_id, {})
            )
            inventory.tables[table_id] = LocalTable(
                id=table_id,
                files=files,
                description=str(info.get("description") or ""),
                query_mode=str(info.get("query_mode") or "local"),
                updated=dt.datetime.fromisoformat(updated) if isinstance(updated, str) else None,
                rows=info["rows"] if isinstance(info.get("rows"), int) else None,
                size_bytes=sum(f.stat().st_size for f in files),
                missing_parts=len(listed - set(files)),
                listed_parts=len(listed),
                incomplete=_text(info.get("incomplete")),
                stale=failed.note(table_id) if failed is not None else None,
            )
    for meta in SnapshotFiles(paths.snapshots).all():
        inventory.snapshots[meta.name] = meta
    if paths.results.is_dir():
        for path in sorted(paths.results.glob("result_*.parquet")):
            inventory.results[path.stem] = path
    return inventory

"""What a workspace holds: pulled tables, snapshots and kept results, found on disk.

A table is ``data/<id>.parquet`` or a folder ``data/<id>/`` of parquet parts (partitioned
tables keep the server's ``<column>_<grain>=<key>/`` folders). ``manifest.json``, when a
pull wrote one, adds descriptions and freshness. Hidden files (downloads in progress)
are never listed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agnes_sync.snapshot_files import NAME, SnapshotFiles, SnapshotMeta
from agnes_sync.workspace.layout import WorkspacePaths


@dataclass(frozen=True)
class LocalTable:
    id: str
    files: tuple[Path, ...]
    description: str = ""
    query_mode: str = "local"
    updated: dt.datetime | None = None
    rows: int | None = None
    size_bytes: int = 0


@dataclass
class Inventory:
    tables: dict[str, LocalTable] = field(default_factory=dict)
    snapshots: dict[str, SnapshotMeta] = field(default_factory=dict)
    results: dict[str, Path] = field(default_factory=dict)
    remote: dict[str, dict[str, Any]] = field(default_factory=dict)  # from the manifest
    snapshot_root: Path = Path()

    def signature(self) -> tuple[object, ...]:
        """Changes whenever a file is added, replaced or removed."""
        parts: list[object] = []
        for table in self.tables.values():
            parts.extend((str(f), f.stat().st_mtime_ns) for f in table.files if f.exists())
        parts.extend((m.name, m.created_at) for m in self.snapshots.values())
        parts.extend(sorted(self.results))
        return tuple(parts)


def _parquet_files(folder: Path) -> tuple[Path, ...]:
    return tuple(
        sorted(
            p
            for p in folder.rglob("*.parquet")
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    )


def _entries(manifest: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    items = manifest.get(key)
    if not isinstance(items, list):
        return {}
    return {str(t.get("id")): t for t in items if isinstance(t, dict)}


def _manifest(paths: WorkspacePaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_inventory(paths: WorkspacePaths) -> Inventory:
    inventory = Inventory(snapshot_root=paths.snapshots)
    manifest = _manifest(paths)
    described = _entries(manifest, "tables")
    inventory.remote = _entries(manifest, "remote_tables")
    if paths.data.is_dir():
        for entry in sorted(paths.data.iterdir()):
            if entry.name.startswith("."):
                continue
            table_id = entry.stem if entry.suffix == ".parquet" else entry.name
            if not NAME.match(table_id):
                continue
            files: tuple[Path, ...] = ()
            if entry.is_file() and entry.suffix == ".parquet":
                files = (entry,)
            elif entry.is_dir():
                files = _parquet_files(entry)
            if not files:
                continue
            info = described.get(table_id, {})
            updated = info.get("updated")
            inventory.tables[table_id] = LocalTable(
                id=table_id,
                files=files,
                description=str(info.get("description") or ""),
                query_mode=str(info.get("query_mode") or "local"),
                updated=dt.datetime.fromisoformat(updated) if isinstance(updated, str) else None,
                rows=info["rows"] if isinstance(info.get("rows"), int) else None,
                size_bytes=sum(f.stat().st_size for f in files),
            )
    for meta in SnapshotFiles(paths.snapshots).all():
        inventory.snapshots[meta.name] = meta
    if paths.results.is_dir():
        for path in sorted(paths.results.glob("result_*.parquet")):
            inventory.results[path.stem] = path
    return inventory

"""How much room a workspace takes, and how much its disk has left."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from agnes_sync.workspace.layout import WorkspacePaths


@dataclass(frozen=True)
class DiskUsage:
    data_bytes: int
    snapshot_bytes: int
    result_bytes: int
    cache_bytes: int  # agnes.duckdb, the manifest and other state
    free_bytes: int


def _size(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def disk_usage(paths: WorkspacePaths) -> DiskUsage:
    data, snapshots, results = _size(paths.data), _size(paths.snapshots), _size(paths.results)
    total = _size(paths.dot)
    probe = paths.dot if paths.dot.exists() else paths.root
    return DiskUsage(
        data_bytes=data,
        snapshot_bytes=snapshots,
        result_bytes=results,
        cache_bytes=max(0, total - data - snapshots - results),
        free_bytes=shutil.disk_usage(probe).free,
    )

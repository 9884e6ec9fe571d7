"""Results too large to show, kept as ``.agnes/results/result_<id>.parquet`` so the agent
(or the analyst) can query them next. Older ones go after a day, beyond the newest 50."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pyarrow as pa

from agnes_sync import arrow_parquet, atomic

KEEP = 50
MAX_AGE_SECONDS = 24 * 3600


def keep(folder: Path, table: pa.Table) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"result_{secrets.token_hex(4)}"
    destination = folder / f"{name}.parquet"
    staged = atomic.staging_path(destination)
    try:
        arrow_parquet.write_table(table, staged)
        atomic.publish(staged, destination)
    finally:
        atomic.discard(staged)
    prune(folder)
    return name


def prune(folder: Path, now: float | None = None) -> int:
    now = time.time() if now is None else now
    files = sorted(folder.glob("result_*.parquet"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = 0
    for position, path in enumerate(files):
        if position >= KEEP or now - path.stat().st_mtime > MAX_AGE_SECONDS:
            atomic.discard(path)
            removed += 1
    return removed


def clear(folder: Path) -> int:
    """Remove every kept result; returns how many."""
    removed = 0
    for path in folder.glob("result_*.parquet"):
        atomic.discard(path)
        removed += 1
    return removed

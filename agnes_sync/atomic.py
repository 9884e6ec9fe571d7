"""Publishing files so that a reader sees either the old file or the new one, whole.

A file is written beside its destination under a hidden temporary name (never
matched by ``*.parquet``), flushed to disk, renamed over the destination, and the
folder is flushed so the rename survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

TMP_SUFFIX = ".tmp"


def staging_path(destination: Path) -> Path:
    """A hidden temporary path in the destination's folder (same file system)."""
    return destination.with_name(f".{destination.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staged: Path, destination: Path, *, sync_dir: bool = True) -> None:
    """Flush ``staged`` and rename it over ``destination`` (atomic on POSIX).

    ``sync_dir=False`` leaves making the rename durable to the caller, who publishes many
    files into few folders and syncs each folder once (a folder's fsync commits the
    file system's journal: milliseconds each)."""
    fsync_file(staged)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged.replace(destination)
    if sync_dir:
        fsync_dir(destination.parent)


def write_text(destination: Path, text: str) -> None:
    """Replace ``destination`` with ``text`` (UTF-8) atomically: readers see the old
    content or the new, never a part."""
    staged = staging_path(destination)
    try:
        staged.write_text(text, encoding="utf-8")
        publish(staged, destination)
    finally:
        discard(staged)


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def sweep_stale(folder: Path) -> int:
    """Remove temporary files a killed writer left behind; returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for leftover in list(folder.rglob(f".*{TMP_SUFFIX}")):
        remove_tree_or_file(leftover)
        removed += 1
    return removed


def remove_tree_or_file(path: Path) -> None:
    """Remove a leftover staging file or staging folder."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        discard(path)

"""The notebook cache's old folders, removed: each server and token gets its own folder
under ``$XDG_CACHE_HOME/agnes/notebooks/`` (:func:`~agnes_mcp.notebook.outside.cache_folder`),
and a token replaced or a server left behind kept its folder (pulled tables, snapshots)
for ever.

The rule, applied each time a notebook opens its cache folder (:func:`open_cache`):

- the folder opened is marked used now (``.agnes/last-used``'s time) and never removed;
- another folder is removed when it was not used for :data:`UNUSED_DAYS` days: the newest
  of its mark, its own and its ``.agnes/`` folder's times (a folder made before the mark
  existed counts from those);
- only folders directly in the cache root named as the cache names them (16 hex
  digits): never a link (nor anything through one), never a file, never anything else;
- never a folder whose pull is under way in another kernel (its pull lock is held).

What a removed folder held is the server's (pulled tables, snapshots of its tables): a
notebook that connects with that token again pulls or snapshots it anew. A folder that
cannot be removed is left as it is; opening the cache never fails for it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import shutil
from pathlib import Path

from agnes_sync.workspace.layout import DOT

UNUSED_DAYS = 30
MARK = "last-used"  # in the folder's .agnes/
_NAME = re.compile(r"[0-9a-f]{16}")


def open_cache(folder: Path, now: dt.datetime | None = None) -> Path:
    """``folder`` (a cache folder, made if new) marked used now; the cache's other folders
    unused for :data:`UNUSED_DAYS` days removed (the module's rule)."""
    moment = now or dt.datetime.now(dt.UTC)
    dot = folder / DOT
    dot.mkdir(parents=True, exist_ok=True, mode=0o700)
    mark = dot / MARK
    mark.touch()
    os.utime(mark, (moment.timestamp(), moment.timestamp()))
    cutoff = (moment - dt.timedelta(days=UNUSED_DAYS)).timestamp()
    for old in _unused(folder.parent, folder, cutoff):
        _remove(old)
    return folder


def _unused(root: Path, current: Path, cutoff: float) -> list[Path]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    found = []
    for entry in entries:
        path = Path(entry.path)
        if path == current or not _NAME.fullmatch(entry.name):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        if _last_used(path) < cutoff:
            found.append(path)
    return found


def _last_used(folder: Path) -> float:
    times = []
    for path in (folder, folder / DOT, folder / DOT / MARK):
        try:
            times.append(path.lstat().st_mtime)
        except OSError:
            continue
    return max(times, default=float("inf"))  # nothing readable: not known to be old


def _remove(folder: Path) -> None:
    """Remove ``folder`` unless a pull holds its lock (the lock is held, by this process,
    while it is removed: a pull starting meanwhile is refused as busy, not half-deleted)."""
    lock = folder / DOT / "pull.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = None
    except OSError:
        return
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a pull under way in another kernel
        shutil.rmtree(folder, ignore_errors=True)  # links inside are removed, not followed
    finally:
        if fd is not None:
            os.close(fd)

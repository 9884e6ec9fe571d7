"""Built feeds on disk (``_feeds/<key>.zip``, ``_feeds/<key>.git``), built once per key.

A feed's key covers every byte it serves and plugin folders never change, so a built
feed is never stale: new grants or a new sync make a new key. Builds are blocking (call
them from a worker thread); concurrent first requests for one key wait for one build.
Each build writes under a temporary name starting with ``.`` next to its target and
renames it into place, so a half-built feed is never served. Every use touches the
feed; after a build, the least recently used feeds beyond ``feed_cache_entries``, or
beyond ``feed_cache_bytes`` on disk, are removed, except those in use
(:meth:`FeedBuilder.lease`) or being built.

Each distinct set of granted plugins is a full copy (a ZIP and a repository, each about
the plugins' size): the byte budget bounds that, since a count alone allows 200 copies of
the largest feed. The copies share no object store on purpose: git's protocol v2 serves
any object a repository can reach by id (its alternates included), so one store shared
by feeds would hand anyone who learns a blob id a plugin their groups are not granted.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agnes_mcp.marketplace.feed import Feed
from agnes_mcp.marketplace.feed_files import feed_files
from agnes_mcp.marketplace.feed_repo import build_repo
from agnes_mcp.marketplace.feed_zip import write_zip
from agnes_mcp.marketplace.layout import MarketplaceLayout

logger = logging.getLogger("agnes.marketplace")

_SUFFIXES = (".zip", ".git")


class FeedBuilder:
    def __init__(
        self,
        layout: MarketplaceLayout,
        max_entries: int,
        git_timeout: float,
        max_bytes: int | None = None,
    ) -> None:
        self.layout = layout
        self.max_entries = max_entries
        self.max_bytes = max_bytes  # None: bounded by the count only
        self.git_timeout = git_timeout
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._leases: Counter[str] = Counter()
        self._uses = itertools.count()
        self._last_use: dict[str, int] = {}  # key -> use number, this process's uses
        self._cleaned = False

    # --- use -------------------------------------------------------------------------

    @contextmanager
    def lease(self, key: str) -> Iterator[None]:
        """Keep the feed ``key`` on disk while the block runs (a response streams it)."""
        with self._lock:
            self._leases[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._leases[key] -= 1
                if self._leases[key] <= 0:
                    del self._leases[key]

    def ensure_zip(self, feed: Feed) -> Path:
        """The feed's ZIP, built if it is not on disk yet."""
        return self._ensure(feed, self.layout.feed_zip(feed.key), self._write_zip)

    def ensure_repo(self, feed: Feed) -> Path:
        """The feed's bare repository, built if it is not on disk yet."""
        return self._ensure(feed, self.layout.feed_repo(feed.key), self._write_repo)

    def _ensure(self, feed: Feed, target: Path, build: Callable[[Feed, Path], None]) -> Path:
        self._clean_leftovers()
        with self._key_lock(feed.key):
            self._touch(feed.key)
            if target.exists():
                os.utime(target)  # the order of use survives a restart
                return target
            temporary = target.with_name(f".build-{secrets.token_hex(6)}-{target.name}")
            try:
                build(feed, temporary)
                temporary.replace(target)
            finally:
                _remove(temporary)
        logger.info("marketplace feed %s: built %s", feed.key[:12], target.name)
        self._evict(keep=feed.key)
        return target

    def _write_zip(self, feed: Feed, temporary: Path) -> None:
        write_zip(feed_files(feed, self.layout), temporary)

    def _write_repo(self, feed: Feed, temporary: Path) -> None:
        build_repo(feed, feed_files(feed, self.layout), temporary, self.git_timeout)

    def _touch(self, key: str) -> None:
        with self._lock:
            self._last_use[key] = next(self._uses)

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    # --- housekeeping ----------------------------------------------------------------

    def _clean_leftovers(self) -> None:
        """Once: make the folder, remove what a stopped server left half-written."""
        with self._lock:
            if self._cleaned:
                return
            self._cleaned = True
            folder = self.layout.feeds_dir
            folder.mkdir(parents=True, exist_ok=True)
            leftovers = [p for p in folder.iterdir() if p.name.startswith(".")]
        for path in leftovers:
            _remove(path)

    def _evict(self, keep: str) -> None:
        """Remove the least recently used feeds beyond ``max_entries`` or ``max_bytes``: by
        their last use in this process, and those unused since it started first, oldest
        file first."""
        on_disk: dict[str, float] = {}
        sizes: dict[str, int] = {}
        for path in self.layout.feeds_dir.iterdir():
            if path.name.startswith(".") or path.suffix not in _SUFFIXES:
                continue
            try:
                mtime = path.stat().st_mtime
                size = _size(path) if self.max_bytes is not None else 0
            except FileNotFoundError:
                continue
            on_disk[path.stem] = max(on_disk.get(path.stem, 0.0), mtime)
            sizes[path.stem] = sizes.get(path.stem, 0) + size
        excess = len(on_disk) - self.max_entries
        excess_bytes = sum(sizes.values()) - self.max_bytes if self.max_bytes is not None else 0
        if excess <= 0 and excess_bytes <= 0:
            return
        trash: list[Path] = []
        evicted = 0
        with self._lock:
            last_use = dict(self._last_use)

            def age(key: str) -> tuple[int, float]:
                used = last_use.get(key)
                return (0, on_disk[key]) if used is None else (1, float(used))

            for key in sorted(on_disk, key=age):
                if evicted >= excess and excess_bytes <= 0:
                    break
                if key == keep or self._leases[key] > 0:
                    continue
                lock = self._key_locks.setdefault(key, threading.Lock())
                if not lock.acquire(blocking=False):
                    continue  # being built or checked right now
                try:
                    trash.extend(self._move_away(key))
                    self._last_use.pop(key, None)
                    evicted += 1
                    excess_bytes -= sizes.get(key, 0)
                finally:
                    lock.release()
        for path in trash:
            _remove(path)

    def _move_away(self, key: str) -> list[Path]:
        moved = []
        for target in (self.layout.feed_zip(key), self.layout.feed_repo(key)):
            away = target.with_name(f".evicted-{secrets.token_hex(6)}-{target.name}")
            try:
                target.replace(away)
            except FileNotFoundError:
                continue
            moved.append(away)
        return moved


def _size(path: Path) -> int:
    """Bytes a built feed (a ZIP file or a bare repository's folder) takes."""
    if not path.is_dir():
        return path.stat().st_size
    total = 0
    for entry in path.rglob("*"):
        try:
            if entry.is_file():
                total += entry.stat().st_size
        except FileNotFoundError:  # removed meanwhile (a repack's temporary file)
            continue
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

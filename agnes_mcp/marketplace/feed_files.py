"""The files a feed serves, the same for both channels (ZIP and git).

The tree is ``.claude-plugin/marketplace.json`` (synthesized from the feed) and, for
each plugin, the files of its content-addressed folder under ``plugins/<slug>-<plugin>``.
Only regular files are served: the sync stores nothing else, so there are no directory
entries or symlinks, and a file's mode is 0755 when it is executable, else 0644.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from agnes_mcp.errors import MarketplaceFeedChanged
from agnes_mcp.marketplace.feed import MARKETPLACE_JSON, Feed
from agnes_mcp.marketplace.layout import MarketplaceLayout

CHUNK = 1 << 20


@dataclass(frozen=True)
class FeedFile:
    path: str  # '/'-separated, relative to the root of the served tree
    mode: int  # 0o644 or 0o755
    size: int
    source: Path | None = None  # the stored file, or
    content: bytes | None = None  # the bytes themselves (marketplace.json)

    @property
    def executable(self) -> bool:
        return self.mode == 0o755

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes in reads of at most 1 MiB (a plugin file is never held whole)."""
        if self.content is not None:
            yield self.content
            return
        assert self.source is not None
        with self.source.open("rb") as handle:
            yield from iter_file(handle)


def iter_file(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def feed_files(feed: Feed, layout: MarketplaceLayout) -> list[FeedFile]:
    """Every file of the feed's served tree, sorted by path."""
    document = feed.marketplace_json()
    files = [FeedFile(MARKETPLACE_JSON, 0o644, len(document), content=document)]
    for entry in feed.entries:
        folder = layout.plugin_files(entry.plugin.content_hash)
        if not folder.is_dir():
            # Removed by a sync that replaced this plugin since the feed was computed.
            raise MarketplaceFeedChanged(
                f"The files of plugin '{entry.plugin.grant_id}' are no longer stored."
            )
        files.extend(_plugin_files(folder, entry.folder))
    return sorted(files, key=lambda f: f.path)


def _plugin_files(folder: Path, prefix: str) -> Iterator[FeedFile]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        relative = Path(root).relative_to(folder).as_posix()
        base = prefix if relative == "." else f"{prefix}/{relative}"
        for name in sorted(names):
            path = Path(root) / name
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue  # the sync stores regular files only; anything else is not served
            mode = 0o755 if info.st_mode & 0o111 else 0o644
            yield FeedFile(f"{base}/{name}", mode, info.st_size, source=path)

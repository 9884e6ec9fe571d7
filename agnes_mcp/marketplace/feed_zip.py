"""A feed as a deterministic ZIP: the same files always give the same bytes.

Members in path order, every timestamp 1980-01-01 00:00:00 (the earliest ZIP can
hold), Unix attributes from the mode (0644 or 0755, regular file), deflate at a fixed
level, no comment, no directory entries, nothing about the request or the time of the
build. Two callers with the same grants get byte-identical archives, so the feed's key
is a true strong ETag for them.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path

from agnes_mcp.marketplace.feed_files import FeedFile

EPOCH = (1980, 1, 1, 0, 0, 0)
LEVEL = 6
UNIX = 3  # create_system: the external attributes are Unix modes


def member(file: FeedFile) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(file.path, date_time=EPOCH)
    info.create_system = UNIX
    info.external_attr = (stat.S_IFREG | file.mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = file.size  # lets zipfile choose ZIP64 for a large member up front
    # The level is kept on the member (ZipFile's own compresslevel is not applied to a
    # ZipInfo passed in); public as 'compress_level' from Python 3.13.
    info._compresslevel = LEVEL  # type: ignore[attr-defined]
    return info


def write_zip(files: Sequence[FeedFile], target: Path) -> None:
    """Write the archive to ``target`` (a new file; the caller renames it into place)."""
    with target.open("xb") as raw:
        with zipfile.ZipFile(raw, "w") as archive:
            for file in sorted(files, key=lambda f: f.path):
                with archive.open(member(file), "w") as out:
                    for chunk in file.chunks():
                        out.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())

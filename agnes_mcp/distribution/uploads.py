"""What ``agnes push`` uploads: Claude Code session transcripts and ``CLAUDE.local.md``,
kept per user under ``DATA_DIR/uploads/<user>/<kind>/<hash><suffix>``.

A body is streamed to a hidden file beside its destination while it is hashed (never
held in memory), checked against the hash the client declared, then renamed into place;
the same content twice is stored once (push is idempotent). An index line records the
file's name, workspace and time.

Only the reading of the body runs on the event loop: the writes (a megabyte at a time,
queued for writeback as they go) and the publish with its fsync run on a worker thread,
so a large upload (up to ``max_upload_bytes``, 256 MB by default: its fsync held the loop
81-97 ms) never holds up another request.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from agnes_mcp.errors import InvalidRequest, PayloadTooLarge
from agnes_sync import atomic
from agnes_sync.hashing import new_hasher
from agnes_sync.writeback import Writeback


class UploadDamaged(InvalidRequest):
    code = "upload_damaged"
    status = 400
    default_hint = "Run 'agnes push' again."


KINDS = {"sessions": ".jsonl", "local-md": ".md"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
WRITE_BYTES = 1 << 20  # what the loop gathers before a worker thread writes it


@dataclass(frozen=True)
class Stored:
    hash: str
    size: int
    stored: bool  # False: the same content was already here


class UploadStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def folder(self, user_id: str, kind: str) -> Path:
        return self.root / user_id / kind

    async def receive(
        self,
        user_id: str,
        kind: str,
        name: str,
        workspace: str,
        body: AsyncIterator[bytes],
        declared: str | None,
    ) -> Stored:
        suffix = KINDS[kind]
        if not _NAME.match(name) or not name.endswith(suffix):
            raise InvalidRequest(f"'{name}' is not a {suffix} file name.")
        if declared is not None and not _HASH.match(declared):
            raise InvalidRequest("X-Agnes-Content-Hash must be a BLAKE3 hex digest.")
        folder = self.folder(user_id, kind)
        folder.mkdir(parents=True, exist_ok=True)
        staged = atomic.staging_path(folder / name)
        hasher, size = new_hasher(), 0
        try:
            with staged.open("wb") as out:
                flushing = Writeback(out.fileno())
                gathered: list[bytes] = []
                held = 0
                async for chunk in body:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            f"The upload is larger than {self.max_bytes} bytes.",
                            hint="Raise max_upload_bytes on the server, or split the file.",
                        )
                    hasher.update(chunk)
                    gathered.append(chunk)
                    held += len(chunk)
                    if held >= WRITE_BYTES:
                        await anyio.to_thread.run_sync(_write, out, gathered, flushing)
                        gathered, held = [], 0
                if gathered:
                    await anyio.to_thread.run_sync(_write, out, gathered, flushing)
            digest = str(hasher.hexdigest())
            if declared is not None and digest != declared:
                raise UploadDamaged(
                    "The upload arrived damaged (its hash differs from the declared one)."
                )
            destination = folder / f"{digest}{suffix}"
            entry = {
                "hash": digest,
                "name": name,
                "workspace": workspace,
                "size": size,
                "uploaded_at": dt.datetime.now(dt.UTC).isoformat(),
            }
            stored = not destination.exists() and await anyio.to_thread.run_sync(
                _publish, staged, destination, entry
            )
            return Stored(digest, size, stored)
        finally:
            if staged.exists():  # a failed upload: freeing its blocks can take ~50 ms
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(atomic.discard, staged)

    def has(self, user_id: str, kind: str, digest: str) -> bool:
        return (
            _HASH.match(digest) is not None
            and (self.folder(user_id, kind) / f"{digest}{KINDS[kind]}").is_file()
        )


def _write(out: BinaryIO, chunks: list[bytes], flushing: Writeback) -> None:
    for chunk in chunks:
        out.write(chunk)
    out.flush()  # the writeback queues what reached the file, not Python's buffer
    flushing.wrote(sum(map(len, chunks)))


def _publish(staged: Path, destination: Path, entry: dict[str, object]) -> bool:
    """Put the upload in place (after its fsync) and record it in the index; False when
    the same content got there first. A hard link makes the check and the placing one
    step, so two uploads of the same content at once record it once (also across
    processes); where links are refused, a rename after the check."""
    atomic.fsync_file(staged)
    try:
        os.link(staged, destination)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        if destination.exists():
            return False
        atomic.publish(staged, destination, flushed=True)
    else:
        atomic.discard(staged)  # its other name: the data stays
        atomic.fsync_dir(destination.parent)
    with (destination.parent / "index.jsonl").open("a", encoding="utf-8") as index:
        index.write(json.dumps(entry) + "\n")
    return True

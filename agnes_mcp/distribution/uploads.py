"""What ``agnes push`` uploads: Claude Code session transcripts and ``CLAUDE.local.md``,
kept per user under ``DATA_DIR/uploads/<user>/<kind>/<hash><suffix>``.

A body is streamed to a hidden file beside its destination while it is hashed (never
held in memory), checked against the hash the client declared, then renamed into place;
the same content twice is stored once (push is idempotent). An index line records the
file's name, workspace and time. What one user keeps in all, uploads in progress counted,
is bounded (``max_upload_bytes_per_user``), so one account cannot fill the server's disk;
files are the user's alone on the host (folders 0700, files 0600).

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
import threading
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


_IN_FLIGHT: dict[tuple[Path, str], int] = {}  # bytes of uploads in progress, per user
_IN_FLIGHT_LOCK = threading.Lock()


def _held(folder: Path) -> int:
    """Bytes of the files under one user's upload folder (what they keep)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class Stored:
    hash: str
    size: int
    stored: bool  # False: the same content was already here


class UploadStore:
    def __init__(self, root: Path, max_bytes: int, per_user_bytes: int | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.per_user_bytes = per_user_bytes

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
        if declared is None:  # nothing to check the body against: nothing is kept unchecked
            raise InvalidRequest(
                "An upload needs X-Agnes-Content-Hash, the BLAKE3 hex digest of its body.",
                hint="'agnes push' sends it; another client must too.",
                details={"fields": [{"field": "X-Agnes-Content-Hash", "problem": "missing"}]},
            )
        if not _HASH.match(declared):
            raise InvalidRequest("X-Agnes-Content-Hash must be a BLAKE3 hex digest.")
        folder = self.folder(user_id, kind)
        for part in (self.root, self.root / user_id, folder):
            part.mkdir(mode=0o700, exist_ok=True)
        staged = atomic.staging_path(folder / name)
        hasher, size = new_hasher(), 0
        key = (self.root, user_id)
        kept = await anyio.to_thread.run_sync(self._kept, user_id)
        counted = 0  # this upload's bytes among the user's in progress
        try:
            with os.fdopen(
                os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb"
            ) as out:
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
                    with _IN_FLIGHT_LOCK:  # every upload of this user in progress counts
                        _IN_FLIGHT[key] = in_flight = _IN_FLIGHT.get(key, 0) + len(chunk)
                    counted += len(chunk)
                    if self.per_user_bytes is not None and kept + in_flight > self.per_user_bytes:
                        raise PayloadTooLarge(
                            f"Your uploads would hold more than the {self.per_user_bytes:,} "
                            "bytes one user may keep on the server (max_upload_bytes_per_user).",
                            hint="Ask an admin to raise max_upload_bytes_per_user.",
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
            if digest != declared:
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
            with _IN_FLIGHT_LOCK:
                left = _IN_FLIGHT.get(key, 0) - counted
                if left > 0:
                    _IN_FLIGHT[key] = left
                else:
                    _IN_FLIGHT.pop(key, None)
            if staged.exists():  # a failed upload: freeing its blocks can take ~50 ms
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(atomic.discard, staged)

    def _kept(self, user_id: str) -> int:
        return _held(self.root / user_id) if self.per_user_bytes is not None else 0

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
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    with os.fdopen(os.open(destination.parent / "index.jsonl", flags, 0o600), "a") as index:
        index.write(json.dumps(entry) + "\n")
    return True
